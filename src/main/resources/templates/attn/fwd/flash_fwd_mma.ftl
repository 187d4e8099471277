<#include "../../common/header.ftl">
<#-- FlashAttention-2 forward with mma.sync (BF16/FP16 in, FP32 accumulate). One block computes
     BLOCK_M query rows of one (batch, head); K/V blocks of BLOCK_N keys stream through a
     double-buffered cp.async pipeline: K[j+1] loads during S = QK^T of block j, V[j+1] during PV. -->
<#include "../../common/types.ftl">
<#include "../../common/ptx.ftl">
<#include "../../common/mma_f16.ftl">
<#include "../../common/smem_tile.ftl">
<#include "../../common/online_softmax.ftl">
<#include "../../common/mask.ftl">
<#include "warp_gemm_mma.ftl">
<#include "epilogue_fwd.ftl">

constexpr int BLOCK_M = ${blockM};
constexpr int BLOCK_N = ${blockN};
constexpr int WARP_ROWS = ${warpRows};
constexpr int M_TILES = ${warpRowTiles};
constexpr int N_TILES = ${keyTiles};
constexpr int D_TILES = ${headDimTiles};
constexpr int K_STEPS = ${headDimSteps};
constexpr bool Q_IN_REGS = ${qInRegisters?c};
constexpr bool CAUSAL = ${causal?c};
constexpr bool WRITE_LSE = ${lse?c};
constexpr u32 Q_TILE_BYTES = ${qTileBytes};
constexpr u32 KV_TILE_BYTES = ${kvTileBytes};

extern "C" __global__ void __launch_bounds__(${threads}, ${minBlocksPerSm})
${entry}(const u16* __restrict__ q, const u16* __restrict__ k, const u16* __restrict__ v,
         u16* __restrict__ o, float* __restrict__ lse,
         i64 q_sb, i64 q_sh, i64 q_sn, i64 k_sb, i64 k_sh, i64 k_sn,
         i64 v_sb, i64 v_sh, i64 v_sn, i64 o_sb, i64 o_sh, i64 o_sn,
         int nq, int nk, int group, float scale_log2) {
    extern __shared__ __align__(128) unsigned char smem[];
    const int tid = threadIdx.x;
    const int lane = tid & 31;
    const int warp = tid >> 5;
    // Causal blocks near the end of the sequence do the most work: schedule them first.
    const int m_block = CAUSAL ? (int)gridDim.x - 1 - (int)blockIdx.x : (int)blockIdx.x;
    const int head = blockIdx.y;
    const int batch = blockIdx.z;
    const int kv_head = head / group;
    const int row0 = m_block * BLOCK_M;
    const int warp_row = warp * WARP_ROWS;

    const u16* q_ptr = q + batch * q_sb + head * q_sh;
    const u16* k_ptr = k + batch * k_sb + kv_head * k_sh;
    const u16* v_ptr = v + batch * v_sb + kv_head * v_sh;
    u16* o_ptr = o + batch * o_sb + head * o_sh;
    float* lse_ptr = lse + ((i64)batch * gridDim.y + head) * nq + row0;

    // Keys this block can see: all of them, or (causal) up to its last row's diagonal.
    const int n_end = CAUSAL ? min(nk, row0 + BLOCK_M + nk - nq) : nk;
    const int n_blocks = n_end > 0 ? (n_end + BLOCK_N - 1) / BLOCK_N : 0;
    // First key block that needs masking: the sequence tail or the causal diagonal.
    const int first_masked_key = CAUSAL ? min(nk, row0 + nk - nq + 1) : nk;

    const u32 sQ = sage_smem_addr(smem);
    const u32 sK = sQ + Q_TILE_BYTES;
    const u32 sV = sK + 2 * KV_TILE_BYTES;

    // Commit groups, in order: Q, K[0], V[0]; then per block K[j+1], V[j+1] (empty past the end).
    sage_load_tile<BLOCK_M>(sQ, q_ptr, q_sn, row0, nq, tid);
    sage_cp_async_commit();
    if (n_blocks > 0) sage_load_tile<BLOCK_N>(sK, k_ptr, k_sn, 0, nk, tid);
    sage_cp_async_commit();
    if (n_blocks > 0) sage_load_tile<BLOCK_N>(sV, v_ptr, v_sn, 0, nk, tid);
    sage_cp_async_commit();

    float acc_o[M_TILES][D_TILES][4];
    float m_run[M_TILES][2];
    float l_run[M_TILES][2];
    #pragma unroll
    for (int mt = 0; mt < M_TILES; ++mt) {
        #pragma unroll
        for (int dt = 0; dt < D_TILES; ++dt) {
            acc_o[mt][dt][0] = acc_o[mt][dt][1] = acc_o[mt][dt][2] = acc_o[mt][dt][3] = 0.f;
        }
        m_run[mt][0] = m_run[mt][1] = SAGE_NEG_INF;
        l_run[mt][0] = l_run[mt][1] = 0.f;
    }
    u32 q_frag[M_TILES][K_STEPS][4];

    for (int j = 0; j < n_blocks; ++j) {
        const u32 stage = (u32)(j & 1) * KV_TILE_BYTES;
        const u32 next = (u32)((j + 1) & 1) * KV_TILE_BYTES;
        sage_cp_async_wait<1>();  // K[j] (and Q) landed; V[j] may still be in flight
        __syncthreads();
        if (Q_IN_REGS && j == 0) {
            #pragma unroll
            for (int mt = 0; mt < M_TILES; ++mt) {
                #pragma unroll
                for (int kk = 0; kk < K_STEPS; ++kk) {
                    sage_load_q_frag(q_frag[mt][kk], sQ, warp_row + mt * 16, kk, lane);
                }
            }
        }
        if (j + 1 < n_blocks) sage_load_tile<BLOCK_N>(sK + next, k_ptr, k_sn, (j + 1) * BLOCK_N, nk, tid);
        sage_cp_async_commit();

        float acc_s[M_TILES][N_TILES][4];
        sage_gemm_qk<M_TILES, N_TILES, K_STEPS, Q_IN_REGS>(acc_s, q_frag, sQ, warp_row, sK + stage, lane);
        if ((j + 1) * BLOCK_N > first_masked_key) {
            sage_apply_mask<M_TILES, N_TILES>(acc_s, row0 + warp_row, j * BLOCK_N, nq, nk, lane);
        }
        sage_online_softmax<M_TILES, N_TILES, D_TILES>(acc_s, acc_o, m_run, l_run, scale_log2, 0.f);

        sage_cp_async_wait<1>();  // V[j] landed; K[j+1] may still be in flight
        __syncthreads();
        if (j + 1 < n_blocks) sage_load_tile<BLOCK_N>(sV + next, v_ptr, v_sn, (j + 1) * BLOCK_N, nk, tid);
        sage_cp_async_commit();

        sage_gemm_pv<M_TILES, N_TILES, D_TILES>(acc_o, acc_s, sV + stage, lane);
    }
    sage_cp_async_wait<0>();
    __syncthreads();
    sage_store_o<M_TILES, D_TILES>(acc_o, m_run, l_run, smem, o_ptr, o_sn, lse_ptr, row0, warp_row, nq, lane,
                                   WRITE_LSE);
}
