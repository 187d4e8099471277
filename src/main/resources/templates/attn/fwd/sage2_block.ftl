<#-- Per key block of the int8-fp8 kernels (mma.sync and wgmma alike): the INT32 scores of Q8 K8^T,
     their online softmax and P~ packed into FP8 A fragments. Needs N_TILES, PV_STEPS,
     K_SCALE_BLOCKS and the layout constants (int8_fp8_layout.ftl) from the kernel.
     The scores are never materialized as floats: adding an INT32 dot (|dot| <= 127^2 * 128 < 2^22)
     to the bits of 2^23 + 2^22 gives x, a float equal to dot + MAGIC exactly, and
     S * scale * log2(e) = (x - MAGIC) * c with c = qscale * kscale * scale * log2(e). The row max is
     taken over x (order-preserving) and only it is converted; each P~ costs one integer add, one
     FMA and one exp2 (P~ = exp2(x * c + (log2 448 - m - MAGIC * c))). -->
constexpr int O_TILES = D_TILES + ROW_SUM_COLUMNS / 8;  // O's n8 tiles, then the row-sum tile
// Log2 units the softmax base may lag a row's maximum (FwdKernelPlan.speculativeSoftmax; 0 without), and
// P~'s log2 scale: a row's maximum at the base maps to 2^SAGE2_P_LOG2 (448 without headroom).
constexpr float SOFTMAX_HEADROOM = ${softmaxHeadroom}f;
constexpr float SAGE2_P_LOG2 = LOG2_FP8_MAX - SOFTMAX_HEADROOM;

// The base the exponents are taken against: a row that has seen only masked keys keeps m = -inf, and
// exp2 against 0 keeps its P~ at 0.
__device__ __forceinline__ float sage2_exp_base(float m) {
    return m == SAGE_NEG_INF ? 0.f : m;
}

// This thread's two query rows (g and g + 8 of its warp's 16): each row's INT8 scale times
// scale * log2(e); rows past nq get 0 (their outputs are never stored).
__device__ __forceinline__ void sage2_q_scales(float (&qsl)[2], const float* __restrict__ q_scale_bh, int row, int nq,
                                               float scale_log2) {
    #pragma unroll
    for (int h = 0; h < 2; ++h) qsl[h] = row + 8 * h < nq ? q_scale_bh[sage2_q_group(row + 8 * h)] * scale_log2 : 0.f;
}

// Block j's scores as x = dot + MAGIC, and c per (row, 64-token K scale block). This thread's key
// columns in each K scale block form one group (ks_ptr already points at it).
__device__ __forceinline__ void sage2_scores(float (&x)[1][N_TILES][4], float (&c)[2][K_SCALE_BLOCKS],
                                             const int (&acc)[1][N_TILES][4], const float (&qsl)[2],
                                             const float* __restrict__ ks_ptr, int j, int nk) {
    #pragma unroll
    for (int b = 0; b < K_SCALE_BLOCKS; ++b) {
        const int kb = j * K_SCALE_BLOCKS + b;
        const float ks = kb * K_SCALE_TOKENS < nk ? ks_ptr[K_GROUPS_PER_BLOCK * kb] : 0.f;
        #pragma unroll
        for (int h = 0; h < 2; ++h) {
            const float f = qsl[h] * ks;
            c[h][b] = f == 0.f ? SAGE_TINY : f;  // NaN (a non-finite input) stays NaN
        }
    }
    #pragma unroll
    for (int nt = 0; nt < N_TILES; ++nt) {
        #pragma unroll
        for (int e = 0; e < 4; ++e) x[0][nt][e] = __int_as_float(acc[0][nt][e] + SAGE_ROUND_MAGIC_BITS);
    }
}

// Online softmax of one block, first half (masked keys hold x = -inf): updates m (log2 domain) and
// returns the factor exp2(m_old - m_new) that O must take before this block's P~ V is added, and
// the base the exponents are taken against.
__device__ __forceinline__ void sage2_softmax_max(const float (&x)[1][N_TILES][4], const float (&c)[2][K_SCALE_BLOCKS],
                                                  float (&m_run)[1][2], float (&alpha)[1][2], float (&m_base)[2]) {
    constexpr int TILES_PER_SCALE = K_SCALE_TOKENS / 8;
    #pragma unroll
    for (int h = 0; h < 2; ++h) {
        float mx = SAGE_NEG_INF;
        #pragma unroll
        for (int b = 0; b < K_SCALE_BLOCKS; ++b) {
            float xm[2] = {SAGE_NEG_INF, SAGE_NEG_INF};  // two chains: half the dependent latency
            #pragma unroll
            for (int nt = b * TILES_PER_SCALE; nt < (b + 1) * TILES_PER_SCALE; ++nt) {
                xm[nt & 1] = fmaxf(xm[nt & 1], fmaxf(x[0][nt][2 * h], x[0][nt][2 * h + 1]));
            }
            mx = fmaxf(mx, (fmaxf(xm[0], xm[1]) - SAGE_ROUND_MAGIC) * c[h][b]);
        }
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float m_new = fmaxf(m_run[0][h], mx);
        m_base[h] = sage2_exp_base(m_new);
        alpha[0][h] = sage_exp2(m_run[0][h] - m_base[h]);
        m_run[0][h] = m_new;
    }
}

