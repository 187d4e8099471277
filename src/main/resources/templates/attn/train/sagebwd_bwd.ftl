<#-- SageBwd backward: one block per (BWD_KEYS keys, kv head, batch); each of its warps owns 16 keys
     and keeps their dK and dV in FP32 registers while the block walks the query blocks of BLOCK rows
     (and, with GQA, the query heads of the group) that see them. Per query block:
       S^T = K8 Q8^T (INT32) * ks * qs, P^T = exp2(S^T * scale * log2(e) - LSE2);
       dP^T = V dO^T (16-bit MMA, FP32), dS^T = P^T (dP^T - D);
       P and dS quantized per BLOCK x BLOCK tile (the warps of a tile share their maxima);
       dV += P8^T dO8 * sP * sdO, dK += dS8^T Q8 * sdS * qs (times the softmax scale at the end);
       dS8 goes through shared memory ([query][key], keys g and g + 8 side by side, the order of K^T's
       PERM_ROWS copy) so each warp computes 16 query rows x HEAD_DIM / DQ_SPLIT channels of
       dQ = sum over the BWD_TILES key tiles of dS8 K8 * sdS * ks and adds them into the FP32
       accumulator (red.global.add; the _dq kernel multiplies by the softmax scale). BWD_KEYS = 2 BLOCK
       halves the dQ atomics and the query-tile loads per key. -->

constexpr int TILE_WARPS = BLOCK / 16;          // warps of one P / dS tile (and K scale block)
constexpr int DQ_SPLIT = BWD_WARPS / (BLOCK / 16);  // warps per 16 query rows of dQ
constexpr int DQ_PAIRS = HEAD_DIM / 16 / DQ_SPLIT;  // head-dim column tile pairs of dQ per warp
static_assert(DQ_SPLIT * (BLOCK / 16) == BWD_WARPS && DQ_PAIRS * 16 * DQ_SPLIT == HEAD_DIM, "dQ warp map");

