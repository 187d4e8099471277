<#-- O normalised by the row sums and written from registers, LSE = (m + log2 l) * ln 2; needs only
     the 16-bit pack (ptx.ftl). -->
// The same epilogue without staging: each thread writes its own pairs of O straight to global
// memory (4-byte stores). Needs no shared memory and few registers, so persistent kernels keep
// their accumulators in registers across tiles.
// O_TILES >= D_TILES: accumulator tiles past the head dim (e.g. row sums) are not stored.
template <int M_TILES, int D_TILES, int O_TILES = D_TILES>
__device__ __forceinline__ void sage_store_o_direct(float (&o)[M_TILES][O_TILES][4], const float (&m_run)[M_TILES][2],
                                                    float (&l_run)[M_TILES][2], u16* __restrict__ out, i64 o_sn,
                                                    float* __restrict__ lse_row0, int row0, int warp_row, int nq,
                                                    int lane, bool write_lse) {
    const int g = lane >> 2, t = lane & 3;
    #pragma unroll
    for (int mt = 0; mt < M_TILES; ++mt) {
        #pragma unroll
        for (int h = 0; h < 2; ++h) {
            float l = l_run[mt][h];
            l += __shfl_xor_sync(0xffffffffu, l, 1);
            l += __shfl_xor_sync(0xffffffffu, l, 2);
            // A row with no visible key has l = 0: O is defined as 0 and LSE as -inf.
            const float inv = l > 0.f ? 1.f / l : 0.f;
            const int r = warp_row + mt * 16 + g + 8 * h;
            if (row0 + r < nq) {
                #pragma unroll
                for (int dt = 0; dt < D_TILES; ++dt) {
                    *reinterpret_cast<u32*>(out + (i64)(row0 + r) * o_sn + 8 * dt + 2 * t) =
                        sage_pack2(o[mt][dt][2 * h] * inv, o[mt][dt][2 * h + 1] * inv);
                }
                if (write_lse && t == 0) {
                    lse_row0[r] = l > 0.f ? (m_run[mt][h] + sage_log2(l)) * SAGE_LN2 : SAGE_NEG_INF;
                }
            }
        }
    }
}
