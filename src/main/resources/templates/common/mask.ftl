<#-- Masks S accumulators to -inf for keys past the end of the sequence and, when causal, for keys
     a query may not see. Causal masking is bottom-right aligned: query i sees key j when
     j <= i + nk - nq. `row_base` is the first query row of this warp, `key0` the first key. -->
template <int M_TILES, int N_TILES>
__device__ __forceinline__ void sage_apply_mask(float (&s)[M_TILES][N_TILES][4], int row_base, int key0,
                                                int nq, int nk, int lane) {
    const int g = lane >> 2, t = lane & 3;
    #pragma unroll
    for (int mt = 0; mt < M_TILES; ++mt) {
        #pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int row = row_base + mt * 16 + g + 8 * h;
            const int limit = ${causal?then("min(nk, row + nk - nq + 1)", "nk")};
            #pragma unroll
            for (int nt = 0; nt < N_TILES; ++nt) {
                #pragma unroll
                for (int e = 0; e < 2; ++e) {
                    const int key = key0 + nt * 8 + 2 * t + e;
                    if (key >= limit) {
                        s[mt][nt][2 * h + e] = SAGE_NEG_INF;
                    }
                }
            }
        }
    }
}
