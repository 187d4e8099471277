<#-- SageBwd backward on Hopper (sm_90a) with wgmma: the products and numerics of sagebwd_bwd.ftl
     (same operands, scales and order of the FP32 sums), on warpgroup MMAs instead of warp mma.sync.
     One block per (BWD_KEYS keys, kv head, batch): two consumer warpgroups, each owning one
     BLOCK-key tile (its K scale block and its P / dS tile's column of scales) whose dK and dV stay in
     FP32 wgmma accumulators while the block walks the query blocks (and, with GQA, the query heads)
     that see them. One thread loads the query blocks' tiles by TMA, two steps ahead (two stages, each
     with a barrier counting the bytes that landed), so one block barrier per step remains: the dS8
     exchange before dQ (dS8 and its maxima are double-buffered, so the next step may start before the
     other warpgroup finished this one's dQ).
     Per query block of BLOCK rows, per warpgroup:
       S^T = K8 Q8^T (INT32, A and B K-major in shared memory), dP^T = V dO^T (16-bit, the same);
       P^T = exp2(S^T * ks * qs * scale * log2(e) - LSE2), dS^T = P^T (dP^T - D);
       P8 and dS8 per BLOCK x BLOCK tile packed straight into wgmma A registers (the accumulator's
       columns {2t, 2t+1, 8+2t, 9+2t} of each 16 form one register: Q8^T and dO8^T are stored in
       that PERM_COLUMNS order);
       dV += P8^T dO8 * sP * sdO, dK += dS8^T Q8 * sdS * qs, 64 head-dim columns at a time;
       dS8 to shared memory as [query][key] (keys g and g + 8 side by side, K^T's PERM_ROWS order), then
       after a block barrier each warpgroup takes HEAD_DIM / 2 columns of dQ = sum over the two key
       tiles of dS8 K8 * sdS * ks (INT32 per tile, one scale each) and stores them into a shared FP32
       dQ tile (128-byte panels, swizzled); after the next step's block barrier the loading thread adds
       that tile into the FP32 accumulator with TMA reduce-adds (the _dq kernel multiplies by the softmax
       scale). The tile is double-buffered by step parity, so no warp waits for the reduction. -->

constexpr int WG_KEYS = BLOCK;                  // keys per consumer warpgroup: one P / dS tile
constexpr int WGS = BWD_KEYS / WG_KEYS;         // consumer warpgroups
constexpr int D_HALVES = HEAD_DIM / ${dvCols};  // column blocks of dK and dV per product
constexpr int DV_COLS = ${dvCols};
constexpr int T_PRODUCTS = 2 * D_HALVES;        // dV and dK products per step, alternating
constexpr int T_AHEAD = ${tAhead};              // products in flight beyond the one being dequantized
constexpr int DQ_COLS = ${dqCols};              // dQ columns per warpgroup
constexpr u32 PANEL_ROW = ${panelRowBytes};     // bytes of a 16-bit panel row (the 128-byte swizzle)
constexpr int PANEL_ELEMS = PANEL_ROW / ${elemBytes};
constexpr int PANEL_STEPS = PANEL_ELEMS / 16;   // 16-bit k16 steps per panel
constexpr u32 K8_BYTES = BWD_KEYS * HEAD_DIM;   // K8 and K8^T
constexpr u32 V_BYTES = BWD_KEYS * HEAD_DIM * ${elemBytes};
constexpr u32 DS_BYTES = BLOCK * BWD_KEYS;
constexpr u32 STAGE_BYTES = 3 * INT8_TILE + BLOCK * HEAD_DIM * ${elemBytes};  // Q8, Q8^T, dO8^T, dO: what TMA writes
constexpr int PANELS = HEAD_DIM / PANEL_ELEMS;  // 16-bit panels of a dO tile
constexpr int BWD_STAGES = ${bwdStages};
constexpr u32 MBAR_BYTES = ${mbarrierBytes};
constexpr int DQ_PANEL_COLS = PANEL_ROW / sizeof(float);  // FP32 dQ columns per 128-byte panel row
constexpr int DQ_PANELS = HEAD_DIM / DQ_PANEL_COLS;
constexpr u32 DQ_BYTES = BLOCK * HEAD_DIM * sizeof(float);  // one FP32 dQ tile
constexpr int DQ_BUFFERS = ${dqBuffers};
constexpr u32 SMEM_ALIGN = ${swizzleAlign};
constexpr int ROW_SLOT = ${rowSlotFloats};      // floats of a step's row slot: LSE2 [BLOCK], D [BLOCK], qs, dO's scale
static_assert(WGS == 2 && WGS * 128 == BWD_THREADS && WG_KEYS == 64 && DQ_COLS * WGS == HEAD_DIM, "warpgroup map");
static_assert(BWD_STAGES == 2 && DQ_BUFFERS == 2, "the loop below double-buffers");
static_assert(DQ_COLS % DQ_PANEL_COLS == 0, "a warpgroup's dQ columns are whole panels");
static_assert(ROW_SLOT == 2 * BLOCK + 2, "a row slot: LSE2 and D of BLOCK queries, then qs and dO's scale");
static_assert((BWD_STAGES * MBAR_BYTES + BWD_STAGES * ROW_SLOT * sizeof(float)) % 16 == 0,
              "the warp maxima after the barriers and row slots are read as float4");

// One thread's TMA loads of a step's query tile (rows q0 .., head `head`) into stage `st`: Q8 rows, the
// Q8^T and dO8^T column blocks and dO's 16-bit panels, all counted in bytes on `bar`.
__device__ __forceinline__ void sagebwd_load_step(u32 st, u32 bar, const SageTensorMap* tm_q,
                                                  const SageTensorMap* tm_qt, const SageTensorMap* tm_gt,
                                                  const SageTensorMap* tm_g, int q0, int head, int batch) {
    sage_mbar_expect_tx(bar, STAGE_BYTES);
    sage_tma_load_4d(st, tm_q, 0, q0, head, batch, bar);
    sage_tma_load_4d(st + INT8_TILE, tm_qt, q0, 0, head, batch, bar);
    sage_tma_load_4d(st + 2 * INT8_TILE, tm_gt, q0, 0, head, batch, bar);
    #pragma unroll
    for (int p = 0; p < PANELS; ++p) {
        sage_tma_load_4d(st + 3 * INT8_TILE + p * BLOCK * PANEL_ROW, tm_g, p * PANEL_ELEMS, q0, head, batch, bar);
    }
}

// One thread's TMA reduce-adds of a step's FP32 dQ tile (rows q0 .., head `head`) from its panels at `tile`.
__device__ __forceinline__ void sagebwd_reduce_dq(u32 tile, const SageTensorMap* tm_dq, int q0, int head, int batch) {
    #pragma unroll
    for (int p = 0; p < DQ_PANELS; ++p) {
        sage_tma_reduce_add_4d(tile + p * BLOCK * PANEL_ROW, tm_dq, p * DQ_PANEL_COLS, q0, head, batch);
    }
    sage_bulk_commit();
}

// Copies rows [row0, row0 + ROWS) of a [n, HEAD_DIM] 16-bit global matrix (row stride `stride`
// elements) into PANEL_ROW-byte panels of the 128-byte swizzle, panel p holding head-dim elements
// [p PANEL_ELEMS, (p + 1) PANEL_ELEMS) of every row: the K-major layout wgmma reads. Rows at or past n
// are zero-filled.
template <int ROWS>
__device__ __forceinline__ void sagebwd_load_panels(u32 tile, const u16* __restrict__ src, i64 stride, int row0,
                                                    int n, int tid) {
    constexpr int CHUNKS = HEAD_DIM * ${elemBytes} / 16;
    constexpr int PANEL_CHUNKS = PANEL_ROW / 16;
    static_assert(ROWS * CHUNKS % BWD_THREADS == 0, "whole passes");
    #pragma unroll
    for (int it = 0; it < ROWS * CHUNKS / BWD_THREADS; ++it) {
        const int idx = tid + it * BWD_THREADS;
        const int r = idx / CHUNKS, c = idx % CHUNKS;
        const bool valid = row0 + r < n;
        const u16* p = valid ? src + (i64)(row0 + r) * stride + c * 8 : src;
        sage_cp_async16(tile + (c / PANEL_CHUNKS) * (ROWS * PANEL_ROW) + sage_swz<PANEL_ROW>(r, c % PANEL_CHUNKS), p,
                        valid);
    }
}

// out += (acc + MAGIC) * scale for one n-block of INT32 wgmma sums (magic floats, exact): the caller owes
// MAGIC * scale per element, summed in its bias and settled by sagebwd_settle.
template <int T>
__device__ __forceinline__ void sagebwd_dequant_add(float (&out)[T][4], const int (&acc)[T][4], float scale) {
    #pragma unroll
    for (int nt = 0; nt < T; ++nt) {
        #pragma unroll
        for (int e = 0; e < 4; ++e) out[nt][e] = fmaf(sagebwd_magic(acc[nt][e]), scale, out[nt][e]);
    }
}

// acc -= MAGIC * bias over every element of a dK or dV accumulator; the bias starts again at 0.
template <int H, int T>
__device__ __forceinline__ void sagebwd_settle(float (&acc)[H][T][4], float& bias) {
    #pragma unroll
    for (int h = 0; h < H; ++h) {
        #pragma unroll
        for (int nt = 0; nt < T; ++nt) {
            #pragma unroll
            for (int e = 0; e < 4; ++e) acc[h][nt][e] = fmaf(-SAGE_ROUND_MAGIC, bias, acc[h][nt][e]);
        }
    }
    bias = 0.f;
}

extern "C" __global__ void __launch_bounds__(BWD_THREADS, 1)
${entry}_bwd(const __grid_constant__ SageTensorMap tm_q, const __grid_constant__ SageTensorMap tm_qt,
             const __grid_constant__ SageTensorMap tm_gt, const __grid_constant__ SageTensorMap tm_g,
             const __grid_constant__ SageTensorMap tm_dq,
             const unsigned char* __restrict__ k8, const unsigned char* __restrict__ k8t,
             const u16* __restrict__ v, const float* __restrict__ q_scale, const float* __restrict__ k_scale,
             const float* __restrict__ g_scale, const float* __restrict__ lse2, const float* __restrict__ delta,
             u16* __restrict__ dk, u16* __restrict__ dv,
             i64 v_sb, i64 v_sh, i64 v_sn, i64 dk_sb, i64 dk_sh, i64 dk_sn, i64 dv_sb, i64 dv_sh, i64 dv_sn,
             int nq, int nk, int hq, int group, float scale, float scale_log2) {
    extern __shared__ __align__(128) unsigned char smem[];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int wg = __shfl_sync(0xffffffffu, warp / 4, 0), wi = warp % 4;  // wg broadcast: warp-uniform for ptxas
    const int g = lane >> 2, t = lane & 3;
    const int key0 = blockIdx.x * BWD_KEYS;
    const int kv_head = blockIdx.y, batch = blockIdx.z;
    const i64 bkv = (i64)batch * gridDim.y + kv_head;
    const int q_blocks = (nq + BLOCK - 1) / BLOCK, k_blocks = (nk + BLOCK - 1) / BLOCK;
    const int nq_pad = q_blocks * BLOCK, nk_pad = k_blocks * BLOCK;

    const u32 smem0 = sage_smem_addr(smem);
    const u32 sK8 = (smem0 + SMEM_ALIGN - 1) & ~(SMEM_ALIGN - 1);  // [BWD_KEYS][D]
    const u32 sK8t = sK8 + K8_BYTES;                              // [D][BWD_KEYS], PERM_ROWS
    const u32 sV = sK8t + K8_BYTES;                               // panels of [BWD_KEYS][PANEL_ROW]
    const u32 sDS = sV + V_BYTES;                                 // 2 x [BLOCK queries][BWD_KEYS keys] INT8
    const u32 sStage = sDS + 2 * DS_BYTES;                        // BWD_STAGES x {Q8, Q8^T, dO8^T, dO panels}
    const u32 sDQ = sStage + BWD_STAGES * STAGE_BYTES;            // DQ_BUFFERS x DQ_PANELS x [BLOCK][PANEL_ROW] FP32
    const u32 sBars = sDQ + DQ_BUFFERS * DQ_BYTES;                // BWD_STAGES full barriers
    auto stage_bar = [&](int i) { return sBars + MBAR_BYTES * i; };
    float* s_rows = reinterpret_cast<float*>(smem + (stage_bar(BWD_STAGES) - smem0));  // [BWD_STAGES][ROW_SLOT]
    float* s_max = s_rows + BWD_STAGES * ROW_SLOT;  // [BWD_WARPS][P, dS] warp maxima
    float* s_ds_max = s_max + 2 * BWD_WARPS;     // [2][WGS] the dS tiles' maxima, by step parity

    // Query blocks that see any key of this block (causal masks are bottom-right aligned), head by head.
    const int q_first = sagebwd_first_query(key0, nq, nk);
    const int q_steps = q_first < nq ? (nq - q_first + BLOCK - 1) / BLOCK : 0;
    const int steps = q_steps * group;
    auto step_head = [&](int s) { return kv_head * group + s / q_steps; };
    auto step_q0 = [&](int s) { return q_first + (s % q_steps) * BLOCK; };
    if (tid == 0) {
        #pragma unroll
        for (int i = 0; i < BWD_STAGES; ++i) sage_mbar_init(stage_bar(i), 1);
        sage_mbar_init_fence();
        #pragma unroll
        for (int i = 0; i < BWD_STAGES; ++i) {
            if (i < steps) {
                sagebwd_load_step(sStage + i * STAGE_BYTES, stage_bar(i), &tm_q, &tm_qt, &tm_gt, &tm_g, step_q0(i),
                                  step_head(i), batch);
            }
        }
    }
    // LSE2 and D of step s's queries, then its Q and dO scales, into row slot s % 2, by the first 2 BLOCK + 2
    // threads (cp.async, waited for before the step's block barrier: no global load on a step's critical path).
    auto load_rows = [&](int s) {
        const int q0 = step_q0(s);
        const i64 bh = (i64)batch * hq + step_head(s);
        if (tid < 2 * BLOCK) {
            const int i = tid % BLOCK;
            const float* src = (tid < BLOCK ? lse2 : delta) + bh * nq;
            const bool valid = q0 + i < nq;
            sage_cp_async4(sage_smem_addr(s_rows + (s & 1) * ROW_SLOT + tid), valid ? src + q0 + i : src, valid);
        } else if (tid < ROW_SLOT) {
            const float* src = (tid == 2 * BLOCK ? q_scale : g_scale) + bh * q_blocks + q0 / BLOCK;
            sage_cp_async4(sage_smem_addr(s_rows + (s & 1) * ROW_SLOT + tid), src, true);
        }
    };
    sage_load_tile8<BWD_KEYS, HEAD_DIM, BWD_THREADS>(sK8, k8 + bkv * nk * HEAD_DIM, HEAD_DIM, key0, nk, tid);
    sage_load_cols8<HEAD_DIM, BWD_KEYS, BWD_THREADS>(sK8t, k8t + bkv * HEAD_DIM * nk_pad, nk_pad, key0, nk_pad, tid);
    sagebwd_load_panels<BWD_KEYS>(sV, v + batch * v_sb + kv_head * v_sh, v_sn, key0, nk, tid);
    if (steps > 0) load_rows(0);
    sage_cp_async_commit();
    float ks[WGS], ks_wg = 0.f;  // the key tiles' scales; this warpgroup's (a select, not a local-memory index)
    #pragma unroll
    for (int i = 0; i < WGS; ++i) {
        const int kb = key0 / BLOCK + i;
        ks[i] = kb < k_blocks ? k_scale[bkv * k_blocks + kb] : 0.f;
        if (i == wg) ks_wg = ks[i];
    }
    sage_cp_async_wait<0>();
    sage_fence_proxy_async();  // K8, K8^T and V are wgmma operands
    __syncthreads();           // ... for every thread, as are the barriers' inits

    // This warpgroup's operands: K8 and V rows of its keys (A), the stage's Q8 and dO rows (B), Q8^T and
    // dO8^T (B of dK and dV), dS8 (A of dQ) and K8^T rows of its dQ columns (B of dQ).
    const SageDesc d_k = sage_wgmma_desc_words<HEAD_DIM>(sK8 + wg * WG_KEYS * HEAD_DIM, 16, 8 * HEAD_DIM);
    const SageDesc d_q = sage_wgmma_desc_words<HEAD_DIM>(sStage, 16, 8 * HEAD_DIM);
    const SageDesc d_v = sage_wgmma_desc_words<PANEL_ROW>(sV + wg * WG_KEYS * PANEL_ROW, 16, 8 * PANEL_ROW);
    const SageDesc d_g = sage_wgmma_desc_words<PANEL_ROW>(sStage + 3 * INT8_TILE, 16, 8 * PANEL_ROW);
    const SageDesc d_qt = sage_wgmma_desc_words<BLOCK>(sStage + INT8_TILE, 16, 8 * BLOCK);
    const SageDesc d_gt = sage_wgmma_desc_words<BLOCK>(sStage + 2 * INT8_TILE, 16, 8 * BLOCK);
    const SageDesc d_ds = sage_wgmma_desc_words<BWD_KEYS>(sDS, 16, 8 * BWD_KEYS);  // + the step's DS_BYTES slot
    const SageDesc d_kt = sage_wgmma_desc_words<BWD_KEYS>(sK8t + wg * DQ_COLS * BWD_KEYS, 16, 8 * BWD_KEYS);

    // dK and dV hold their sums plus MAGIC times dk_bias / dv_bias (the steps' scales since the last settlement).
    float acc_dk[D_HALVES][DV_COLS / 8][4], acc_dv[D_HALVES][DV_COLS / 8][4];
    float dk_bias = 0.f, dv_bias = 0.f;
    #pragma unroll
    for (int h = 0; h < D_HALVES; ++h) {
        #pragma unroll
        for (int nt = 0; nt < DV_COLS / 8; ++nt) {
            #pragma unroll
            for (int e = 0; e < 4; ++e) acc_dk[h][nt][e] = acc_dv[h][nt][e] = 0.f;
        }
    }
    const int my_key = key0 + wg * WG_KEYS + wi * 16 + g;  // this thread's rows: my_key and my_key + 8

    for (int s = 0; s < steps; ++s) {
        const u32 st_off = (s & 1) * STAGE_BYTES, ds_off = (s & 1) * DS_BYTES;
        const int q0 = step_q0(s);
        const float* s_lse = s_rows + (s & 1) * ROW_SLOT;
        const float* s_delta = s_lse + BLOCK;
        const float qs = s_lse[2 * BLOCK], gs = s_lse[2 * BLOCK + 1];
        sage_mbar_wait(stage_bar(s & 1), (s >> 1) & 1);  // this step's tiles landed

        // S^T = K8 Q8^T and dP^T = V dO^T, both issued before either is waited for.
        int acc_s[1][N_TILES][4];
        float acc_dp[1][N_TILES][4];
        sage_wgmma_fence();
        #pragma unroll
        for (int kk = 0; kk < QK_STEPS; ++kk) ${sWgmma}(acc_s[0], d_k.at(kk * 32), d_q.at(st_off + kk * 32), kk > 0);
        sage_wgmma_commit();
        #pragma unroll
        for (int kk = 0; kk < F16_STEPS; ++kk) {
            const u32 panel = kk / PANEL_STEPS, in = (kk % PANEL_STEPS) * 32;
            ${dpWgmma}(acc_dp[0], d_v.at(panel * BWD_KEYS * PANEL_ROW + in),
                       d_g.at(st_off + panel * BLOCK * PANEL_ROW + in), kk > 0);
        }
        sage_wgmma_commit();
        // While they run: the next step's rows into the other row slot (read last in step s - 1, before its barrier).
        if (s + 1 < steps) load_rows(s + 1);
        sage_cp_async_commit();
        sage_wgmma_wait<1>();
        sage_wgmma_touch(acc_s[0]);

        // P^T = exp2(S^T * scale * log2(e) - LSE2), then dS^T = P^T (dP^T - D).
        const float c = ks_wg * qs * scale_log2;
        float p[1][N_TILES][4];
        // Every key of this warpgroup's tile in range and seen by every query of the step: no per-element masks.
        const int wg_last_key = key0 + wg * WG_KEYS + WG_KEYS - 1;
        if (wg_last_key < nk && q0 + BLOCK <= nq && (!CAUSAL || wg_last_key <= q0 + nk - nq)) {
            sagebwd_probs<false>(p, acc_s[0], c, my_key, q0, nq, nk, s_lse, t);
        } else {
            sagebwd_probs<true>(p, acc_s[0], c, my_key, q0, nq, nk, s_lse, t);
        }
        sage_wgmma_wait<0>();
        sage_wgmma_touch(acc_dp[0]);
        sagebwd_ds(acc_dp, p, s_delta, t);
        // One scale per BLOCK x BLOCK tile of P and of dS: this warpgroup's, over its four warps.
        const float pm = sagebwd_warp_absmax(p), dm = sagebwd_warp_absmax(acc_dp);
        if (lane == 0) { s_max[2 * warp] = pm; s_max[2 * warp + 1] = dm; }
        asm volatile("bar.sync %0, 128;\n" :: "r"(1 + wg) : "memory");
        // The warpgroup's four (P, dS) pairs: 32 bytes, two 16-byte loads (s_max is 16-byte aligned).
        const float4 m01 = reinterpret_cast<const float4*>(s_max)[2 * wg];
        const float4 m23 = reinterpret_cast<const float4*>(s_max)[2 * wg + 1];
        const float p_max = fmaxf(fmaxf(m01.x, m01.z), fmaxf(m23.x, m23.z));
        const float ds_max = fmaxf(fmaxf(m01.y, m01.w), fmaxf(m23.y, m23.w));
        u32 a_p[T_STEPS][4], a_ds[T_STEPS][4];
        sagebwd_pack<T_STEPS>(a_p, p, sagebwd_inv(p_max));
        sagebwd_pack<T_STEPS>(a_ds, acc_dp, sagebwd_inv(ds_max));

        // dV += P8^T dO8 * sP * sdO and dK += dS8^T Q8 * sdS * qs, DV_COLS head-dim columns per product,
        // T_AHEAD products issued ahead of the one being dequantized (each product's INT32 sums take DV_COLS / 2
        // registers beside dK's and dV's FP32).
        const float dv_scale = __fdiv_rn(p_max, INT8_MAX) * gs, dk_scale = __fdiv_rn(ds_max, INT8_MAX) * qs;
        int acc_t[T_AHEAD + 1][1][DV_COLS / 8][4];
        #pragma unroll
        for (int h = 0; h < T_PRODUCTS + T_AHEAD; ++h) {
            if (h < T_PRODUCTS) {
                const bool is_dv = h % 2 == 0;
                sage_wgmma_fence();
                #pragma unroll
                for (int kk = 0; kk < T_STEPS; ++kk) {
                    ${tWgmma}(acc_t[h % (T_AHEAD + 1)][0], is_dv ? a_p[kk] : a_ds[kk],
                              (is_dv ? d_gt : d_qt).at(st_off + h / 2 * DV_COLS * BLOCK + kk * 32), kk > 0);
                }
                sage_wgmma_commit();
            }
            const int j = h - T_AHEAD;  // the product dequantized now
            if (j >= 0) {
                if (h < T_PRODUCTS) {
                    sage_wgmma_wait<T_AHEAD>();
                } else {
                    sage_wgmma_wait<0>();
                }
                sage_wgmma_touch(acc_t[j % (T_AHEAD + 1)][0]);
                sagebwd_dequant_add(j % 2 == 0 ? acc_dv[j / 2] : acc_dk[j / 2], acc_t[j % (T_AHEAD + 1)][0],
                                    j % 2 == 0 ? dv_scale : dk_scale);
            }
        }
        dv_bias += dv_scale;
        dk_bias += dk_scale;
        if (s % SETTLE_FOLDS == SETTLE_FOLDS - 1) {
            sagebwd_settle(acc_dv, dv_bias);
            sagebwd_settle(acc_dk, dk_bias);
        }
        sagebwd_store_ds_x4(sDS + ds_off, a_ds, warp, lane);
        sage_wgmma_touch(a_p);
        sage_wgmma_touch(a_ds);
        if (tid % 128 == 0) s_ds_max[(s & 1) * WGS + wg] = ds_max;
        sage_cp_async_wait<0>();   // the next step's LSE2 and D
        sage_fence_proxy_async();  // dS8 is the dQ product's A operand, last step's dQ tile the TMA's source
        if (tid == 0) sage_bulk_wait_read<0>();  // step s - 2's dQ tile was read: its buffer is free
        __syncthreads();           // dS8, the rows and last step's dQ tile are in; every wgmma read of this stage is done

        // dQ rows q0 .. q0 + BLOCK - 1, columns wg DQ_COLS ..: the two key tiles' INT32 sums (both in flight),
        // each with its own scale, into this step's dQ tile (reduced into the accumulator after the next barrier).
        float acc_dq[DQ_COLS / 8][4];
        // amax / 127 as a multiply here (no division between the barrier and the dequantization); dv_scale and
        // dk_scale above keep the division, whose multiply form makes ptxas spill at D 128.
        const float sq0 = s_ds_max[(s & 1) * WGS] * (1.f / INT8_MAX) * ks[0];
        const float sq1 = s_ds_max[(s & 1) * WGS + 1] * (1.f / INT8_MAX) * ks[1];
        int iq[WGS][1][DQ_COLS / 8][4];
        sage_wgmma_fence();
        #pragma unroll
        for (int i = 0; i < WGS; ++i) {
            #pragma unroll
            for (int kk = 0; kk < T_STEPS; ++kk) {
                ${dqWgmma}(iq[i][0], d_ds.at(ds_off + i * WG_KEYS + kk * 32), d_kt.at(i * WG_KEYS + kk * 32), kk > 0);
            }
            sage_wgmma_commit();
        }
        // While the dQ products run, the loading thread refills this step's stage (every wgmma read of it is done)
        // and adds last step's dQ tile into the accumulator.
        if (tid == 0) {
            if (s + BWD_STAGES < steps) {
                sagebwd_load_step(sStage + st_off, stage_bar(s & 1), &tm_q, &tm_qt, &tm_gt, &tm_g,
                                  step_q0(s + BWD_STAGES), step_head(s + BWD_STAGES), batch);
            }
            if (s > 0) sagebwd_reduce_dq(sDQ + ((s - 1) & 1) * DQ_BYTES, &tm_dq, step_q0(s - 1), step_head(s - 1), batch);
        }
        // The two tiles' sums as magic floats (sum + MAGIC, exact), the owed MAGIC * (sq0 + sq1) settled up front.
        const float dq_settle = -SAGE_ROUND_MAGIC * (sq0 + sq1);
        sage_wgmma_wait<1>();
        sage_wgmma_touch(iq[0][0]);
        #pragma unroll
        for (int nt = 0; nt < DQ_COLS / 8; ++nt) {
            #pragma unroll
            for (int e = 0; e < 4; ++e) acc_dq[nt][e] = fmaf(sagebwd_magic(iq[0][0][nt][e]), sq0, dq_settle);
        }
        sage_wgmma_wait<0>();
        sage_wgmma_touch(iq[1][0]);
        #pragma unroll
        for (int nt = 0; nt < DQ_COLS / 8; ++nt) {
            #pragma unroll
            for (int e = 0; e < 4; ++e) acc_dq[nt][e] = fmaf(sagebwd_magic(iq[1][0][nt][e]), sq1, acc_dq[nt][e]);
        }
        // This thread's float pairs in the swizzled panels: rows wi 16 + g (+ 8), the 16-byte chunk of columns
        // 8 nt + 2 t is 2 (nt % 4) + t / 2 (of the panel's 8), XORed with the row's g; the pair is half a chunk.
        const u32 dq_lane = sDQ + (s & 1) * DQ_BYTES + wg * (DQ_COLS / DQ_PANEL_COLS) * BLOCK * PANEL_ROW
                            + (wi * 16 + g) * PANEL_ROW + ((((t >> 1) ^ g) << 4) | (t & 1) * 8);
        #pragma unroll
        for (int nt = 0; nt < DQ_COLS / 8; ++nt) {
            #pragma unroll
            for (int h = 0; h < 2; ++h) {
                const u32 addr = (dq_lane ^ ((2 * nt % (PANEL_ROW / 16)) << 4))
                                 + (8 * nt / DQ_PANEL_COLS) * BLOCK * PANEL_ROW + 8 * h * PANEL_ROW;
                asm volatile("st.shared.v2.f32 [%0], {%1, %2};\n"
                             :: "r"(addr), "f"(acc_dq[nt][2 * h]), "f"(acc_dq[nt][2 * h + 1]) : "memory");
            }
        }
    }
    // The last step's dQ tile.
    sage_fence_proxy_async();
    __syncthreads();
    if (tid == 0 && steps > 0) {
        sagebwd_reduce_dq(sDQ + ((steps - 1) & 1) * DQ_BYTES, &tm_dq, step_q0(steps - 1), step_head(steps - 1), batch);
    }

    sagebwd_settle(acc_dv, dv_bias);
    sagebwd_settle(acc_dk, dk_bias);
    // dK (times the softmax scale) and dV of this thread's two keys.
    #pragma unroll
    for (int r = 0; r < 2; ++r) {
        const int key = my_key + 8 * r;
        if (key < nk) {
            u16* dk_row = dk + batch * dk_sb + kv_head * dk_sh + key * dk_sn + 2 * t;
            u16* dv_row = dv + batch * dv_sb + kv_head * dv_sh + key * dv_sn + 2 * t;
            #pragma unroll
            for (int h = 0; h < D_HALVES; ++h) {
                #pragma unroll
                for (int nt = 0; nt < DV_COLS / 8; ++nt) {
                    const int col = h * DV_COLS + nt * 8;
                    *reinterpret_cast<u32*>(dk_row + col) =
                            sage_pack2(acc_dk[h][nt][2 * r] * scale, acc_dk[h][nt][2 * r + 1] * scale);
                    *reinterpret_cast<u32*>(dv_row + col) = sage_pack2(acc_dv[h][nt][2 * r], acc_dv[h][nt][2 * r + 1]);
                }
            }
        }
    }
    if (tid == 0) sage_bulk_wait<0>();  // the reductions read their tiles before the block's shared memory goes
}
