<#include "../../common/header.ftl">
<#-- SageAttention2 forward with mma.sync m16n8k32 (sm_89, sm_120a; runs on sm_90a too): the
     portable form of sage2_fwd_wgmma.ftl over the same quantized operands
     (docs/int8-fp8-quantization.md). Each warp owns 16 query rows; K and V^T blocks stream through a
     double-buffered cp.async pipeline as in flash_fwd_mma.ftl. Per key block: S = (Q8 K8^T) *
     qscale * kscale, online softmax with P~ = exp2(S*sl - m + log2 448), P~ packed to FP8 A
     fragments in registers (V's token permutation makes them line up), P~ V^T into a fresh FP32
     accumulator added to O (two-level accumulation). -->
<#include "../../common/types.ftl">
<#include "../../common/ptx.ftl">
<#include "../../common/fp8.ftl">
<#include "../../common/int8_fp8_layout.ftl">
<#include "../../common/mma_8bit.ftl">
<#include "../../common/smem_tile.ftl">
<#include "../../common/mask.ftl">
<#include "epilogue_fwd.ftl">

constexpr int BLOCK_M = ${blockM};
constexpr int BLOCK_N = ${blockN};
constexpr int HEAD_DIM = ${headDim};
constexpr int THREADS = ${threads};
constexpr int N_TILES = BLOCK_N / 8;
constexpr int D_TILES = HEAD_DIM / 8;
constexpr int QK_STEPS = HEAD_DIM / 32;
constexpr int PV_STEPS = BLOCK_N / 32;
constexpr int K_SCALE_BLOCKS = BLOCK_N / K_SCALE_TOKENS;
constexpr u32 Q_TILE_BYTES = ${qTileBytes};
constexpr u32 K_TILE_BYTES = ${kvTileBytes};
constexpr u32 V_TILE_BYTES = ${kvTileBytes};  // V^T: HEAD_DIM rows of BLOCK_N bytes
constexpr bool CAUSAL = ${causal?c};
constexpr bool WRITE_LSE = ${lse?c};

<#include "sage2_block.ftl">
<#include "epilogue_sage2.ftl">

extern "C" __global__ void __launch_bounds__(THREADS, ${minBlocksPerSm})
${entry}(const unsigned char* __restrict__ q8, const unsigned char* __restrict__ k8,
         const unsigned char* __restrict__ v8t, u16* __restrict__ o, float* __restrict__ lse,
         const float* __restrict__ q_scale, const float* __restrict__ k_scale,
         const float* __restrict__ q_shift, const float* __restrict__ v_scale,
         i64 o_sb, i64 o_sh, i64 o_sn, int nq, int nk, int group, float scale_log2, int q_groups, int k_groups,
         int nk_pad) {
    extern __shared__ __align__(128) unsigned char smem[];
    const int tid = threadIdx.x;
    const int lane = tid & 31;
    const int warp = tid >> 5;
    const int g = lane >> 2, t = lane & 3;
    const int m_block = CAUSAL ? (int)gridDim.x - 1 - (int)blockIdx.x : (int)blockIdx.x;
    const int head = blockIdx.y;
    const int batch = blockIdx.z;
    const int kv_head = head / group;
    const int hkv = gridDim.y / group;
    const int row0 = m_block * BLOCK_M;
    const int warp_row = warp * 16;
    const int n_end = CAUSAL ? min(nk, row0 + BLOCK_M + nk - nq) : nk;
    const int n_blocks = n_end > 0 ? (n_end + BLOCK_N - 1) / BLOCK_N : 0;
    const int first_masked_key = CAUSAL ? min(nk, row0 + nk - nq + 1) : nk;

    const unsigned char* q_ptr = q8 + ((i64)batch * gridDim.y + head) * nq * HEAD_DIM;
    const unsigned char* k_ptr = k8 + ((i64)batch * hkv + kv_head) * nk * HEAD_DIM;
    const unsigned char* v_ptr = v8t + ((i64)batch * hkv + kv_head) * HEAD_DIM * nk_pad;
    const u32 sQ = sage_smem_addr(smem);
    const u32 sK = sQ + Q_TILE_BYTES;
    const u32 sV = sK + 2 * K_TILE_BYTES;

    // Commit groups, in order: Q, K[0], V[0]; then per block K[j+1], V[j+1] (empty past the end).
    sage_load_tile8<BLOCK_M, HEAD_DIM, THREADS>(sQ, q_ptr, HEAD_DIM, row0, nq, tid);
    sage_cp_async_commit();
    if (n_blocks > 0) sage_load_tile8<BLOCK_N, HEAD_DIM, THREADS>(sK, k_ptr, HEAD_DIM, 0, nk, tid);
    sage_cp_async_commit();
    if (n_blocks > 0) sage_load_cols8<HEAD_DIM, BLOCK_N, THREADS>(sV, v_ptr, nk_pad, 0, nk_pad, tid);
    sage_cp_async_commit();

    float qsl[2];
    sage2_q_scales(qsl, q_scale + ((i64)batch * gridDim.y + head) * q_groups, row0 + warp_row + g, nq, scale_log2);
    const float* ks_ptr = k_scale + ((i64)batch * hkv + kv_head) * k_groups + t;
    float acc_o[1][O_TILES][4];
    float m_run[1][2] = {{SAGE_NEG_INF, SAGE_NEG_INF}};
    #pragma unroll
    for (int dt = 0; dt < O_TILES; ++dt) {
        acc_o[0][dt][0] = acc_o[0][dt][1] = acc_o[0][dt][2] = acc_o[0][dt][3] = 0.f;
    }
    u32 q_frag[QK_STEPS][4];

    for (int j = 0; j < n_blocks; ++j) {
        const u32 stage_k = (u32)(j & 1) * K_TILE_BYTES;
        const u32 stage_v = (u32)(j & 1) * V_TILE_BYTES;
        sage_cp_async_wait<1>();  // K[j] (and Q) landed; V[j] may still be in flight
        __syncthreads();
        if (j == 0) {
            #pragma unroll
            for (int kk = 0; kk < QK_STEPS; ++kk) {
                const int r = warp_row + (lane & 7) + ((lane >> 3) & 1) * 8;
                sage_ldmatrix_x4(q_frag[kk], sQ + sage_swz<HEAD_DIM>(r, kk * 2 + (lane >> 4)));
            }
        }
        if (j + 1 < n_blocks) {
            sage_load_tile8<BLOCK_N, HEAD_DIM, THREADS>(sK + ((j + 1) & 1) * K_TILE_BYTES, k_ptr, HEAD_DIM,
                                                        (j + 1) * BLOCK_N, nk, tid);
        }
        sage_cp_async_commit();

        int acc_i[1][N_TILES][4];
        #pragma unroll
        for (int nt = 0; nt < N_TILES; ++nt) acc_i[0][nt][0] = acc_i[0][nt][1] = acc_i[0][nt][2] = acc_i[0][nt][3] = 0;
        #pragma unroll
        for (int kk = 0; kk < QK_STEPS; ++kk) {
            #pragma unroll
            for (int np = 0; np < N_TILES / 2; ++np) {
                // Keys np*16..+15: registers 0,1 are B of key tile 2np, 2,3 of tile 2np+1.
                u32 b[4];
                const int r = np * 16 + (lane & 7) + (lane >> 4) * 8;
                sage_ldmatrix_x4(b, sK + stage_k + sage_swz<HEAD_DIM>(r, kk * 2 + ((lane >> 3) & 1)));
                sage_mma_s8(acc_i[0][2 * np], q_frag[kk], b[0], b[1]);
                sage_mma_s8(acc_i[0][2 * np + 1], q_frag[kk], b[2], b[3]);
            }
        }
        float acc_s[1][N_TILES][4];
        float c[2][K_SCALE_BLOCKS];
        float alpha[1][2];
        sage2_scores(acc_s, c, acc_i, qsl, ks_ptr, j, nk);
        if ((j + 1) * BLOCK_N > first_masked_key) {
            sage_apply_mask<1, N_TILES>(acc_s, row0 + warp_row, j * BLOCK_N, nq, nk, lane);
        }
        sage2_softmax_step(acc_s, c, m_run, alpha);

        sage_cp_async_wait<1>();  // V[j] landed; K[j+1] may still be in flight
        __syncthreads();
        if (j + 1 < n_blocks) {
            sage_load_cols8<HEAD_DIM, BLOCK_N, THREADS>(sV + ((j + 1) & 1) * V_TILE_BYTES, v_ptr, nk_pad,
                                                        (j + 1) * BLOCK_N, nk_pad, tid);
        }
        sage_cp_async_commit();

        float acc_pv[O_TILES][4];
        #pragma unroll
        for (int dt = 0; dt < O_TILES; ++dt) acc_pv[dt][0] = acc_pv[dt][1] = acc_pv[dt][2] = acc_pv[dt][3] = 0.f;
        u32 p[PV_STEPS][4];
        sage2_pack_p(p, acc_s);
        #pragma unroll
        for (int kk = 0; kk < PV_STEPS; ++kk) {
            #pragma unroll
            for (int dp = 0; dp < D_TILES / 2; ++dp) {
                // V^T rows (channels) dp*16..+15: registers 0,1 are B of head-dim tile 2dp, 2,3 of 2dp+1.
                u32 b[4];
                const int r = dp * 16 + (lane & 7) + (lane >> 4) * 8;
                sage_ldmatrix_x4(b, sV + stage_v + sage_swz<BLOCK_N>(r, kk * 2 + ((lane >> 3) & 1)));
                sage_mma_e4m3(acc_pv[2 * dp], p[kk], b[0], b[1]);
                sage_mma_e4m3(acc_pv[2 * dp + 1], p[kk], b[2], b[3]);
            }
            // V's ones columns (constant B registers): the row sums of P~ in the last tile.
            sage_mma_e4m3(acc_pv[D_TILES], p[kk], SAGE_E4M3_ONES, SAGE_E4M3_ONES);
        }
        sage2_fold(acc_o, alpha, acc_pv);
    }
    sage_cp_async_wait<0>();
    __syncthreads();

    sage2_epilogue(acc_o, m_run, o, lse, q_shift, v_scale, o_sb, o_sh, o_sn, nq, scale_log2,
                   (int)gridDim.y, group, head, kv_head, batch, row0, warp_row, lane);
}
