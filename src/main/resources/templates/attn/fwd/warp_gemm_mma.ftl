<#-- Warp-level products of the forward pass with mma.sync m16n8k16. A warp owns M_TILES 16-row
     query tiles; every K/V fragment read from shared memory is reused across them. -->

// A fragments of Q for one 16-row tile and one 16-wide head-dim step (ldmatrix x4: lanes 0-15 give
// rows 0-15 of the low 8 columns, lanes 16-31 the same rows of the high 8).
__device__ __forceinline__ void sage_load_q_frag(u32 (&a)[4], u32 sQ, int row, int kk, int lane) {
    const int r = row + (lane & 7) + ((lane >> 3) & 1) * 8;
    const int c = kk * 2 + (lane >> 4);
    sage_ldmatrix_x4(a, sQ + sage_tile_offset(r, c));
}

// S[mt][nt] = Q_tile(mt) * K_block^T for all N_TILES key columns of 8.
template <int M_TILES, int N_TILES, int K_STEPS, bool Q_IN_REGS>
__device__ __forceinline__ void sage_gemm_qk(float (&s)[M_TILES][N_TILES][4], const u32 (&qf)[M_TILES][K_STEPS][4],
                                             u32 sQ, int q_row, u32 sK, int lane) {
    #pragma unroll
    for (int mt = 0; mt < M_TILES; ++mt) {
        #pragma unroll
        for (int nt = 0; nt < N_TILES; ++nt) {
            s[mt][nt][0] = s[mt][nt][1] = s[mt][nt][2] = s[mt][nt][3] = 0.f;
        }
    }
    #pragma unroll
    for (int kk = 0; kk < K_STEPS; ++kk) {
        u32 a[M_TILES][4];
        #pragma unroll
        for (int mt = 0; mt < M_TILES; ++mt) {
            if (Q_IN_REGS) {
                a[mt][0] = qf[mt][kk][0]; a[mt][1] = qf[mt][kk][1];
                a[mt][2] = qf[mt][kk][2]; a[mt][3] = qf[mt][kk][3];
            } else {
                sage_load_q_frag(a[mt], sQ, q_row + mt * 16, kk, lane);
            }
        }
        #pragma unroll
        for (int np = 0; np < N_TILES / 2; ++np) {
            // Keys np*16.. np*16+15: registers 0,1 are B of key tile 2np, 2,3 of tile 2np+1.
            u32 b[4];
            const int r = np * 16 + (lane & 7) + (lane >> 4) * 8;
            const int c = kk * 2 + ((lane >> 3) & 1);
            sage_ldmatrix_x4(b, sK + sage_tile_offset(r, c));
            #pragma unroll
            for (int mt = 0; mt < M_TILES; ++mt) {
                sage_mma16816(s[mt][2 * np], a[mt], b[0], b[1]);
                sage_mma16816(s[mt][2 * np + 1], a[mt], b[2], b[3]);
            }
        }
    }
}

// O[mt] += P(mt) * V_block. P comes from the S accumulators in registers: the accumulator of key
// tiles 2kk and 2kk+1 is exactly the A fragment of key step kk.
template <int M_TILES, int N_TILES, int D_TILES>
__device__ __forceinline__ void sage_gemm_pv(float (&o)[M_TILES][D_TILES][4], const float (&p)[M_TILES][N_TILES][4],
                                             u32 sV, int lane) {
    #pragma unroll
    for (int kk = 0; kk < N_TILES / 2; ++kk) {
        u32 a[M_TILES][4];
        #pragma unroll
        for (int mt = 0; mt < M_TILES; ++mt) {
            a[mt][0] = sage_pack2(p[mt][2 * kk][0], p[mt][2 * kk][1]);
            a[mt][1] = sage_pack2(p[mt][2 * kk][2], p[mt][2 * kk][3]);
            a[mt][2] = sage_pack2(p[mt][2 * kk + 1][0], p[mt][2 * kk + 1][1]);
            a[mt][3] = sage_pack2(p[mt][2 * kk + 1][2], p[mt][2 * kk + 1][3]);
        }
        #pragma unroll
        for (int dp = 0; dp < D_TILES / 2; ++dp) {
            // Transposed 8x8 loads of V: registers 0,1 are B of head-dim tile 2dp, 2,3 of 2dp+1.
            u32 b[4];
            const int r = kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
            const int c = dp * 2 + (lane >> 4);
            sage_ldmatrix_x4_trans(b, sV + sage_tile_offset(r, c));
            #pragma unroll
            for (int mt = 0; mt < M_TILES; ++mt) {
                sage_mma16816(o[mt][2 * dp], a[mt], b[0], b[1]);
                sage_mma16816(o[mt][2 * dp + 1], a[mt], b[2], b[3]);
            }
        }
    }
}
