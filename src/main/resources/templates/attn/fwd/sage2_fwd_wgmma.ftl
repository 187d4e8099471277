<#include "../../common/header.ftl">
<#-- SageAttention2 forward on Hopper (sm_90a): INT8 Q K^T and FP8 P V with wgmma, operands
     quantized beforehand as docs/int8-fp8-quantization.md describes (K smoothed; per-thread INT8
     scales for Q and K; V as per-channel FP8 V^T with tokens permuted inside each 16). The TMA
     pipeline is the BF16 kernel's (wgmma_pipeline.ftl). Per key block: S = (Q8 K8^T) * qscale *
     kscale, online softmax with P~ = exp2(S*sl - m + log2 448) packed to FP8 in registers, and
     P~ V^T into a fresh FP32 accumulator that is added to O (two-level accumulation); ones rows
     after V^T in shared memory make the product's last n8 tile P~'s row sums (l). Consumers
     run one block ahead: block j+1's Q K^T and softmax overlap block j's P~ V; P~ is packed to
     FP8 once that P~ V is done (its A registers are busy until then). Blocks are persistent: one
     per SM walks a list of (query block, head, batch) tiles while the producer already loads the
     next tile's Q and K/V. With TileTable.speculativeSoftmax (d128, co-resident blocks) a steady block's
     softmax runs once block j's P~ V is done instead: P~ against the running base, with headroom, straight
     into the A registers (sage2_pack_spec), the exact step only when a row rose past the headroom. -->
<#include "../../common/types.ftl">
<#include "../../common/ptx.ftl">
<#include "../../common/fp8.ftl">
<#include "../../common/int8_fp8_layout.ftl">
<#include "../../common/tma.ftl">
<#include "../../common/wgmma.ftl">
<#include "../../common/smem_tile.ftl">
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
constexpr u32 STEP_BYTES = ${stepBytes};
constexpr u32 QK_GROUP_BYTES = 8 * QK_ROW_BYTES;
constexpr u32 V_ROW_BYTES = ${vRowBytes};
constexpr int K_SCALE_BLOCKS = BLOCK_N / K_SCALE_TOKENS;
constexpr bool CAUSAL = ${causal?c};
constexpr bool WRITE_LSE = ${lse?c};

<#include "sage2_block.ftl">
<#if timelineBlocks gt 0>

// Phase timeline (FwdKernelPlan.timelineBlocks, kernel/Timeline.java): lane 0 of each consumer
// warpgroup's first warp writes clock64 at the steps of the first TL_BLOCKS key blocks of its block's
// first tile, [CTA][consumer][key block][TL_STAMPS]; block 0's row also holds the SM id and %globaltimer.
constexpr int TL_BLOCKS = ${timelineBlocks};
constexpr int TL_STAMPS = ${timelineStamps};
constexpr int TL_MAX_CTAS = ${timelineMaxCtas};
__device__ unsigned long long sage_timeline[TL_MAX_CTAS * CONSUMERS * TL_BLOCKS * TL_STAMPS];
// clock64 and its volatile store in one statement, so the read stays with its store; ptxas may still
// move both toward the next memory operation (the stamp after the P~ V wait lands after the
// exponentials: read it as an upper bound).
__device__ __forceinline__ void sage_stamp(unsigned long long* at) {
    asm volatile("{\n .reg .u64 t;\n mov.u64 t, %%clock64;\n st.volatile.global.u64 [%0], t;\n}\n" :: "l"(at) : "memory");
}
#define SAGE_STAMP(step) do { if (tl_rec) sage_stamp(&sage_timeline[sage_tl_index(consumer, j, step)]); } while (0)
// Word `step` of key block j's row of this block's consumer warpgroup.
__device__ __forceinline__ int sage_tl_index(int consumer, int j, int step) {
    return ((blockIdx.x * CONSUMERS + consumer) * TL_BLOCKS + j) * TL_STAMPS + step;
}
<#else>
#define SAGE_STAMP(step) do { } while (0)
</#if>
<#include "epilogue_sage2.ftl">

