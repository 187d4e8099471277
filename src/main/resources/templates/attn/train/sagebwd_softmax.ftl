<#-- SageBwd's training forward, shared by both kernels (sagebwd_fwd.ftl on mma.sync,
     sagebwd_fwd_wgmma.ftl on wgmma): per key block j and row, x = dot(q8, k8) * qs * ks * scale *
     log2(e) (exact INT32 dot), block max bm, m_new = max(m, bm); e = exp2(x - bm) in [0, 1] is P~ / s_P
     with s_P = exp2(bm - m_new) / 127, so its INT8 codes are rint(127 e) and O = O exp2(m - m_new) + s_P
     vs dot(p8, v8); l sums the unquantized P~ = e exp2(bm - m_new). The LSE of the smoothed scores (log2
     domain) is kept for the backward; the caller's LSE adds back the smoothing shift. The softmax step
     comes in two forms with the same math: from FP32 scores (mma.sync) and from magic-float INT32 sums
     with the scale fused into the exponent's FMA (wgmma). -->

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

// Online softmax of one key block from its scores as magic floats (x = dot + MAGIC; masked keys -inf)
// and c = qs * ks * scale * log2(e) > 0: the block's row max bm = (max x - MAGIC) c, m_new = max(m, bm),
// x becomes e = exp2(x c - MAGIC c - bm) in [0, 1] (P~ / s_P, s_P = exp2(bm - m_new) / 127); returns
// alpha = exp2(m_old - m_new) and f = s_P * vs per row (vs127 = vs / 127), and adds the block's
// unquantized row sums to l.
__device__ __forceinline__ void sagebwd_softmax_magic(float (&x)[1][N_TILES][4], float c, float (&m_run)[2],
                                                      float (&l_run)[2], float (&alpha)[2], float (&f)[2],
                                                      float vs127) {
    #pragma unroll
    for (int h = 0; h < 2; ++h) {
        float xm[2] = {SAGE_NEG_INF, SAGE_NEG_INF};  // two chains: half the dependent latency
        #pragma unroll
        for (int nt = 0; nt < N_TILES; ++nt) xm[nt & 1] = fmaxf(xm[nt & 1], fmaxf(x[0][nt][2 * h], x[0][nt][2 * h + 1]));
        float mx = fmaxf(xm[0], xm[1]);
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const bool empty = mx == SAGE_NEG_INF;  // every key of the block masked for this row
        const float bm = empty ? SAGE_NEG_INF : (mx - SAGE_ROUND_MAGIC) * c;
        const float m_new = fmaxf(m_run[h], bm);
        // Rows that have seen only masked keys keep m = -inf, l = 0 and O = 0.
        alpha[h] = m_new == SAGE_NEG_INF ? 1.f : sage_exp2(m_run[h] - m_new);
        const float bias = empty ? 0.f : fmaf(-SAGE_ROUND_MAGIC, c, -bm);
        const float fp = empty ? 0.f : sage_exp2(bm - m_new);
        float rs[2] = {0.f, 0.f};
        #pragma unroll
        for (int nt = 0; nt < N_TILES; ++nt) {
            #pragma unroll
            for (int e = 0; e < 2; ++e) {
                x[0][nt][2 * h + e] = sage_exp2(fmaf(x[0][nt][2 * h + e], c, bias));
                rs[e] += x[0][nt][2 * h + e];
            }
        }
        l_run[h] = fmaf(rs[0] + rs[1], fp, l_run[h] * alpha[h]);
        f[h] = fp * vs127;
        m_run[h] = m_new;
    }
}

// The backward's LSE (smoothed scores, log2 domain) and the caller's (plus the smoothing shift), then O
// normalised by l, from the registers of a warp's 16 rows.
__device__ __forceinline__ void sagebwd_fwd_epilogue(float (&acc_o)[1][D_TILES][4], const float (&m_run)[2],
                                                     const float (&l_run)[2], u16* __restrict__ o,
                                                     float* __restrict__ lse, float* __restrict__ lse2,
                                                     const float* __restrict__ q_shift, i64 o_sb, i64 o_sh,
                                                     i64 o_sn, int nq, float scale_log2, i64 bh, int batch,
                                                     int head, int row0, int warp_row, int lane) {
    const int g = lane >> 2, t = lane & 3;
    const int my_row = row0 + warp_row;
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
