<#-- SageBwd training forward on mma.sync (archs without wgmma): one block per (FWD_BLOCK_M query
     rows, head, batch), 16 rows per warp; K and V^T blocks of BLOCK tokens stream through a
     double-buffered cp.async pipeline. The softmax and the epilogue are sagebwd_softmax.ftl's. -->

extern "C" __global__ void __launch_bounds__(FWD_THREADS)
${entry}_fwd(const unsigned char* __restrict__ q8, const unsigned char* __restrict__ k8,
             const unsigned char* __restrict__ v8t, const float* __restrict__ q_scale,
             const float* __restrict__ k_scale, const float* __restrict__ v_scale,
             const float* __restrict__ q_shift, u16* __restrict__ o, float* __restrict__ lse,
             float* __restrict__ lse2, i64 o_sb, i64 o_sh, i64 o_sn, int nq, int nk, int group,
             float scale_log2) {
    extern __shared__ __align__(128) unsigned char smem[];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int m_block = CAUSAL ? (int)gridDim.x - 1 - (int)blockIdx.x : (int)blockIdx.x;
    const int head = blockIdx.y, batch = blockIdx.z, heads = gridDim.y;
    const int kv_head = head / group;
    const i64 bh = (i64)batch * heads + head;
    const i64 bkv = (i64)batch * (heads / group) + kv_head;
    const int row0 = m_block * FWD_BLOCK_M, warp_row = warp * 16;
    const int n_end = CAUSAL ? min(nk, row0 + FWD_BLOCK_M + nk - nq) : nk;
    const int n_blocks = n_end > 0 ? (n_end + BLOCK - 1) / BLOCK : 0;
    const int first_masked_key = CAUSAL ? min(nk, row0 + nk - nq + 1) : nk;
    const int q_blocks = (nq + BLOCK - 1) / BLOCK, k_blocks = (nk + BLOCK - 1) / BLOCK;
    const int nk_pad = k_blocks * BLOCK;
    const unsigned char* q_ptr = q8 + bh * nq * HEAD_DIM;
    const unsigned char* k_ptr = k8 + bkv * nk * HEAD_DIM;
    const unsigned char* v_ptr = v8t + bkv * HEAD_DIM * nk_pad;
    const u32 sQ = sage_smem_addr(smem);
    const u32 sK = sQ + FWD_BLOCK_M * HEAD_DIM;
    const u32 sV = sK + 2 * INT8_TILE;

    // Commit groups, in order: Q, K[0], V[0]; then per block K[j+1], V[j+1] (empty past the end).
    sage_load_tile8<FWD_BLOCK_M, HEAD_DIM, FWD_THREADS>(sQ, q_ptr, HEAD_DIM, row0, nq, tid);
    sage_cp_async_commit();
    if (n_blocks > 0) sage_load_tile8<BLOCK, HEAD_DIM, FWD_THREADS>(sK, k_ptr, HEAD_DIM, 0, nk, tid);
    sage_cp_async_commit();
    if (n_blocks > 0) sage_load_cols8<HEAD_DIM, BLOCK, FWD_THREADS>(sV, v_ptr, nk_pad, 0, nk_pad, tid);
    sage_cp_async_commit();

    // A warp's 16 rows lie in one Q block (FWD_BLOCK_M and 16 divide BLOCK's multiples).
    const int my_row = row0 + warp_row;
    const float qsl = my_row < nq ? q_scale[bh * q_blocks + my_row / BLOCK] * scale_log2 : 0.f;
    const float* ks_ptr = k_scale + bkv * k_blocks;
    const float* vs_ptr = v_scale + bkv * k_blocks;
    float acc_o[1][D_TILES][4];
    float m_run[2] = {SAGE_NEG_INF, SAGE_NEG_INF};
    float l_run[2] = {0.f, 0.f};
    #pragma unroll
    for (int dt = 0; dt < D_TILES; ++dt) acc_o[0][dt][0] = acc_o[0][dt][1] = acc_o[0][dt][2] = acc_o[0][dt][3] = 0.f;
    u32 q_frag[QK_STEPS][4];

    for (int j = 0; j < n_blocks; ++j) {
        const u32 stage = (u32)(j & 1) * INT8_TILE;
        sage_cp_async_wait<1>();  // K[j] (and Q) landed; V[j] may still be in flight
        __syncthreads();
        if (j == 0) sagebwd_load_a<QK_STEPS, HEAD_DIM>(q_frag, sQ, warp_row, lane);
        if (j + 1 < n_blocks) {
            sage_load_tile8<BLOCK, HEAD_DIM, FWD_THREADS>(sK + ((j + 1) & 1) * INT8_TILE, k_ptr, HEAD_DIM,
                                                          (j + 1) * BLOCK, nk, tid);
        }
        sage_cp_async_commit();

        int acc_i[N_TILES][4];
        #pragma unroll
        for (int nt = 0; nt < N_TILES; ++nt) acc_i[nt][0] = acc_i[nt][1] = acc_i[nt][2] = acc_i[nt][3] = 0;
        sagebwd_mma_rows<QK_STEPS, BLOCK, HEAD_DIM>(acc_i, q_frag, sK + stage, lane);
        const float c = qsl * ks_ptr[j];
        float x[1][N_TILES][4];
        #pragma unroll
        for (int nt = 0; nt < N_TILES; ++nt) {
            #pragma unroll
            for (int e = 0; e < 4; ++e) x[0][nt][e] = (float)acc_i[nt][e] * c;
        }
        if ((j + 1) * BLOCK > first_masked_key) sage_apply_mask<1, N_TILES>(x, my_row, j * BLOCK, nq, nk, lane);
        float alpha[2], f[2];
        sagebwd_softmax_step(x, m_run, l_run, alpha, f, vs_ptr[j]);

        sage_cp_async_wait<1>();  // V[j] landed; K[j+1] may still be in flight
        __syncthreads();
        if (j + 1 < n_blocks) {
            sage_load_cols8<HEAD_DIM, BLOCK, FWD_THREADS>(sV + ((j + 1) & 1) * INT8_TILE, v_ptr, nk_pad,
                                                          (j + 1) * BLOCK, nk_pad, tid);
        }
        sage_cp_async_commit();

        u32 p[T_STEPS][4];
        sagebwd_pack<T_STEPS>(p, x, INT8_MAX);
        #pragma unroll
        for (int dt = 0; dt < D_TILES; ++dt) {
            #pragma unroll
            for (int e = 0; e < 4; ++e) acc_o[0][dt][e] *= alpha[e / 2];
        }
        sagebwd_mma_t_scaled<D_TILES / 2, BLOCK>(acc_o[0], p, sV + stage, 0, 0, f, lane);
    }
    sage_cp_async_wait<0>();

    sagebwd_fwd_epilogue(acc_o, m_run, l_run, o, lse, lse2, q_shift, o_sb, o_sh, o_sn, nq, scale_log2, bh, batch,
                         head, row0, warp_row, lane);
}