// S = Q K^T of one block into `acc` (issued and committed, not waited): Q from its descriptor,
// K from the stage's (one add per step).
__device__ __forceinline__ void sage2_issue_qk(int (&acc)[1][N_TILES][4], const SageDesc& dq, const SageDesc& dk,
                                               u32 k_stage_bytes) {
    sage_wgmma_fence();
    #pragma unroll
    for (int kk = 0; kk < QK_STEPS; ++kk) {
        ${qkWgmma}(acc[0], dq.at(kk * STEP_BYTES), dk.at(k_stage_bytes + kk * STEP_BYTES), kk > 0);
    }
    sage_wgmma_commit();
}

// P~ V^T of one block into a fresh `acc` (issued and committed, not waited). V^T is
// [head dim][keys], K-major for this product: 32 keys = 32 bytes per step; its ones rows follow, so
// the last n8 tile of `acc` is P~'s row sums.
__device__ __forceinline__ void sage2_issue_pv(float (&acc)[1][O_TILES][4], const u32 (&p)[PV_STEPS][4],
                                               const SageDesc& dv, u32 v_stage_bytes) {
    sage_wgmma_fence();
    #pragma unroll
    for (int kk = 0; kk < PV_STEPS; ++kk) {
        ${pvWgmma}(acc[0], p[kk], dv.at(v_stage_bytes + kk * STEP_BYTES), kk > 0);
    }
    sage_wgmma_commit();
}


<#include "wgmma_schedule.ftl">

