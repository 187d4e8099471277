<#include "../../common/header.ftl">
<#-- FlashAttention-2 forward on Hopper (sm_90a) with wgmma and TMA. Warpgroup 0 is the producer:
     one thread loads Q once and streams K/V blocks of BLOCK_N keys through a ring of STAGES shared
     memory slots (full/empty mbarriers per slot). Each consumer warpgroup owns 64 query rows:
     S = Q K^T with both operands in shared memory, online softmax in registers, then O += P V with
     P from registers. Tiles sit in 128-byte swizzled column blocks, the layout TMA writes and
     wgmma reads. -->
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
constexpr int STAGES = ${stages};
constexpr int CONSUMERS = ${consumerWarpgroups};
constexpr int N_TILES = ${keyTiles};
constexpr int D_TILES = ${headDimTiles};
constexpr int QK_STEPS = ${qkSteps};
constexpr int PV_STEPS = ${pvSteps};
constexpr int COL_BLOCK_ELEMS = ${colBlockElems};
constexpr int STEPS_PER_COL_BLOCK = ${stepsPerColBlock};
constexpr u32 STEP_BYTES = ${stepBytes};
constexpr u32 SWIZZLE_ROW = 128;
constexpr u32 SWIZZLE_GROUP = 8 * SWIZZLE_ROW;
constexpr u32 Q_TILE_BYTES = ${qTileBytes};
constexpr u32 KV_TILE_BYTES = ${kvTileBytes};
constexpr bool CAUSAL = ${causal?c};
constexpr bool WRITE_LSE = ${lse?c};

