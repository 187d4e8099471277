<#-- Epilogue of the int8-fp8 kernels: O times V's per-channel scales, and the LSE given back the
     row shift K smoothing removed (qshift * scale) minus P~'s log2 scale (SAGE2_P_LOG2); then O is normalised
     by l (the row-sum tile after O's D_TILES) and written straight from registers (and LSE). Needs HEAD_DIM, D_TILES, SAGE2_P_LOG2 and
     WRITE_LSE from the kernel. -->
__device__ __forceinline__ void sage2_epilogue(float (&acc_o)[1][O_TILES][4], float (&m_run)[1][2],
                                               u16* __restrict__ o,
                                               float* __restrict__ lse, const float* __restrict__ q_shift,
                                               const float* __restrict__ v_scale, i64 o_sb, i64 o_sh, i64 o_sn,
                                               int nq, float scale_log2, int heads, int group, int head,
                                               int kv_head, int batch, int row0, int warp_row, int lane) {
    const int g = lane >> 2, t = lane & 3;
    // l: every column of the row-sum tile holds the row's sum; lane t = 0 hands it to the quad's sum.
    float l_run[1][2];
    #pragma unroll
    for (int h = 0; h < 2; ++h) l_run[0][h] = t == 0 ? acc_o[0][D_TILES][2 * h] : 0.f;
    const float* vs = v_scale + ((i64)batch * (heads / group) + kv_head) * HEAD_DIM + 2 * t;
    #pragma unroll
    for (int dt = 0; dt < D_TILES; ++dt) {
        const float2 sc = *reinterpret_cast<const float2*>(vs + 8 * dt);
        acc_o[0][dt][0] *= sc.x; acc_o[0][dt][1] *= sc.y;
        acc_o[0][dt][2] *= sc.x; acc_o[0][dt][3] *= sc.y;
    }
    #pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int row = row0 + warp_row + g + 8 * h;
        // qshift only moves the LSE (without it the quantizers do not compute it).
        const float shift = WRITE_LSE && row < nq ? q_shift[((i64)batch * heads + head) * nq + row] : 0.f;
        m_run[0][h] += shift * scale_log2 - SAGE2_P_LOG2;
    }
    u16* o_ptr = o + batch * o_sb + head * o_sh;
    float* lse_ptr = lse + ((i64)batch * heads + head) * nq + row0;
    sage_store_o_direct<1, D_TILES, O_TILES>(acc_o, m_run, l_run, o_ptr, o_sn, lse_ptr, row0, warp_row, nq, lane, WRITE_LSE);
}