extern "C" __global__ void __launch_bounds__(BWD_THREADS, 1)
${entry}_bwd(const unsigned char* __restrict__ q8, const unsigned char* __restrict__ q8t,
             const unsigned char* __restrict__ k8, const unsigned char* __restrict__ k8t,
             const u16* __restrict__ v, const u16* __restrict__ d_o, const unsigned char* __restrict__ g8t,
             const float* __restrict__ q_scale, const float* __restrict__ k_scale,
             const float* __restrict__ g_scale, const float* __restrict__ lse2, const float* __restrict__ delta,
             float* __restrict__ dq_acc, u16* __restrict__ dk, u16* __restrict__ dv,
             i64 v_sb, i64 v_sh, i64 v_sn, i64 g_sb, i64 g_sh, i64 g_sn,
             i64 dk_sb, i64 dk_sh, i64 dk_sn, i64 dv_sb, i64 dv_sh, i64 dv_sn,
             int nq, int nk, int hq, int group, float scale, float scale_log2) {
    extern __shared__ __align__(128) unsigned char smem[];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, t = lane & 3;
    const int key0 = blockIdx.x * BWD_KEYS;
    const int kv_head = blockIdx.y, batch = blockIdx.z;
    const int warp_key = warp * 16;
    const int tile = warp / TILE_WARPS;         // this warp's P / dS tile and K scale block
    const i64 bkv = (i64)batch * gridDim.y + kv_head;
    const int q_blocks = (nq + BLOCK - 1) / BLOCK, k_blocks = (nk + BLOCK - 1) / BLOCK;
    const int nq_pad = q_blocks * BLOCK, nk_pad = k_blocks * BLOCK;

    const u32 sK8 = sage_smem_addr(smem);                // [BWD_KEYS][D]
    const u32 sK8t = sK8 + BWD_KEYS * HEAD_DIM;          // [D][BWD_KEYS]
    const u32 sQ8 = sK8t + BWD_KEYS * HEAD_DIM;          // [BLOCK][D]
    const u32 sQ8t = sQ8 + INT8_TILE;                    // [D][BLOCK]
    const u32 sG8t = sQ8t + INT8_TILE;                   // [D][BLOCK]
    const u32 sDS = sG8t + INT8_TILE;                    // [BLOCK queries][BWD_KEYS keys] INT8
    const u32 sV = sDS + BLOCK * BWD_KEYS;                // [BWD_KEYS][D] 16-bit
    const u32 sG = sV + BWD_KEYS * F16_ROW;              // [BLOCK][D] 16-bit
    float* s_lse = reinterpret_cast<float*>(smem + (sG + BLOCK * F16_ROW - sK8));
    float* s_delta = s_lse + BLOCK;
    float* s_max = s_delta + BLOCK;             // [2][BWD_WARPS]: P's and dS's warp maxima

    sage_load_tile8<BWD_KEYS, HEAD_DIM, BWD_THREADS>(sK8, k8 + bkv * nk * HEAD_DIM, HEAD_DIM, key0, nk, tid);
    sage_load_cols8<HEAD_DIM, BWD_KEYS, BWD_THREADS>(sK8t, k8t + bkv * HEAD_DIM * nk_pad, nk_pad, key0, nk_pad, tid);
    sage_load_tile<BWD_KEYS>(sV, v + batch * v_sb + kv_head * v_sh, v_sn, key0, nk, tid);
    sage_cp_async_commit();
    // K scales of the block's BWD_TILES key tiles (0 for a tile past the end).
    float ks[BWD_TILES];
    #pragma unroll
    for (int i = 0; i < BWD_TILES; ++i) {
        const int kb = key0 / BLOCK + i;
        ks[i] = kb < k_blocks ? k_scale[bkv * k_blocks + kb] : 0.f;
    }
    const float my_ks = ks[tile];

    float acc_dk[D_TILES][4], acc_dv[D_TILES][4];
    #pragma unroll
    for (int dt = 0; dt < D_TILES; ++dt) {
        #pragma unroll
        for (int e = 0; e < 4; ++e) acc_dk[dt][e] = acc_dv[dt][e] = 0.f;
    }
    // Queries that see any key of this block (causal masks are bottom-right aligned).
    const int q_first = sagebwd_first_query(key0, nq, nk);
    u32 unused[1][F16_STEPS][4];

    for (int head = kv_head * group; head < (kv_head + 1) * group; ++head) {
        const i64 bh = (i64)batch * hq + head;
        for (int q0 = q_first; q0 < nq; q0 += BLOCK) {
            __syncthreads();  // the previous step is done with the query tiles, dS and the row vectors
            sage_load_tile8<BLOCK, HEAD_DIM, BWD_THREADS>(sQ8, q8 + bh * nq * HEAD_DIM, HEAD_DIM, q0, nq, tid);
            sage_load_cols8<HEAD_DIM, BLOCK, BWD_THREADS>(sQ8t, q8t + bh * HEAD_DIM * nq_pad, nq_pad, q0, nq_pad, tid);
            sage_load_cols8<HEAD_DIM, BLOCK, BWD_THREADS>(sG8t, g8t + bh * HEAD_DIM * nq_pad, nq_pad, q0, nq_pad, tid);
            sage_load_tile<BLOCK>(sG, d_o + batch * g_sb + head * g_sh, g_sn, q0, nq, tid);
            sage_cp_async_commit();
            for (int i = tid; i < BLOCK; i += BWD_THREADS) {
                const bool in = q0 + i < nq;
                s_lse[i] = in ? lse2[bh * nq + q0 + i] : 0.f;
                s_delta[i] = in ? delta[bh * nq + q0 + i] : 0.f;
            }
            const float qs = q_scale[bh * q_blocks + q0 / BLOCK];
            const float gs = g_scale[bh * q_blocks + q0 / BLOCK];
            sage_cp_async_wait<0>();
            __syncthreads();

            // S^T and P^T = exp2(S^T * scale * log2(e) - LSE2) of this warp's keys.
            int acc_s[N_TILES][4];
            #pragma unroll
            for (int nt = 0; nt < N_TILES; ++nt) acc_s[nt][0] = acc_s[nt][1] = acc_s[nt][2] = acc_s[nt][3] = 0;
            {
                u32 k_frag[QK_STEPS][4];  // reloaded per step: registers go to dK and dV
                sagebwd_load_a<QK_STEPS, HEAD_DIM>(k_frag, sK8, warp_key, lane);
                sagebwd_mma_rows<QK_STEPS, BLOCK, HEAD_DIM>(acc_s, k_frag, sQ8, lane);
            }
            const float c = my_ks * qs * scale_log2;
            float p[1][N_TILES][4];
            sagebwd_probs(p, acc_s, c, key0 + warp_key + g, q0, nq, nk, s_lse, t);
            // dP^T = V_w dO^T in 16 bits, then dS^T = P^T (dP^T - D).
            float ds[1][N_TILES][4];
            sage_gemm_qk<1, N_TILES, F16_STEPS, false>(ds, unused, sV, warp_key, sG, lane);
            sagebwd_ds(ds, p, s_delta, t);
            // One scale per BLOCK x BLOCK tile of P and of dS: the tile's warps share their maxima.
            const float pm = sagebwd_warp_absmax(p), dm = sagebwd_warp_absmax(ds);
            if (lane == 0) { s_max[warp] = pm; s_max[BWD_WARPS + warp] = dm; }
            __syncthreads();
            float p_max = 0.f, ds_max[BWD_TILES];
            #pragma unroll
            for (int i = 0; i < BWD_TILES; ++i) {
                ds_max[i] = 0.f;
                #pragma unroll
                for (int w = i * TILE_WARPS; w < (i + 1) * TILE_WARPS; ++w) ds_max[i] = fmaxf(ds_max[i], s_max[BWD_WARPS + w]);
            }
            #pragma unroll
            for (int w = tile * TILE_WARPS; w < (tile + 1) * TILE_WARPS; ++w) p_max = fmaxf(p_max, s_max[w]);
            const float p_scale = __fdiv_rn(p_max, INT8_MAX), ds_scale = __fdiv_rn(ds_max[tile], INT8_MAX);

            u32 a[T_STEPS][4];
            sagebwd_pack<T_STEPS>(a, p, sagebwd_inv(p_max));
            const float dv_scale[2] = {p_scale * gs, p_scale * gs};
            sagebwd_mma_t_scaled<D_TILES / 2, BLOCK>(acc_dv, a, sG8t, 0, 0, dv_scale, lane);  // dV += P^T dO
            sagebwd_pack<T_STEPS>(a, ds, sagebwd_inv(ds_max[tile]));
            const float dk_scale[2] = {ds_scale * qs, ds_scale * qs};
            sagebwd_mma_t_scaled<D_TILES / 2, BLOCK>(acc_dk, a, sQ8t, 0, 0, dk_scale, lane);  // dK += dS^T Q
            sagebwd_store_ds(sDS, a, warp, g, t);
            __syncthreads();
            // dQ rows q0 + 16 (warp % TILE_WARPS) .. + 15, head-dim pairs of part warp / TILE_WARPS:
            // the BWD_TILES key tiles' dS8 K8 (each with its own dS and K scale), then one red.add each.
            const int dq_row = (warp % TILE_WARPS) * 16, dp0 = (warp / TILE_WARPS) * DQ_PAIRS;
            float acc_dq[2 * DQ_PAIRS][4];
            #pragma unroll
            for (int dt = 0; dt < 2 * DQ_PAIRS; ++dt) acc_dq[dt][0] = acc_dq[dt][1] = acc_dq[dt][2] = acc_dq[dt][3] = 0.f;
            #pragma unroll
            for (int i = 0; i < BWD_TILES; ++i) {
                u32 a_dq[T_STEPS][4];
                sagebwd_load_a<T_STEPS, BWD_KEYS>(a_dq, sDS, dq_row, lane, i * (BLOCK / 16));
                const float s = __fdiv_rn(ds_max[i], INT8_MAX) * ks[i];
                const float dq_scale[2] = {s, s};
                sagebwd_mma_t_scaled<DQ_PAIRS, BWD_KEYS>(acc_dq, a_dq, sK8t, dp0, i * (BLOCK / 16), dq_scale, lane);
            }
            #pragma unroll
            for (int h = 0; h < 2; ++h) {
                const int row = q0 + dq_row + g + 8 * h;
                if (row < nq) {
                    float* dst = dq_acc + (bh * nq + row) * HEAD_DIM + 16 * dp0 + 2 * t;
                    #pragma unroll
                    for (int dt = 0; dt < 2 * DQ_PAIRS; ++dt) {
                        sage_red_add(dst + 8 * dt, acc_dq[dt][2 * h]);
                        sage_red_add(dst + 8 * dt + 1, acc_dq[dt][2 * h + 1]);
                    }
                }
            }
        }
    }
    // dK (times the softmax scale) and dV of this warp's 16 keys.
    #pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int key = key0 + warp_key + g + 8 * h;
        if (key < nk) {
            u16* dk_row = dk + batch * dk_sb + kv_head * dk_sh + key * dk_sn + 2 * t;
            u16* dv_row = dv + batch * dv_sb + kv_head * dv_sh + key * dv_sn + 2 * t;
            #pragma unroll
            for (int dt = 0; dt < D_TILES; ++dt) {
                *reinterpret_cast<u32*>(dk_row + 8 * dt) = sage_pack2(acc_dk[dt][2 * h] * scale, acc_dk[dt][2 * h + 1] * scale);
                *reinterpret_cast<u32*>(dv_row + 8 * dt) = sage_pack2(acc_dv[dt][2 * h], acc_dv[dt][2 * h + 1]);
            }
        }
    }
}