extern "C" __global__ void __launch_bounds__(${threads}, 1)
${entry}(const __grid_constant__ SageTensorMap tm_q, const __grid_constant__ SageTensorMap tm_k,
         const __grid_constant__ SageTensorMap tm_v, u16* __restrict__ o, float* __restrict__ lse,
         i64 o_sb, i64 o_sh, i64 o_sn, int nq, int nk, int group, float scale_log2) {
    extern __shared__ __align__(128) unsigned char smem_raw[];
    // Tiles start on the swizzle pattern's 1024-byte repeat (the plan reserves the slack).
    const u32 raw = sage_smem_addr(smem_raw);
    const u32 base = (raw + ${swizzleAlign - 1}) & ~${swizzleAlign - 1}u;
    unsigned char* smem = smem_raw + (base - raw);
    const u32 sQ = base;
    const u32 sK = sQ + Q_TILE_BYTES;
    const u32 sV = sK + STAGES * KV_TILE_BYTES;
    const u32 bars = sV + STAGES * KV_TILE_BYTES;
    const u32 bar_q = bars;
    // full_k[s], full_v[s], empty_k[s], empty_v[s] follow bar_q, 8 bytes each.
    #define FULL_K(s) (bars + 8 * (1 + (s)))
    #define FULL_V(s) (bars + 8 * (1 + STAGES + (s)))
    #define EMPTY_K(s) (bars + 8 * (1 + 2 * STAGES + (s)))
    #define EMPTY_V(s) (bars + 8 * (1 + 3 * STAGES + (s)))

    const int tid = threadIdx.x;
    const int warpgroup = tid / 128;
    const int warp = (tid / 32) & 3;
    const int lane = tid & 31;
    // Causal blocks near the end of the sequence do the most work: schedule them first.
    const int m_block = CAUSAL ? (int)gridDim.x - 1 - (int)blockIdx.x : (int)blockIdx.x;
    const int head = blockIdx.y;
    const int batch = blockIdx.z;
    const int kv_head = head / group;
    const int row0 = m_block * BLOCK_M;
    // Keys this block can see: all of them, or (causal) up to its last row's diagonal.
    const int n_end = CAUSAL ? min(nk, row0 + BLOCK_M + nk - nq) : nk;
    const int n_blocks = n_end > 0 ? (n_end + BLOCK_N - 1) / BLOCK_N : 0;

    if (tid == 0) {
        sage_mbar_init(bar_q, 1);
        for (int s = 0; s < STAGES; ++s) {
            sage_mbar_init(FULL_K(s), 1);
            sage_mbar_init(FULL_V(s), 1);
            sage_mbar_init(EMPTY_K(s), 4 * CONSUMERS);
            sage_mbar_init(EMPTY_V(s), 4 * CONSUMERS);
        }
        sage_mbar_init_fence();
    }
    __syncthreads();

    if (warpgroup == 0) {
<#if setMaxRegisters>
        asm volatile("setmaxnreg.dec.sync.aligned.u32 ${producerRegisters};\n");
</#if>
        if (tid == 0) {
            sage_tma_prefetch(&tm_q);
            sage_tma_prefetch(&tm_k);
            sage_tma_prefetch(&tm_v);
            sage_mbar_expect_tx(bar_q, Q_TILE_BYTES);
            #pragma unroll
            for (int cb = 0; cb < HEAD_DIM / COL_BLOCK_ELEMS; ++cb) {
                sage_tma_load_4d(sQ + cb * BLOCK_M * SWIZZLE_ROW, &tm_q, cb * COL_BLOCK_ELEMS, row0, head, batch, bar_q);
            }
            for (int j = 0; j < n_blocks; ++j) {
                const int s = j % STAGES;
                const u32 reuse_parity = ((j / STAGES) - 1) & 1;
                if (j >= STAGES) sage_mbar_wait(EMPTY_K(s), reuse_parity);
                sage_mbar_expect_tx(FULL_K(s), KV_TILE_BYTES);
                #pragma unroll
                for (int cb = 0; cb < HEAD_DIM / COL_BLOCK_ELEMS; ++cb) {
                    sage_tma_load_4d(sK + s * KV_TILE_BYTES + cb * BLOCK_N * SWIZZLE_ROW, &tm_k, cb * COL_BLOCK_ELEMS,
                                     j * BLOCK_N, kv_head, batch, FULL_K(s));
                }
                if (j >= STAGES) sage_mbar_wait(EMPTY_V(s), reuse_parity);
                sage_mbar_expect_tx(FULL_V(s), KV_TILE_BYTES);
                #pragma unroll
                for (int cb = 0; cb < HEAD_DIM / COL_BLOCK_ELEMS; ++cb) {
                    sage_tma_load_4d(sV + s * KV_TILE_BYTES + cb * BLOCK_N * SWIZZLE_ROW, &tm_v, cb * COL_BLOCK_ELEMS,
                                     j * BLOCK_N, kv_head, batch, FULL_V(s));
                }
            }
        }
        return;
    }

<#if setMaxRegisters>
    asm volatile("setmaxnreg.inc.sync.aligned.u32 ${consumerRegisters};\n");
</#if>
    const int consumer = warpgroup - 1;
    const int warp_row = consumer * 64 + warp * 16;  // first of this warp's 16 query rows in the block
    // This warpgroup's 64 Q rows start 64 swizzled rows into each Q column block.
    const u32 sQ_rows = sQ + consumer * 64 * SWIZZLE_ROW;
    const int first_masked_key = CAUSAL ? min(nk, row0 + nk - nq + 1) : nk;

    float acc_o[1][D_TILES][4];
    float m_run[1][2] = {{SAGE_NEG_INF, SAGE_NEG_INF}};
    float l_run[1][2] = {{0.f, 0.f}};
    #pragma unroll
    for (int dt = 0; dt < D_TILES; ++dt) {
        acc_o[0][dt][0] = acc_o[0][dt][1] = acc_o[0][dt][2] = acc_o[0][dt][3] = 0.f;
    }
    sage_mbar_wait(bar_q, 0);

    for (int j = 0; j < n_blocks; ++j) {
        const int s = j % STAGES;
        const u32 parity = (j / STAGES) & 1;
        const u32 sK_s = sK + s * KV_TILE_BYTES;
        const u32 sV_s = sV + s * KV_TILE_BYTES;

        float acc_s[1][N_TILES][4];
        sage_mbar_wait(FULL_K(s), parity);
        sage_wgmma_fence();
        #pragma unroll
        for (int kk = 0; kk < QK_STEPS; ++kk) {
            const u32 col = (kk / STEPS_PER_COL_BLOCK) * SWIZZLE_ROW;
            const u32 step = (kk % STEPS_PER_COL_BLOCK) * STEP_BYTES;
            const u64 da = sage_wgmma_desc(sQ_rows + col * BLOCK_M + step, 16, SWIZZLE_GROUP);
            const u64 db = sage_wgmma_desc(sK_s + col * BLOCK_N + step, 16, SWIZZLE_GROUP);
            ${qkWgmma}(acc_s[0], da, db, kk > 0);
        }
        sage_wgmma_commit();
        sage_wgmma_wait<0>();
        sage_wgmma_touch(acc_s[0]);
        if (lane == 0) sage_mbar_arrive(EMPTY_K(s));

        if ((j + 1) * BLOCK_N > first_masked_key) {
            sage_apply_mask<1, N_TILES>(acc_s, row0 + warp_row, j * BLOCK_N, nq, nk, lane);
        }
        sage_online_softmax<1, N_TILES, D_TILES>(acc_s, acc_o, m_run, l_run, scale_log2);
        // P as the A operand, 16 keys per step: the S accumulator's (g, 2t) pairs are A's layout.
        u32 p[PV_STEPS][4];
        #pragma unroll
        for (int kk = 0; kk < PV_STEPS; ++kk) {
            p[kk][0] = sage_pack2(acc_s[0][2 * kk][0], acc_s[0][2 * kk][1]);
            p[kk][1] = sage_pack2(acc_s[0][2 * kk][2], acc_s[0][2 * kk][3]);
            p[kk][2] = sage_pack2(acc_s[0][2 * kk + 1][0], acc_s[0][2 * kk + 1][1]);
            p[kk][3] = sage_pack2(acc_s[0][2 * kk + 1][2], acc_s[0][2 * kk + 1][3]);
        }

        sage_mbar_wait(FULL_V(s), parity);
        sage_wgmma_touch(acc_o[0]);
        sage_wgmma_fence();
        #pragma unroll
        for (int kk = 0; kk < PV_STEPS; ++kk) {
            // V is [keys][head dim] (MN-major for this product): 16 keys = 16 swizzled rows per step;
            // the next 64 head-dim columns sit one column block (BLOCK_N rows) further.
            const u64 db = sage_wgmma_desc(sV_s + kk * 16 * SWIZZLE_ROW, BLOCK_N * SWIZZLE_ROW, SWIZZLE_GROUP);
            ${pvWgmma}(acc_o[0], p[kk], db, 1);
        }
        sage_wgmma_commit();
        sage_wgmma_wait<0>();
        sage_wgmma_touch(acc_o[0]);
        if (lane == 0) sage_mbar_arrive(EMPTY_V(s));
    }

    // Every consumer is done with Q before its tile becomes the output staging area.
    asm volatile("bar.sync 1, %0;\n" :: "n"(CONSUMERS * 128) : "memory");
    u16* o_ptr = o + batch * o_sb + head * o_sh;
    float* lse_ptr = lse + ((i64)batch * gridDim.y + head) * nq + row0;
    sage_store_o<1, D_TILES>(acc_o, m_run, l_run, smem, o_ptr, o_sn, lse_ptr, row0, warp_row, nq, lane, WRITE_LSE);
}
