<#include "../../common/header.ftl">
<#-- FlashAttention-2 forward on Hopper (sm_90a) with wgmma and TMA (wgmma_pipeline.ftl: a producer
     warpgroup streams K/V through a ring of shared-memory slots). Each consumer warpgroup owns 64
     query rows: S = Q K^T with both operands in shared memory, online softmax in registers, then
     O += P V with P from registers and V read transposed (MN-major) from its row-major tile. -->
<#include "../../common/types.ftl">
<#include "../../common/ptx.ftl">
<#include "../../common/tma.ftl">
<#include "../../common/wgmma.ftl">
<#include "../../common/smem_tile.ftl">
<#include "../../common/online_softmax.ftl">
<#include "../../common/mask.ftl">
<#include "epilogue_fwd.ftl">

constexpr int BLOCK_M = ${blockM};
constexpr int BLOCK_N = ${blockN};
constexpr int HEAD_DIM = ${headDim};
<#include "wgmma_pipeline.ftl">
constexpr int N_TILES = ${keyTiles};
constexpr int D_TILES = ${headDimTiles};
constexpr int QK_STEPS = ${qkSteps};
constexpr int PV_STEPS = ${pvSteps};
constexpr int STEPS_PER_ROW = ${stepsPerRow};
constexpr u32 STEP_BYTES = ${stepBytes};
constexpr u32 QK_GROUP_BYTES = 8 * QK_ROW_BYTES;
constexpr bool CAUSAL = ${causal?c};
constexpr bool WRITE_LSE = ${lse?c};