extern "C" __global__ void __launch_bounds__(${threads}, ${minBlocksPerSm})
${entry}(const __grid_constant__ SageTensorMap tm_q, const __grid_constant__ SageTensorMap tm_k,
         const __grid_constant__ SageTensorMap tm_v, u16* __restrict__ o, float* __restrict__ lse,
         const float* __restrict__ q_scale, const float* __restrict__ k_scale,
         const float* __restrict__ q_shift, const float* __restrict__ v_scale,
         i64 o_sb, i64 o_sh, i64 o_sn, int nq, int nk, int group, float scale_log2, int q_groups, int k_groups,
         int heads, int batches) {
    extern __shared__ __align__(128) unsigned char smem_raw[];
    const u32 base = sage_aligned_smem_base(smem_raw);
    const SagePipeline pl = sage_pipeline_init(base);

    const int tid = threadIdx.x;
    const int warpgroup = tid / 128;
    const int warp = (tid / 32) & 3;
    const int lane = tid & 31;
    const int m_blocks = (nq + BLOCK_M - 1) / BLOCK_M;
    const int tiles = m_blocks * heads * batches;
    if (warpgroup == 0) {
<#if setMaxRegisters>
        asm volatile("setmaxnreg.dec.sync.aligned.u32 ${producerRegisters};\n");
</#if>
        if (tid == 0) {
            sage_prefetch_maps(&tm_q, &tm_k, &tm_v);
            int it = 0;
            for (int t = blockIdx.x, n = 0; t < tiles; t += gridDim.x, ++n) {
                const SageTile tl = sage_tile(t, m_blocks, heads, batches, nq, nk);
                sage_produce_tile(pl, &tm_q, &tm_k, &tm_v, n % Q_SLOTS, n / Q_SLOTS, tl.m_block * BLOCK_M, tl.head,
                                  tl.head / group, tl.batch, tl.n_blocks, it);
            }
        }
        return;
    }
<#if setMaxRegisters>
    asm volatile("setmaxnreg.inc.sync.aligned.u32 ${consumerRegisters};\n");
</#if>
    const int consumer = CONSUMERS == 1 ? 0 : warpgroup - 1;  // a compile-time 0 keeps Q's descriptor uniform
    if (consumer == 1) sage_turn_pass(consumer);
    const int warp_row = consumer * 64 + warp * 16;
    const int g = lane >> 2, t4 = lane & 3;
    // Descriptors of stage 0 of the K and V rings and of Q slot 0; blocks add their byte offsets.
    const SageDesc dk0 = sage_wgmma_desc_words<QK_ROW_BYTES>(pl.k_stage(0), 16, QK_GROUP_BYTES);
    const SageDesc dv0 = sage_wgmma_desc_words<V_ROW_BYTES>(pl.v_stage(0), 16, 8 * V_ROW_BYTES);
    const SageDesc dq0 = sage_wgmma_desc_words<QK_ROW_BYTES>(pl.q_slot(0) + consumer * 64 * QK_ROW_BYTES, 16,
                                                             QK_GROUP_BYTES);
    SageRing ring{0u, 0u};  // the next block's K/V stage, across this block's tiles (the producer's order)
<#if timelineBlocks gt 0>
    const bool tl_lane = (tid & 127) == 0 && blockIdx.x < TL_MAX_CTAS;
    if (tl_lane) {
        u32 smid;
        u64 gns;
        asm volatile("mov.u32 %0, %%smid;\n" : "=r"(smid));
        asm volatile("mov.u64 %0, %%globaltimer;\n" : "=l"(gns));
        sage_timeline[sage_tl_index(consumer, 0, TL_STAMPS - 2)] = smid;
        sage_timeline[sage_tl_index(consumer, 0, TL_STAMPS - 1)] = gns;
    }
</#if>

    for (int tile = blockIdx.x, n = 0; tile < tiles; tile += gridDim.x, ++n) {
        const SageTile tl = sage_tile(tile, m_blocks, heads, batches, nq, nk);
        const int head = tl.head, batch = tl.batch, kv_head = head / group;
        const int row0 = tl.m_block * BLOCK_M;
        const int n_blocks = tl.n_blocks;
        const int slot = n % Q_SLOTS;
        const SageDesc dq = SageDesc{dq0.lo + (u32)slot * (Q_TILE_BYTES >> 4), dq0.hi};
        const int first_masked_key = CAUSAL ? min(nk, row0 + nk - nq + 1) : nk;
        float qsl[2];
        sage2_q_scales(qsl, q_scale + ((i64)batch * heads + head) * q_groups, row0 + warp_row + g, nq, scale_log2);
        const float* ks_ptr = k_scale + ((i64)batch * (heads / group) + kv_head) * k_groups + t4;

        float acc_o[1][O_TILES][4];
        float m_run[1][2] = {{SAGE_NEG_INF, SAGE_NEG_INF}};
        #pragma unroll
        for (int dt = 0; dt < O_TILES; ++dt) {
            acc_o[0][dt][0] = acc_o[0][dt][1] = acc_o[0][dt][2] = acc_o[0][dt][3] = 0.f;
        }
        sage_mbar_wait(pl.full_q(slot), (n / Q_SLOTS) & 1);

        if (n_blocks > 0) {
            // Software pipeline: while block j's P~ V runs on the tensor cores, block j+1's Q K^T has
            // been issued ahead and its softmax runs on the CUDA cores.
            int acc_i[1][N_TILES][4];
            float acc_s[1][N_TILES][4];
            float c[2][K_SCALE_BLOCKS];
            float acc_pv[1][O_TILES][4];
            float alpha[1][2];     // O's factor for the block whose softmax ran last
            float alpha_pv[1][2];  // O's factor for the block whose P~ V is in flight
            u32 p_cur[PV_STEPS][4];

            SageRing cur = ring;  // block j's stage (its V), then block j+1's (its K) in `next`
            sage_mbar_wait(pl.full_k(cur.stage), cur.phase);
            sage_turn_wait(consumer);
            sage2_issue_qk(acc_i, dq, dk0, cur.stage * KV_TILE_BYTES);
            sage_turn_pass(consumer);
            sage_wgmma_wait<0>();
            sage_wgmma_touch(acc_i[0]);
            if (lane == 0) sage_mbar_arrive(pl.empty_k(cur.stage));
            sage2_scores(acc_s, c, acc_i, qsl, ks_ptr, 0, nk);
            if (BLOCK_N > first_masked_key) sage_apply_mask<1, N_TILES>(acc_s, row0 + warp_row, 0, nq, nk, lane);
            sage2_softmax_step(acc_s, c, m_run, alpha);
            sage2_pack_p(p_cur, acc_s);

            // Steady state without branches on the pipeline (ptxas can then prove which wgmma group
            // each wait retires and keeps them asynchronous); the last block is peeled off below.
            for (int j = 0; j + 1 < n_blocks; ++j) {
<#if timelineBlocks gt 0>
                const bool tl_rec = tl_lane && n == 0 && j < TL_BLOCKS;
</#if>
                SAGE_STAMP(0);
                SageRing next = cur;
                next.advance();
                sage_mbar_wait(pl.full_k(next.stage), next.phase);
                sage_mbar_wait(pl.full_v(cur.stage), cur.phase);
                SAGE_STAMP(1);
                sage_turn_wait(consumer);
                sage2_issue_qk(acc_i, dq, dk0, next.stage * KV_TILE_BYTES);
                sage2_issue_pv(acc_pv, p_cur, dv0, cur.stage * V_STAGE_BYTES);
                sage_turn_pass(consumer);
                SAGE_STAMP(2);
                sage_wgmma_wait<1>();  // Q K^T of block j+1 is done; P~ V of block j may still run
                sage_wgmma_touch(acc_i[0]);
                SAGE_STAMP(3);
                if (lane == 0) sage_mbar_arrive(pl.empty_k(next.stage));
                sage2_scores(acc_s, c, acc_i, qsl, ks_ptr, j + 1, nk);
                if ((j + 2) * BLOCK_N > first_masked_key) {
                    sage_apply_mask<1, N_TILES>(acc_s, row0 + warp_row, (j + 1) * BLOCK_N, nq, nk, lane);
                }
                alpha_pv[0][0] = alpha[0][0];
                alpha_pv[0][1] = alpha[0][1];
<#if speculativeSoftmax>
                sage_wgmma_wait<0>();
                sage_wgmma_touch(acc_pv[0]);
                sage_wgmma_touch(p_cur);
                SAGE_STAMP(4);  // ptxas sinks this read toward the next memory operation: an upper bound
                if (lane == 0) sage_mbar_arrive(pl.empty_v(cur.stage));
                // P~ of block j+1 against the running base, straight into the A registers that block j's
                // P~ V has just released; only if a row rose past the headroom does the warp redo it.
                const bool over = sage2_pack_spec(p_cur, acc_s, c, m_run);
                sage2_fold(acc_o, alpha_pv, acc_pv[0]);
                if (__any_sync(0xffffffffu, over)) {
                    sage2_softmax_step(acc_s, c, m_run, alpha);
                    sage2_pack_p(p_cur, acc_s);
                } else {
                    alpha[0][0] = alpha[0][1] = 1.f;
                }
<#else>
                sage2_softmax_step(acc_s, c, m_run, alpha);
                sage_wgmma_wait<0>();
                sage_wgmma_touch(acc_pv[0]);
                sage_wgmma_touch(p_cur);
                SAGE_STAMP(4);  // ptxas sinks this read toward the next memory operation: an upper bound
                if (lane == 0) sage_mbar_arrive(pl.empty_v(cur.stage));
                sage2_fold(acc_o, alpha_pv, acc_pv[0]);
                // P~ of block j+1 goes into the A registers only now: while P~ V of block j ran they
                // were its operands (FlashAttention-3 orders it the same way).
                sage2_pack_p(p_cur, acc_s);
</#if>
                SAGE_STAMP(5);
                cur = next;
            }
            // Every Q K^T of this tile is done: its Q slot may take the tile after next.
            if (lane == 0) sage_mbar_arrive(pl.empty_q(slot));
            sage_mbar_wait(pl.full_v(cur.stage), cur.phase);
            sage_turn_wait(consumer);
            sage2_issue_pv(acc_pv, p_cur, dv0, cur.stage * V_STAGE_BYTES);
            sage_turn_pass(consumer);
            sage_wgmma_wait<0>();
            sage_wgmma_touch(acc_pv[0]);
            if (lane == 0) sage_mbar_arrive(pl.empty_v(cur.stage));
            sage2_fold(acc_o, alpha, acc_pv[0]);
            cur.advance();
            ring = cur;
        } else if (lane == 0) {
            sage_mbar_arrive(pl.empty_q(slot));
        }
        // Each warp writes its own 16 rows from registers: no block barrier, no shared memory.
        sage2_epilogue(acc_o, m_run, o, lse, q_shift, v_scale, o_sb, o_sh, o_sn, nq, scale_log2,
                       heads, group, head, kv_head, batch, row0, warp_row, lane);
    }
}
