<#-- SageBwd training forward: one block per (FWD_BLOCK_M query rows, head, batch), 16 rows per
     warp; K and V^T blocks of BLOCK tokens stream through a double-buffered cp.async pipeline. Per
     key block j and row: x = dot(q8, k8) * qs * ks * scale * log2(e) (exact INT32 dot), block max bm,
     m_new = max(m, bm); e = exp2(x - bm) in [0, 1] is P~ / s_P with s_P = exp2(bm - m_new) / 127, so
     its INT8 codes are rint(127 e) and O = O exp2(m - m_new) + s_P vs dot(p8, v8); l sums the
     unquantized P~ = e exp2(bm - m_new). The LSE of the smoothed scores (log2 domain) is kept for
     the backward; the caller's LSE adds back the smoothing shift. -->

// Online softmax of one key block (masked keys hold -inf): x becomes e = exp2(x - bm); returns
// alpha = exp2(m_old - m_new) and f = s_P * vs per row, and adds the block's row sums to l.
__device__ __forceinline__ void sagebwd_softmax_step(float (&x)[1][N_TILES][4], float (&m_run)[2], float (&l_run)[2],
                                                     float (&alpha)[2], float (&f)[2], float vs) {
    #pragma unroll
    for (int h = 0; h < 2; ++h) {
        float bm = SAGE_NEG_INF;
        #pragma unroll
        for (int nt = 0; nt < N_TILES; ++nt) bm = fmaxf(bm, fmaxf(x[0][nt][2 * h], x[0][nt][2 * h + 1]));
        bm = fmaxf(bm, __shfl_xor_sync(0xffffffffu, bm, 1));
        bm = fmaxf(bm, __shfl_xor_sync(0xffffffffu, bm, 2));
        const float m_new = fmaxf(m_run[h], bm);
        // Rows that have seen only masked keys keep m = -inf, l = 0 and O = 0.
        alpha[h] = m_new == SAGE_NEG_INF ? 1.f : sage_exp2(m_run[h] - m_new);
        const bool empty = bm == SAGE_NEG_INF;
        const float base = empty ? 0.f : bm;
        const float fp = empty ? 0.f : sage_exp2(bm - m_new);
        float rs = 0.f;
        #pragma unroll
        for (int nt = 0; nt < N_TILES; ++nt) {
            #pragma unroll
            for (int e = 0; e < 2; ++e) {
                x[0][nt][2 * h + e] = sage_exp2(x[0][nt][2 * h + e] - base);
                rs += x[0][nt][2 * h + e];
            }
        }
        l_run[h] = fmaf(rs, fp, l_run[h] * alpha[h]);
        f[h] = __fdiv_rn(fp, INT8_MAX) * vs;
        m_run[h] = m_new;
    }
}

extern "C" __global__ void __launch_bounds__(FWD_THREADS)
${entry}_fwd(const unsigned char* __restrict__ q8, const unsigned char* __restrict__ k8,
             const unsigned char* __restrict__ v8t, const float* __restrict__ q_scale,
             const float* __restrict__ k_scale, const float* __restrict__ v_scale,
             const float* __restrict__ q_shift, u16* __restrict__ o, float* __restrict__ lse,
             float* __restrict__ lse2, i64 o_sb, i64 o_sh, i64 o_sn, int nq, int nk, int group,
             float scale_log2) {
    extern __shared__ __align__(128) unsigned char smem[];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, t = lane & 3;
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

    // The backward's LSE (smoothed scores, log2 domain), then the caller's: plus the smoothing shift.
    float m_out[1][2], l_out[1][2];
    #pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int row = my_row + g + 8 * h;
        float l = l_run[h];
        l += __shfl_xor_sync(0xffffffffu, l, 1);
        l += __shfl_xor_sync(0xffffffffu, l, 2);
        if (t == 0 && row < nq) lse2[bh * nq + row] = l > 0.f ? m_run[h] + sage_log2(l) : SAGE_NEG_INF;
        m_out[0][h] = m_run[h] + (row < nq ? q_shift[bh * nq + row] * scale_log2 : 0.f);
        l_out[0][h] = l_run[h];
    }
    sage_store_o_direct<1, D_TILES>(acc_o, m_out, l_out, o + batch * o_sb + head * o_sh, o_sn, lse + bh * nq + row0,
                                    row0, warp_row, nq, lane, true);
}
