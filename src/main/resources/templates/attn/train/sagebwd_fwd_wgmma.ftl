<#-- SageBwd training forward on Hopper (sm_90a) with wgmma: the numerics of sagebwd_fwd.ftl (the same
     block scales and P~ per row per key block; FP32 steps reordered, as the emulation allows) on the
     int8-fp8 kernel's machinery: wgmma_pipeline.ftl's TMA producer warpgroup and K/V ring, two consumer
     warpgroups of 64 query rows (one Q scale block each) in wgmma_schedule.ftl's persistent tiles and
     pingpong turns. Per key block j a consumer issues S(j+1) = Q8 K8^T (IGMMA, A and B K-major in shared
     memory) together with P~(j) V, rescales O while they run, runs block j+1's softmax and packs its
     codes while P~(j) V runs, then adds block j's sums into O: O = O alpha + f sum.
     P~ V is INT8 too (IGMMA, A from registers): P~'s codes rint(127 e) are packed straight from S's
     accumulator layout (a thread's columns {2t, 2t+1, 8+2t, 9+2t} of each 16 form one register), so V^T
     is the quantizer's PERM_COLUMNS copy; a block's INT32 sums (below 2^20) become floats exactly by the
     magic-number conversion in the fold.
     The scores stay INT32 sums as magic floats (x = dot + MAGIC, exact): the block max is taken over
     them and each P~ costs one integer add, one FMA and one exp2, as in the int8-fp8 kernels. -->

constexpr int BLOCK_M = FWD_BLOCK_M;            // query rows per tile: 64 per consumer warpgroup
constexpr int BLOCK_N = BLOCK;                  // keys per block: one K / V scale block, one P~ scale per row
<#include "../fwd/wgmma_pipeline.ftl">
<#include "../fwd/wgmma_schedule.ftl">
constexpr u32 V_ROW = BLOCK_N;                     // bytes of a V^T row of one key block (INT8 codes)
constexpr int PV_STEPS = BLOCK_N / 32;            // INT8 k32 steps over a block's keys
static_assert(BLOCK_M == 64 * CONSUMERS && CONSUMERS == 2 && BLOCK_N == 64 && V_ROW == BLOCK_N && V_TRANSPOSED
              && QK_COL_BLOCKS == 1 && V_TILE_BYTES == HEAD_DIM * V_ROW,
              "two consumer warpgroups of 64 rows, 64-key blocks, V^T rows of one 64-byte swizzle row");

// S = Q8 K8^T of one block into `acc` (issued and committed, not waited).
__device__ __forceinline__ void sagebwd_issue_s(int (&acc)[1][N_TILES][4], const SageDesc& dq, const SageDesc& dk,
                                                u32 k_stage_bytes) {
    sage_wgmma_fence();
    #pragma unroll
    for (int kk = 0; kk < QK_STEPS; ++kk) ${sWgmma}(acc[0], dq.at(kk * 32), dk.at(k_stage_bytes + kk * 32), kk > 0);
    sage_wgmma_commit();
}

// P~ V of one block into a fresh `acc` (issued and committed, not waited): INT8 codes, INT32 sums.
__device__ __forceinline__ void sagebwd_issue_pv(int (&acc)[1][D_TILES][4], const u32 (&p)[PV_STEPS][4],
                                                 const SageDesc& dv, u32 v_stage_bytes) {
    sage_wgmma_fence();
    #pragma unroll
    for (int kk = 0; kk < PV_STEPS; ++kk) ${pvWgmma}(acc[0], p[kk], dv.at(v_stage_bytes + kk * 32), kk > 0);
    sage_wgmma_commit();
}

extern "C" __global__ void __launch_bounds__(${fwdThreads}, 1)
${entry}_fwd(const __grid_constant__ SageTensorMap tm_q, const __grid_constant__ SageTensorMap tm_k,
             const __grid_constant__ SageTensorMap tm_v, const float* __restrict__ q_scale,
             const float* __restrict__ k_scale, const float* __restrict__ v_scale,
             const float* __restrict__ q_shift, u16* __restrict__ o, float* __restrict__ lse,
             float* __restrict__ lse2, i64 o_sb, i64 o_sh, i64 o_sn, int nq, int nk, int group,
             float scale_log2, int heads, int batches) {
    extern __shared__ __align__(128) unsigned char smem_raw[];
    const u32 base = sage_aligned_smem_base(smem_raw);
    const SagePipeline pl = sage_pipeline_init(base);
    const int tid = threadIdx.x;
    const int warpgroup = tid / 128;
    const int lane = tid & 31;
    const int m_blocks = (nq + BLOCK_M - 1) / BLOCK_M;
    const int tiles = m_blocks * heads * batches;
    if (warpgroup == 0) {
        asm volatile("setmaxnreg.dec.sync.aligned.u32 ${producerRegisters};\n");
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
    asm volatile("setmaxnreg.inc.sync.aligned.u32 ${consumerRegisters};\n");
    const int consumer = warpgroup - 1;
    if (consumer == 1) sage_turn_pass(consumer);
    const int warp_row = consumer * 64 + ((tid / 32) & 3) * 16;
    const int q_blocks = (nq + BLOCK - 1) / BLOCK, k_blocks = (nk + BLOCK - 1) / BLOCK;
    // Descriptors of stage 0 of the K and V rings and of this consumer's rows of Q slot 0.
    const SageDesc dk0 = sage_wgmma_desc_words<QK_ROW_BYTES>(pl.k_stage(0), 16, 8 * QK_ROW_BYTES);
    const SageDesc dv0 = sage_wgmma_desc_words<V_ROW>(pl.v_stage(0), 16, 8 * V_ROW);
    const SageDesc dq0 = sage_wgmma_desc_words<QK_ROW_BYTES>(pl.q_slot(0) + consumer * 64 * QK_ROW_BYTES, 16,
                                                             8 * QK_ROW_BYTES);
    SageRing ring{0u, 0u};  // the next block's K/V stage, across this block's tiles (the producer's order)

    for (int tile = blockIdx.x, n = 0; tile < tiles; tile += gridDim.x, ++n) {
        const SageTile tl = sage_tile(tile, m_blocks, heads, batches, nq, nk);
        const int head = tl.head, batch = tl.batch, kv_head = head / group;
        const i64 bh = (i64)batch * heads + head;
        const i64 bkv = (i64)batch * (heads / group) + kv_head;
        const int row0 = tl.m_block * BLOCK_M, n_blocks = tl.n_blocks;
        const int my_row = row0 + warp_row;
        const int slot = n % Q_SLOTS;
        const SageDesc dq = SageDesc{dq0.lo + (u32)slot * (Q_TILE_BYTES >> 4), dq0.hi};
        const int first_masked_key = CAUSAL ? min(nk, row0 + nk - nq + 1) : nk;
        // A consumer's 64 rows are one Q scale block.
        const float qsl = my_row < nq ? q_scale[bh * q_blocks + my_row / BLOCK] * scale_log2 : 0.f;
        const float* ks_ptr = k_scale + bkv * k_blocks;
        const float* vs_ptr = v_scale + bkv * k_blocks;
        // acc_o holds O + MAGIC * o_bias per row: each fold adds a block's INT32 sums as magic floats
        // (sum + MAGIC, exact) times f, so the conversion's subtraction of MAGIC is owed once per row in
        // o_bias (the sum of the folds' f since the last settlement). The rescale settles it (one FMA per
        // element instead of the multiply), and runs at least every SETTLE_FOLDS blocks for that; the
        // store settles the rest (an unsettled bias of many blocks would cost O low mantissa bits).
        float acc_o[1][D_TILES][4];
        float o_bias[2] = {0.f, 0.f};
        float m_run[2] = {SAGE_NEG_INF, SAGE_NEG_INF};
        float l_run[2] = {0.f, 0.f};
        #pragma unroll
        for (int dt = 0; dt < D_TILES; ++dt) acc_o[0][dt][0] = acc_o[0][dt][1] = acc_o[0][dt][2] = acc_o[0][dt][3] = 0.f;

        // Block j's softmax from its S sums: P~'s INT8 codes into `p`, O's factor and P~ V's scale per row;
        // `scales` holds the block's K scale and V scale / 127 (read a block ahead).
        struct Tile { float v[1][N_TILES][4]; };
        auto softmax = [&](float (&alpha)[2], float (&f)[2], const int (&acc)[1][N_TILES][4], float2 scales, int j) {
            Tile t;
            float (&x)[1][N_TILES][4] = t.v;
            #pragma unroll
            for (int nt = 0; nt < N_TILES; ++nt) {
                #pragma unroll
                for (int e = 0; e < 4; ++e) x[0][nt][e] = __int_as_float(acc[0][nt][e] + SAGE_ROUND_MAGIC_BITS);
            }
            if ((j + 1) * BLOCK > first_masked_key) sage_apply_mask<1, N_TILES>(x, my_row, j * BLOCK, nq, nk, lane);
            const float c0 = qsl * scales.x;
            sagebwd_softmax_magic(x, c0 == 0.f ? SAGE_TINY : c0, m_run, l_run, alpha, f, scales.y);
            return t;
        };
        // O = O alpha + f sum, per row, in two steps: O *= alpha while the block's P~ V runs (only when one of
        // the warp's rows took a new maximum), then one FMA per element once its sums are in.
        auto rescale = [&](const float (&alpha)[2], bool settle_due) {
            if (__any_sync(0xffffffffu, alpha[0] != 1.f || alpha[1] != 1.f) || settle_due) {
                const float c[2] = {-SAGE_ROUND_MAGIC * o_bias[0] * alpha[0], -SAGE_ROUND_MAGIC * o_bias[1] * alpha[1]};
                #pragma unroll
                for (int dt = 0; dt < D_TILES; ++dt) {
                    #pragma unroll
                    for (int e = 0; e < 4; ++e) acc_o[0][dt][e] = fmaf(acc_o[0][dt][e], alpha[e >> 1], c[e >> 1]);
                }
                o_bias[0] = o_bias[1] = 0.f;
            }
        };
        auto fold = [&](const int (&acc)[1][D_TILES][4], const float (&f)[2]) {
            #pragma unroll
            for (int dt = 0; dt < D_TILES; ++dt) {
                #pragma unroll
                for (int e = 0; e < 4; ++e) acc_o[0][dt][e] = fmaf(sagebwd_magic(acc[0][dt][e]), f[e >> 1], acc_o[0][dt][e]);
            }
            o_bias[0] += f[0];
            o_bias[1] += f[1];
        };
        auto settle = [&]() {
            #pragma unroll
            for (int dt = 0; dt < D_TILES; ++dt) {
                #pragma unroll
                for (int e = 0; e < 4; ++e) acc_o[0][dt][e] = fmaf(-SAGE_ROUND_MAGIC, o_bias[e >> 1], acc_o[0][dt][e]);
            }
            o_bias[0] = o_bias[1] = 0.f;
        };
        auto block_scales = [&](int j) { return make_float2(ks_ptr[j], vs_ptr[j] * (1.f / INT8_MAX)); };
        sage_mbar_wait(pl.full_q(slot), (n / Q_SLOTS) & 1);

        if (n_blocks > 0) {
            u32 p[PV_STEPS][4];
            float alpha[2], f[2];  // of the block whose P~ V is issued next
            int acc_s[1][N_TILES][4];
            int acc_pv[1][D_TILES][4];
            float2 scales = block_scales(0);
            SageRing cur = ring;  // block j's stage (its V), then block j+1's (its K) in `next`
            sage_mbar_wait(pl.full_k(cur.stage), cur.phase);
            sage_turn_wait(consumer);
            sagebwd_issue_s(acc_s, dq, dk0, cur.stage * KV_TILE_BYTES);
            sage_turn_pass(consumer);
            sage_wgmma_wait<0>();
            sage_wgmma_touch(acc_s[0]);
            if (lane == 0) sage_mbar_arrive(pl.empty_k(cur.stage));
            sagebwd_pack<PV_STEPS>(p, softmax(alpha, f, acc_s, scales, 0).v, INT8_MAX);

            // Steady state without branches on the wgmma pipeline; the last block's P~ V is peeled off below.
            for (int j = 0; j + 1 < n_blocks; ++j) {
                scales = block_scales(j + 1);  // read now, used after S(j + 1)
                SageRing next = cur;
                next.advance();
                sage_mbar_wait(pl.full_k(next.stage), next.phase);
                sage_mbar_wait(pl.full_v(cur.stage), cur.phase);
                sage_turn_wait(consumer);
                sagebwd_issue_s(acc_s, dq, dk0, next.stage * KV_TILE_BYTES);
                sagebwd_issue_pv(acc_pv, p, dv0, cur.stage * V_STAGE_BYTES);
                sage_turn_pass(consumer);
                rescale(alpha, j % SETTLE_FOLDS == SETTLE_FOLDS - 1);
                sage_wgmma_wait<1>();  // S(j + 1) is done; P~(j) V may still run
                sage_wgmma_touch(acc_s[0]);
                if (lane == 0) sage_mbar_arrive(pl.empty_k(next.stage));
                float alpha_next[2], f_next[2];
                const Tile e = softmax(alpha_next, f_next, acc_s, scales, j + 1);
                sage_wgmma_wait<0>();
                sage_wgmma_touch(acc_pv[0]);
                sage_wgmma_touch(p);
                if (lane == 0) sage_mbar_arrive(pl.empty_v(cur.stage));
                fold(acc_pv, f);
                // P~ of block j + 1 goes into the A registers only now: block j's P~ V read them until here.
                sagebwd_pack<PV_STEPS>(p, e.v, INT8_MAX);
                alpha[0] = alpha_next[0]; alpha[1] = alpha_next[1];
                f[0] = f_next[0]; f[1] = f_next[1];
                cur = next;
            }
            // Every S of this tile is done: its Q slot may take the tile after next.
            if (lane == 0) sage_mbar_arrive(pl.empty_q(slot));
            sage_mbar_wait(pl.full_v(cur.stage), cur.phase);
            sage_turn_wait(consumer);
            sagebwd_issue_pv(acc_pv, p, dv0, cur.stage * V_STAGE_BYTES);
            sage_turn_pass(consumer);
            rescale(alpha, false);
            sage_wgmma_wait<0>();
            sage_wgmma_touch(acc_pv[0]);
            if (lane == 0) sage_mbar_arrive(pl.empty_v(cur.stage));
            fold(acc_pv, f);
            cur.advance();
            ring = cur;
        } else if (lane == 0) {
            sage_mbar_arrive(pl.empty_q(slot));
        }
        settle();
        sagebwd_fwd_epilogue(acc_o, m_run, l_run, o, lse, lse2, q_shift, o_sb, o_sh, o_sn, nq, scale_log2, bh, batch,
                             head, row0, warp_row, lane);
    }
}