// Second half: turns x into P~ in place (the row max maps to 2^SAGE2_P_LOG2: 448, or 448 / 2^headroom in
// a kernel whose steady blocks speculate). The row sums l come out of
// P~ V itself (V's ones columns, the last of O_TILES), as sums of the FP8 P~ that O is made of.
__device__ __forceinline__ void sage2_softmax_exp(float (&x)[1][N_TILES][4], const float (&c)[2][K_SCALE_BLOCKS],
                                                  const float (&m_base)[2]) {
    constexpr int TILES_PER_SCALE = K_SCALE_TOKENS / 8;
    #pragma unroll
    for (int h = 0; h < 2; ++h) {
        #pragma unroll
        for (int b = 0; b < K_SCALE_BLOCKS; ++b) {
            const float bias = fmaf(-SAGE_ROUND_MAGIC, c[h][b], SAGE2_P_LOG2 - m_base[h]);
            #pragma unroll
            for (int nt = b * TILES_PER_SCALE; nt < (b + 1) * TILES_PER_SCALE; ++nt) {
                #pragma unroll
                for (int e = 0; e < 2; ++e) {
                    x[0][nt][2 * h + e] = sage_exp2(fmaf(x[0][nt][2 * h + e], c[h][b], bias));
                }
            }
        }
    }
}

// Both halves: the block's online softmax step.
__device__ __forceinline__ void sage2_softmax_step(float (&x)[1][N_TILES][4], const float (&c)[2][K_SCALE_BLOCKS],
                                                   float (&m_run)[1][2], float (&alpha)[1][2]) {
    float m_base[2];
    sage2_softmax_max(x, c, m_run, alpha, m_base);
    sage2_softmax_exp(x, c, m_base);
}

// P~ to FP8 A fragments, 32 keys per step: a thread's columns {2t, 2t+1, 8+2t, 9+2t} of each 16
// fill one register; V's tokens are stored in that order (PERM), so no shuffles are needed.
// `value(nt, e)` gives element e of the thread's n8 score tile nt.
template <class Value>
__device__ __forceinline__ void sage2_pack_fp8(u32 (&p)[PV_STEPS][4], Value value) {
    #pragma unroll
    for (int kk = 0; kk < PV_STEPS; ++kk) {
        #pragma unroll
        for (int half = 0; half < 2; ++half) {
            const int nt = 4 * kk + 2 * half;
            p[kk][2 * half] = sage_fp8x4(value(nt, 0), value(nt, 1), value(nt + 1, 0), value(nt + 1, 1));
            p[kk][2 * half + 1] = sage_fp8x4(value(nt, 2), value(nt, 3), value(nt + 1, 2), value(nt + 1, 3));
        }
    }
}

// P~ (already exponentiated in s) to FP8 A fragments.
__device__ __forceinline__ void sage2_pack_p(u32 (&p)[PV_STEPS][4], const float (&s)[1][N_TILES][4]) {
    sage2_pack_fp8(p, [&](int nt, int e) { return s[0][nt][e]; });
}

// Two-level accumulation: O and l (relative to the previous block's base) take the factor of the block
// whose P~ V is in `acc` and that block's FP8-MMA sums in one FMA.
__device__ __forceinline__ void sage2_fold(float (&acc_o)[1][O_TILES][4], const float (&alpha)[1][2],
                                           const float (&acc)[O_TILES][4]) {
    #pragma unroll
    for (int dt = 0; dt < O_TILES; ++dt) {
        #pragma unroll
        for (int e = 0; e < 4; ++e) acc_o[0][dt][e] = fmaf(acc_o[0][dt][e], alpha[0][e / 2], acc[dt][e]);
    }
}

<#if speculativeSoftmax>

// Speculative softmax step of a steady block (FwdKernelPlan.speculativeSoftmax): P~ against the running
// base m_run, which may lag the row maximum by up to SOFTMAX_HEADROOM (log2 units; P~ then stays at most
// 448), packed straight into FP8. The scores x stay intact, and no maximum is exchanged between lanes,
// so the exponentials start as soon as the block's P~ V registers are free. Returns true when one of
// this thread's rows saw a score above base + headroom: the warp then redoes the block exactly
// (sage2_softmax_step, sage2_pack_p), which raises the base and rescales O.
__device__ __forceinline__ bool sage2_pack_spec(u32 (&p)[PV_STEPS][4], const float (&x)[1][N_TILES][4],
                                                const float (&c)[2][K_SCALE_BLOCKS], const float (&m_run)[1][2]) {
    constexpr int TILES_PER_SCALE = K_SCALE_TOKENS / 8;
    float bias[2][K_SCALE_BLOCKS];
    bool over = false;
    #pragma unroll
    for (int h = 0; h < 2; ++h) {
        const float base = sage2_exp_base(m_run[0][h]);
        #pragma unroll
        for (int b = 0; b < K_SCALE_BLOCKS; ++b) {
            bias[h][b] = fmaf(-SAGE_ROUND_MAGIC, c[h][b], SAGE2_P_LOG2 - base);
            float xm = SAGE_NEG_INF;
            #pragma unroll
            for (int nt = b * TILES_PER_SCALE; nt < (b + 1) * TILES_PER_SCALE; ++nt) {
                xm = fmaxf(xm, fmaxf(x[0][nt][2 * h], x[0][nt][2 * h + 1]));
            }
            over |= (xm - SAGE_ROUND_MAGIC) * c[h][b] > m_run[0][h] + SOFTMAX_HEADROOM;
        }
    }
    sage2_pack_fp8(p, [&](int nt, int e) {
        const int b = nt / TILES_PER_SCALE;
        return sage_exp2(fmaf(x[0][nt][e], c[e / 2][b], bias[e / 2][b]));
    });
    return over;
}
</#if>