extern "C" __global__ void __launch_bounds__(${threads}, 1)
${entry}(const __grid_constant__ SageTensorMap tm_q, const __grid_constant__ SageTensorMap tm_k,
         const __grid_constant__ SageTensorMap tm_v, u16* __restrict__ o, float* __restrict__ lse,
         i64 o_sb, i64 o_sh, i64 o_sn, int nq, int nk, int group, float scale_log2) {
    extern __shared__ __align__(128) unsigned char smem_raw[];
    const u32 base = sage_aligned_smem_base(smem_raw);
    unsigned char* smem = smem_raw + (base - sage_smem_addr(smem_raw));
    const SagePipeline pl = sage_pipeline_init(base);

    const int tid = threadIdx.x;
    const int warpgroup = tid / 128;
    const int warp = (tid / 32) & 3;
    const int lane = tid & 31;
    // Causal blocks near the end of the sequence do the most work: schedule them first.
    const int m_block = CAUSAL ? (int)gridDim.x - 1 - (int)blockIdx.x : (int)blockIdx.x;
    const int head = blockIdx.y;
    const int batch = blockIdx.z;
    const int row0 = m_block * BLOCK_M;
    // Keys this block can see: all of them, or (causal) up to its last row's diagonal.
    const int n_end = CAUSAL ? min(nk, row0 + BLOCK_M + nk - nq) : nk;
    const int n_blocks = n_end > 0 ? (n_end + BLOCK_N - 1) / BLOCK_N : 0;

    if (warpgroup == 0) {
<#if setMaxRegisters>
        asm volatile("setmaxnreg.dec.sync.aligned.u32 ${producerRegisters};\n");
</#if>
        if (tid == 0) {
            int it = 0;
            sage_prefetch_maps(&tm_q, &tm_k, &tm_v);
            sage_produce_tile(pl, &tm_q, &tm_k, &tm_v, 0, 0, row0, head, head / group, batch, n_blocks, it);
        }
        return;
    }
<#if setMaxRegisters>
    asm volatile("setmaxnreg.inc.sync.aligned.u32 ${consumerRegisters};\n");
</#if>
    const int consumer = warpgroup - 1;
    const int warp_row = consumer * 64 + warp * 16;  // first of this warp's 16 query rows in the block
    // This warpgroup's 64 Q rows start 64 swizzled rows into each Q column block.
    const u32 sQ_rows = pl.q_slot(0) + consumer * 64 * QK_ROW_BYTES;
    const int first_masked_key = CAUSAL ? min(nk, row0 + nk - nq + 1) : nk;

    float acc_o[1][D_TILES][4];
    float m_run[1][2] = {{SAGE_NEG_INF, SAGE_NEG_INF}};
    float l_run[1][2] = {{0.f, 0.f}};
    #pragma unroll
    for (int dt = 0; dt < D_TILES; ++dt) {
        acc_o[0][dt][0] = acc_o[0][dt][1] = acc_o[0][dt][2] = acc_o[0][dt][3] = 0.f;
    }
    sage_mbar_wait(pl.full_q(0), 0);

    for (int j = 0; j < n_blocks; ++j) {
        const int s = j % STAGES;
        const u32 parity = (j / STAGES) & 1;

        float acc_s[1][N_TILES][4];
        sage_mbar_wait(pl.full_k(s), parity);
        sage_wgmma_fence();
        #pragma unroll
        for (int kk = 0; kk < QK_STEPS; ++kk) {
            const u32 col = (kk / STEPS_PER_ROW) * QK_ROW_BYTES;
            const u32 step = (kk % STEPS_PER_ROW) * STEP_BYTES;
            const u64 da = sage_wgmma_desc<QK_ROW_BYTES>(sQ_rows + col * BLOCK_M + step, 16, QK_GROUP_BYTES);
            const u64 db = sage_wgmma_desc<QK_ROW_BYTES>(pl.k_stage(s) + col * BLOCK_N + step, 16, QK_GROUP_BYTES);
            ${qkWgmma}(acc_s[0], da, db, kk > 0);
        }
        sage_wgmma_commit();
        sage_wgmma_wait<0>();
        sage_wgmma_touch(acc_s[0]);
        if (lane == 0) sage_mbar_arrive(pl.empty_k(s));

        if ((j + 1) * BLOCK_N > first_masked_key) {
            sage_apply_mask<1, N_TILES>(acc_s, row0 + warp_row, j * BLOCK_N, nq, nk, lane);
        }
        sage_online_softmax<1, N_TILES, D_TILES>(acc_s, acc_o, m_run, l_run, scale_log2, 0.f);
        // P as the A operand, 16 keys per step: the S accumulator's (g, 2t) pairs are A's layout.
        u32 p[PV_STEPS][4];
        #pragma unroll
        for (int kk = 0; kk < PV_STEPS; ++kk) {
            p[kk][0] = sage_pack2(acc_s[0][2 * kk][0], acc_s[0][2 * kk][1]);
            p[kk][1] = sage_pack2(acc_s[0][2 * kk][2], acc_s[0][2 * kk][3]);
            p[kk][2] = sage_pack2(acc_s[0][2 * kk + 1][0], acc_s[0][2 * kk + 1][1]);
            p[kk][3] = sage_pack2(acc_s[0][2 * kk + 1][2], acc_s[0][2 * kk + 1][3]);
        }

        sage_mbar_wait(pl.full_v(s), parity);
        sage_wgmma_touch(acc_o[0]);
        sage_wgmma_fence();
        #pragma unroll
        for (int kk = 0; kk < PV_STEPS; ++kk) {
            // V is [keys][head dim] (MN-major for this product): 16 keys = 16 swizzled rows per step;
            // the next column block of head-dim columns sits BLOCK_N rows further.
            const u64 db = sage_wgmma_desc<QK_ROW_BYTES>(pl.v_stage(s) + kk * 16 * QK_ROW_BYTES,
                                                         BLOCK_N * QK_ROW_BYTES, QK_GROUP_BYTES);
            ${pvWgmma}(acc_o[0], p[kk], db, 1);
        }
        sage_wgmma_commit();
        sage_wgmma_wait<0>();
        sage_wgmma_touch(acc_o[0]);
        if (lane == 0) sage_mbar_arrive(pl.empty_v(s));
    }

    sage_consumers_sync();
    u16* o_ptr = o + batch * o_sb + head * o_sh;
    float* lse_ptr = lse + ((i64)batch * gridDim.y + head) * nq + row0;
    sage_store_o<1, D_TILES>(acc_o, m_run, l_run, smem, o_ptr, o_sn, lse_ptr, row0, warp_row, nq, lane, WRITE_LSE);
}
