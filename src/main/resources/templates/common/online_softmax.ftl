<#-- Online softmax over one block of S accumulators (FlashAttention-2), in the log2 domain:
     scores are multiplied by scale*log2(e) so exp becomes exp2. Each thread owns two rows per
     16-row tile (g and g+8); a row's values are spread over the 4 threads of a quad, so row
     reductions are two xor-shuffles. The row sum l stays per-thread until the epilogue.
     `p_shift_log2` scales every P by 2^p_shift (e.g. log2(448) so the row max maps to FP8's
     largest value); l carries the same factor, which cancels in O / l. -->
template <int M_TILES, int N_TILES, int D_TILES>
__device__ __forceinline__ void sage_online_softmax(float (&s)[M_TILES][N_TILES][4],
                                                    float (&o)[M_TILES][D_TILES][4],
                                                    float (&m_run)[M_TILES][2], float (&l_run)[M_TILES][2],
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
            const float m_use = m_new == SAGE_NEG_INF ? 0.f : m_new - p_shift_log2;
            const float alpha = sage_exp2(m_run[mt][h] - (m_new == SAGE_NEG_INF ? 0.f : m_new));
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
            l_run[mt][h] = l_run[mt][h] * alpha + sum;
            #pragma unroll
            for (int dt = 0; dt < D_TILES; ++dt) {
                o[mt][dt][2 * h] *= alpha;
                o[mt][dt][2 * h + 1] *= alpha;
            }
        }
    }
}
