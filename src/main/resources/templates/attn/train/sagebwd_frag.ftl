<#-- Warp fragments of SageBwd's INT8 products (mma.sync m16n8k32, mma_8bit.ftl). -->

// Four INT8 codes rint(x * inv), ties to even, in one register (x * inv within +-127 (1 + 2^-23)):
// the low byte of fma(x, inv, 1.5 * 2^23) is the code's two's complement.
__device__ __forceinline__ u32 sagebwd_code4(float a, float b, float c, float d, float inv) {
    const u32 w0 = __float_as_uint(__fmaf_rn(a, inv, SAGE_ROUND_MAGIC));
    const u32 w1 = __float_as_uint(__fmaf_rn(b, inv, SAGE_ROUND_MAGIC));
    const u32 w2 = __float_as_uint(__fmaf_rn(c, inv, SAGE_ROUND_MAGIC));
    const u32 w3 = __float_as_uint(__fmaf_rn(d, inv, SAGE_ROUND_MAGIC));
    return __byte_perm(__byte_perm(w0, w1, 0x0040), __byte_perm(w2, w3, 0x0040), 0x5410);
}

// An INT32 MMA sum of magnitude below 2^22 as the magic float sum + MAGIC (MAGIC = 1.5 * 2^23), exactly:
// one integer add at full rate instead of the quarter-rate conversion. Every sum here is at most 128
// products of two INT8 codes (< 2^21). A caller that scales it by a factor owes MAGIC times that factor,
// and subtracts the owed sum once per several folds (SETTLE_FOLDS) instead of MAGIC per element.
__device__ __forceinline__ float sagebwd_magic(int x) { return __int_as_float(x + SAGE_ROUND_MAGIC_BITS); }

// An accumulator's 16 x (32 STEPS) values as INT8 A fragments: a thread's columns {2t, 2t+1, 8+2t,
// 9+2t} of each 16 fill one register, the order of the PERM_COLUMNS copies (B) they meet.
template <int STEPS>
__device__ __forceinline__ void sagebwd_pack(u32 (&a)[STEPS][4], const float (&s)[1][4 * STEPS][4], float inv) {
    #pragma unroll
    for (int kk = 0; kk < STEPS; ++kk) {
        #pragma unroll
        for (int half = 0; half < 2; ++half) {
            const int nt = 4 * kk + 2 * half;
            a[kk][2 * half] = sagebwd_code4(s[0][nt][0], s[0][nt][1], s[0][nt + 1][0], s[0][nt + 1][1], inv);
            a[kk][2 * half + 1] = sagebwd_code4(s[0][nt][2], s[0][nt][3], s[0][nt + 1][2], s[0][nt + 1][3], inv);
        }
    }
}

// A fragments of 16 rows of a [rows][ROW_BYTES] INT8 tile (swizzled, sage_swz), all k32 steps.
template <int STEPS, int ROW_BYTES>
__device__ __forceinline__ void sagebwd_load_a(u32 (&a)[STEPS][4], u32 tile, int row, int lane, int chunk0 = 0) {
    #pragma unroll
    for (int kk = 0; kk < STEPS; ++kk) {
        const int r = row + (lane & 7) + ((lane >> 3) & 1) * 8;
        sage_ldmatrix_x4(a[kk], tile + sage_swz<ROW_BYTES>(r, chunk0 + kk * 2 + (lane >> 4)));
    }
}

// acc[nt] += (A x B^T) for N_COLS / 8 column tiles, B the rows [0, N_COLS) of an INT8 tile of
// ROW_BYTES-byte rows (k along the row): INT32 sums, exact.
template <int STEPS, int N_COLS, int ROW_BYTES>
__device__ __forceinline__ void sagebwd_mma_rows(int (&acc)[N_COLS / 8][4], const u32 (&a)[STEPS][4], u32 tile,
                                                 int lane) {
    #pragma unroll
    for (int kk = 0; kk < STEPS; ++kk) {
        #pragma unroll
        for (int np = 0; np < N_COLS / 16; ++np) {
            // Rows np*16..+15: registers 0,1 are B of column tile 2np, 2,3 of tile 2np+1.
            u32 b[4];
            const int r = np * 16 + (lane & 7) + (lane >> 4) * 8;
            sage_ldmatrix_x4(b, tile + sage_swz<ROW_BYTES>(r, kk * 2 + ((lane >> 3) & 1)));
            sage_mma_s8(acc[2 * np], a[kk], b[0], b[1]);
            sage_mma_s8(acc[2 * np + 1], a[kk], b[2], b[3]);
        }
    }
}

