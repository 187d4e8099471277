<#-- Online softmax over one block of S accumulators (FlashAttention-2), in the log2 domain:
     scores are multiplied by scale*log2(e) so exp becomes exp2. Each thread owns two rows per
     16-row tile (g and g+8); a row's values are spread over the 4 threads of a quad, so row
     reductions are two xor-shuffles. The row sum l stays per-thread until the epilogue.
     `p_shift_log2` scales every P by 2^p_shift (e.g. log2(448) so the row max maps to FP8's
     largest value); l carries the same factor, which cancels in O / l. -->
// One block's softmax step without touching O: updates m and l, turns S into P in place and
// returns in `alpha` the factor O must be multiplied by (exp2(m_old - m_new)) before this block's
// P V is added. Pipelined kernels apply alpha later, while an MMA is still writing elsewhere.
template <int M_TILES, int N_TILES>
__device__ __forceinline__ void sage_softmax_step(float (&s)[M_TILES][N_TILES][4], float (&m_run)[M_TILES][2],
                                                  float (&l_run)[M_TILES][2], float (&alpha)[M_TILES][2],
                                                  float scale_log2, float p_shift_log2) {
    #pragma unroll
    for (int mt = 0; mt < M_TILES; ++mt) {
        #pragma unroll
        for (int h = 0; h < 2; ++h) {
            float mx = SAGE_NEG_INF;
            #pragma unroll
            for (int nt = 0; nt < N_TILES; ++nt) {
                mx = fmaxf(mx, fmaxf(s[mt][nt][2 * h], s[mt][nt][2 * h + 1]));
            }
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
            const float m_new = fmaxf(m_run[mt][h], mx * scale_log2);
            // A row that has seen only masked keys keeps m = -inf; exp2 against 0 keeps it at 0.
            const float m_base = m_new == SAGE_NEG_INF ? 0.f : m_new;
            const float m_use = m_base - p_shift_log2;
            alpha[mt][h] = sage_exp2(m_run[mt][h] - m_base);
            m_run[mt][h] = m_new;
            float sum = 0.f;
            #pragma unroll
            for (int nt = 0; nt < N_TILES; ++nt) {
                #pragma unroll
                for (int e = 0; e < 2; ++e) {
                    const float p = sage_exp2(fmaf(s[mt][nt][2 * h + e], scale_log2, -m_use));
                    s[mt][nt][2 * h + e] = p;
                    sum += p;
                }
            }
            l_run[mt][h] = l_run[mt][h] * alpha[mt][h] + sum;
        }
    }
}

// Multiplies each row of O by its alpha.
template <int M_TILES, int D_TILES>
__device__ __forceinline__ void sage_rescale_o(float (&o)[M_TILES][D_TILES][4], const float (&alpha)[M_TILES][2]) {
    #pragma unroll
    for (int mt = 0; mt < M_TILES; ++mt) {
        #pragma unroll
        for (int dt = 0; dt < D_TILES; ++dt) {
            o[mt][dt][0] *= alpha[mt][0];
            o[mt][dt][1] *= alpha[mt][0];
            o[mt][dt][2] *= alpha[mt][1];
            o[mt][dt][3] *= alpha[mt][1];
        }
    }
}

// The FlashAttention-2 step: softmax of one block, then O rescaled at once.
template <int M_TILES, int N_TILES, int D_TILES>
__device__ __forceinline__ void sage_online_softmax(float (&s)[M_TILES][N_TILES][4],
                                                    float (&o)[M_TILES][D_TILES][4],
                                                    float (&m_run)[M_TILES][2], float (&l_run)[M_TILES][2],
                                                    float scale_log2, float p_shift_log2) {
    float alpha[M_TILES][2];
    sage_softmax_step<M_TILES, N_TILES>(s, m_run, l_run, alpha, scale_log2, p_shift_log2);
    sage_rescale_o<M_TILES, D_TILES>(o, alpha);
}
