<#-- Forward epilogue: normalise O by the row sums, stage it through this warp's rows of the Q tile
     (no other warp reads them) and write 16-byte rows; then LSE = (m + log2 l) * ln 2. -->
template <int M_TILES, int D_TILES>
__device__ __forceinline__ void sage_store_o(float (&o)[M_TILES][D_TILES][4], const float (&m_run)[M_TILES][2],
                                             float (&l_run)[M_TILES][2], unsigned char* stage, u16* __restrict__ out,
                                             i64 o_sn, float* __restrict__ lse_row0, int row0, int warp_row,
                                             int nq, int lane, bool write_lse) {
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
            #pragma unroll
            for (int dt = 0; dt < D_TILES; ++dt) {
                const u32 packed = sage_pack2(o[mt][dt][2 * h] * inv, o[mt][dt][2 * h + 1] * inv);
                *reinterpret_cast<u32*>(stage + sage_tile_offset(r, dt) + 4 * t) = packed;
            }
            if (write_lse && t == 0 && row0 + r < nq) {
                lse_row0[r] = l > 0.f ? (m_run[mt][h] + sage_log2(l)) * SAGE_LN2 : SAGE_NEG_INF;
            }
        }
    }
    __syncwarp();
    #pragma unroll
    for (int it = 0; it < M_TILES * 16 * ${rowChunks} / 32; ++it) {
        const int idx = lane + it * 32;
        const int r = warp_row + idx / ${rowChunks};
        const int c = idx % ${rowChunks};
        if (row0 + r < nq) {
            *reinterpret_cast<u32x4*>(out + (i64)(row0 + r) * o_sn + c * 8) =
                *reinterpret_cast<const u32x4*>(stage + sage_tile_offset(r, c));
        }
    }
}

<#include "store_o_direct.ftl">