// out[i] += scale[h] * (A x B^T) for the head-dim column tiles 2 dp0 .. 2 (dp0 + PAIRS) - 1, B a
// transposed [D][ROW_BYTES] INT8 tile read from 16-byte chunk chunk0 on (T_STEPS k32 steps), scale[h]
// for the thread's rows g (h = 0) and g + 8: one pair of column tiles at a time, so the INT32
// partials take 8 registers.
template <int PAIRS, int ROW_BYTES>
__device__ __forceinline__ void sagebwd_mma_t_scaled(float (&out)[2 * PAIRS][4], const u32 (&a)[T_STEPS][4],
                                                     u32 tile_t, int dp0, int chunk0, const float (&scale)[2],
                                                     int lane) {
    #pragma unroll
    for (int dp = 0; dp < PAIRS; ++dp) {
        int acc[2][4] = {{0, 0, 0, 0}, {0, 0, 0, 0}};
        #pragma unroll
        for (int kk = 0; kk < T_STEPS; ++kk) {
            u32 b[4];
            const int r = (dp0 + dp) * 16 + (lane & 7) + (lane >> 4) * 8;
            sage_ldmatrix_x4(b, tile_t + sage_swz<ROW_BYTES>(r, chunk0 + kk * 2 + ((lane >> 3) & 1)));
            sage_mma_s8(acc[0], a[kk], b[0], b[1]);
            sage_mma_s8(acc[1], a[kk], b[2], b[3]);
        }
        #pragma unroll
        for (int e = 0; e < 4; ++e) {
            out[2 * dp][e] = fmaf((float)acc[0][e], scale[e >> 1], out[2 * dp][e]);
            out[2 * dp + 1][e] = fmaf((float)acc[1][e], scale[e >> 1], out[2 * dp + 1][e]);
        }
    }
}

// The largest |x| of a warp's accumulator tile: non-negative floats order as their bit patterns, so one
// integer warp reduction (redux.sync, sm_80 and later) replaces five shuffle-and-max rounds.
__device__ __forceinline__ float sagebwd_warp_absmax(const float (&s)[1][N_TILES][4]) {
    float m = 0.f;
    #pragma unroll
    for (int nt = 0; nt < N_TILES; ++nt) {
        #pragma unroll
        for (int e = 0; e < 4; ++e) m = fmaxf(m, fabsf(s[0][nt][e]));
    }
    return __uint_as_float(__reduce_max_sync(0xffffffffu, __float_as_uint(m)));
}

// 1 / s of an INT8 tile with absmax `amax` (s = amax / 127): 0 for an all-zero tile (codes 0).
__device__ __forceinline__ float sagebwd_inv(float amax) {
    return amax > 0.f ? fminf(__fdiv_rn(INT8_MAX, amax), SAGE_FLT_MAX) : 0.f;
}

// The first query block that sees key `key0` (causal masks are bottom-right aligned: key k is seen by
// queries q with k <= q + nk - nq), on a BLOCK boundary; 0 without a mask.
__device__ __forceinline__ int sagebwd_first_query(int key0, int nq, int nk) {
    return CAUSAL ? max(0, key0 - (nk - nq)) / BLOCK * BLOCK : 0;
}

// P^T = exp2(S^T c - LSE2) of an accumulator tile of this thread's keys key_row and key_row + 8 and the
// step's BLOCK queries from q0 (S^T exact INT32 sums; c = ks qs scale log2(e)); 0 where masked. The
// sums enter as magic floats (S + MAGIC, exact) with -MAGIC c folded into each query's bias. MASKED =
// false is the caller's promise that every key and query of the tile is in range and visible (no
// per-element tests; the LSE2 pairs of columns 2t, 2t + 1 read as one float2).
template <bool MASKED = true>
__device__ __forceinline__ void sagebwd_probs(float (&p)[1][N_TILES][4], const int (&s)[N_TILES][4], float c,
                                              int key_row, int q0, int nq, int nk, const float* s_lse, int t) {
    const float magic_c = -SAGE_ROUND_MAGIC * c;
    #pragma unroll
    for (int nt = 0; nt < N_TILES; ++nt) {
        float bias[2];
        if (MASKED) {
            #pragma unroll
            for (int e = 0; e < 2; ++e) {
                const int qi = nt * 8 + 2 * t + e;
                bias[e] = q0 + qi < nq ? magic_c - s_lse[qi] : 0.f;
            }
        } else {
            const float2 l = *reinterpret_cast<const float2*>(s_lse + nt * 8 + 2 * t);
            bias[0] = magic_c - l.x;
            bias[1] = magic_c - l.y;
        }
        #pragma unroll
        for (int e = 0; e < 4; ++e) {
            const float x = sage_exp2(fmaf(__int_as_float(s[nt][e] + SAGE_ROUND_MAGIC_BITS), c, bias[e & 1]));
            if (MASKED) {
                const int key = key_row + 8 * (e >> 1);
                const int qi = nt * 8 + 2 * t + (e & 1);
                const bool visible = key < nk && q0 + qi < nq && (!CAUSAL || key <= q0 + qi + nk - nq);
                p[0][nt][e] = visible ? x : 0.f;
            } else {
                p[0][nt][e] = x;
            }
        }
    }
}

// dS^T = P^T (dP^T - D), in place of dP^T (D of columns 2t, 2t + 1 read as one float2: s_delta 8-byte aligned).
__device__ __forceinline__ void sagebwd_ds(float (&dp)[1][N_TILES][4], const float (&p)[1][N_TILES][4],
                                           const float* s_delta, int t) {
    #pragma unroll
    for (int nt = 0; nt < N_TILES; ++nt) {
        const float2 d = *reinterpret_cast<const float2*>(s_delta + nt * 8 + 2 * t);
        #pragma unroll
        for (int e = 0; e < 4; ++e) dp[0][nt][e] = p[0][nt][e] * (dp[0][nt][e] - ((e & 1) ? d.y : d.x));
    }
}

// dS8 (this warp's A fragments) as [query][key position] rows of the dQ product's A tile: keys g and
// g + 8 of the warp's 16 in one 16-bit word (K^T's PERM_ROWS order), chunk `warp` of each row.
__device__ __forceinline__ void sagebwd_store_ds(u32 s_ds, const u32 (&a)[T_STEPS][4], int warp, int g, int t) {
    #pragma unroll
    for (int nt = 0; nt < N_TILES; ++nt) {
        #pragma unroll
        for (int e = 0; e < 2; ++e) {
            const int qi = nt * 8 + 2 * t + e;
            const u32 lo = (a[nt / 4][2 * ((nt / 2) & 1)] >> (8 * (2 * (nt & 1) + e))) & 0xffu;
            const u32 hi = (a[nt / 4][2 * ((nt / 2) & 1) + 1] >> (8 * (2 * (nt & 1) + e))) & 0xffu;
            asm volatile("st.shared.u16 [%0], %1;\n" :: "r"(s_ds + sage_swz<BWD_KEYS>(qi, warp) + 2 * g),
                         "h"((unsigned short)(lo | (hi << 8))) : "memory");
        }
    }
}

// sagebwd_store_ds's layout (keys g and g + 8 of the warp's 16 in one 16-bit word, chunk `warp` of each
// query row) with two transposing matrix stores (stmatrix: sm_90 and later): as 16-bit words the fragment
// of n8 tile nt is an 8 x 8 matrix [key pair g][query 2t, 2t + 1], which .trans writes as query rows.
__device__ __forceinline__ void sagebwd_store_ds_x4(u32 s_ds, const u32 (&a)[T_STEPS][4], int warp, int lane) {
    #pragma unroll
    for (int half = 0; half < N_TILES / 4; ++half) {
        u32 r[4];
        #pragma unroll
        for (int i = 0; i < 4; ++i) {
            const int nt = 4 * half + i;
            const u32 lo = a[nt / 4][2 * ((nt / 2) & 1)], hi = a[nt / 4][2 * ((nt / 2) & 1) + 1];
            // bytes: key g and key g + 8 of query 2t, then of query 2t + 1
            r[i] = __byte_perm(lo, hi, (nt & 1) ? 0x7362 : 0x5140);
        }
        // Lane l gives the row address of matrix l / 8, row l % 8: query 32 half + l.
        const u32 addr = s_ds + sage_swz<BWD_KEYS>(32 * half + lane, warp);
        asm volatile("stmatrix.sync.aligned.m8n8.x4.trans.shared.b16 [%0], {%1, %2, %3, %4};\n"
                     :: "r"(addr), "r"(r[0]), "r"(r[1]), "r"(r[2]), "r"(r[3]) : "memory");
    }
}
