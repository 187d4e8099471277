package dev.sagejit.kernel;

import dev.sagejit.api.DType;
import dev.sagejit.spec.Arch;
import dev.sagejit.spec.MmaKind;
import dev.sagejit.spec.SageBwdLayout;
import dev.sagejit.spec.TileTable;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * SageBwd's attention kernels: one module with the training forward ({@link #forwardEntry()}) and the
 * backward ({@link #backwardEntry()}) for one element type, head dim and mask, both on warpgroup MMAs
 * where the arch has them ({@link #wgmmaForward()}, {@link #wgmmaBackward()}), else on mma.sync. The
 * 16-bit backward module ({@link FlashBwdPlan}) supplies D = rowsum(dO * O) and dQ's conversion.
 *
 * @param arch     sm_80 or newer (INT8 and 16-bit mma.sync)
 * @param type     BF16 or FP16 (Q, K, V, O, dO and the gradients)
 * @param headDim  64 or 128
 * @param causal   bottom-right aligned causal mask
 */
public record SageBwdPlan(Arch arch, DType type, int headDim, boolean causal) {
    public static final String TEMPLATE = "attn/train/sagebwd.ftl";
    /** Query rows per forward block: 16 per warp. */
    public static final int FWD_BLOCK_M = 128;
    /**
     * Keys per backward block where shared memory allows (sm_90a: yes; sm_120a at head dim 128: no):
     * two P / dS tiles, so each query tile's loads, barriers and dQ atomics serve twice the keys
     * (1.29x at B4 H32 N4096 D128 on the H200, {@code 2026-11-30-h200-sagebwd-keys128.jsonl}).
     */
    public static final int WIDE_BWD_KEYS = 2 * SageBwdLayout.BLOCK;

    /** Head-dim columns of dK and dV per wgmma of the backward (n64: 32 INT32 registers per product). */
    static final int WGMMA_DV_COLS = 64;
    /**
     * dV / dK products the backward issues ahead of the one it dequantizes: with 1 the next product runs while
     * this one's INT32 sums are folded into FP32 (8.10 against 8.18 ms at B4 H32 N4096 D128 on the H200,
     * {@code 2026-12-01-h200-sagebwd-s17-tma-ab.jsonl}; n32 products with 1 ahead took 8.13 ms).
     */
    static final int WGMMA_T_AHEAD = 1;
    /**
     * Folds of INT32 sums into an FP32 accumulator (forward key blocks, backward steps) between two
     * settlements of its magic-number bias (sagebwd_frag.ftl's sagebwd_magic): the bias grows by one factor
     * per fold, so settling every few folds keeps it from eating the accumulator's mantissa.
     */
    static final int WGMMA_SETTLE_FOLDS = 8;
    /** K8 / V^T ring stages of the wgmma forward (wgmma_pipeline.ftl): the producer runs up to 4 blocks ahead. */
    static final int WGMMA_FWD_STAGES = 4;
    /** Consumer warpgroups of the wgmma forward: 64 query rows (one Q scale block) each. */
    static final int WGMMA_FWD_CONSUMERS = FWD_BLOCK_M / 64;
    /** Q slots of the persistent wgmma forward: the next tile's Q loads while this one is computed. */
    static final int WGMMA_FWD_Q_SLOTS = 2;
    /** Query-tile stages of the wgmma backward: the next tile loads while this one is computed. */
    static final int WGMMA_BWD_STAGES = 2;

    /**
     * FP32 dQ tiles of the wgmma backward, by step parity: a step stores its dQ partial into one while the TMA
     * reduce-adds the previous step's into the accumulator.
     */
    static final int WGMMA_DQ_BUFFERS = 2;
    /**
     * Floats of one step's row slot in the wgmma backward: LSE2 and D of its BLOCK queries, then the step's Q
     * scale and dO scale, loaded by cp.async a step ahead like the rows.
     */
    static final int WGMMA_ROW_SLOT_FLOATS = 2 * SageBwdLayout.BLOCK + 2;
    /** Threads of one warpgroup. */
    static final int WARPGROUP_THREADS = 128;

    public SageBwdPlan {
        if (!arch.has(MmaKind.MMA_SYNC_F16) || !arch.has(MmaKind.MMA_SYNC_INT8)) {
            throw new IllegalArgumentException(arch.name() + " has no INT8/16-bit mma.sync; SageBwd needs sm_80+");
        }
        Sage2QuantPlan.requireInputs("SageBwd", type, headDim);
    }

    public String key() {
        return "sagebwd_" + type.name().toLowerCase(Locale.ROOT) + "_d" + headDim + (causal ? "_causal" : "")
                + (wgmmaBackward() ? "_wg" : "") + "_" + arch.id();
    }

    /**
     * Whether the backward runs on warpgroup MMAs (sm_90a): one consumer warpgroup per key tile, dK and
     * dV in wgmma accumulators, the query tiles double-buffered.
     */
    public boolean wgmmaBackward() {
        return arch.has(MmaKind.WGMMA);
    }

    /**
     * Whether the forward runs on warpgroup MMAs (sm_90a): the int8-fp8 kernel's persistent TMA pipeline
     * (a producer warpgroup, {@link #WGMMA_FWD_STAGES} K / V^T stages) and two consumer warpgroups of 64
     * query rows, S = Q8 K8^T of the next key block issued with this block's P~ V.
     */
    public boolean wgmmaForward() {
        return arch.has(MmaKind.WGMMA);
    }

    private String entry() {
        return "sagejit_" + key();
    }

    public String forwardEntry() {
        return entry() + "_fwd";
    }

    public String backwardEntry() {
        return entry() + "_bwd";
    }

    /** Threads of a forward block: 16 rows per warp, plus the producer warpgroup on wgmma. */
    public int forwardThreads() {
        return FWD_BLOCK_M / 16 * 32 + (wgmmaForward() ? WARPGROUP_THREADS : 0);
    }

    /**
     * Launch grid (x, y, z) of the forward: on wgmma persistent, one block per SM (or per tile) walking
     * the (query block, head, batch) tiles; on mma.sync one block per tile.
     */
    public int[] forwardGrid(int batch, int heads, int nq, int smCount) {
        int mBlocks = (nq + FWD_BLOCK_M - 1) / FWD_BLOCK_M;
        if (wgmmaForward()) {
            long tiles = (long) mBlocks * heads * batch;
            return new int[] {(int) Math.max(1, Math.min(tiles, smCount)), 1, 1};
        }
        return new int[] {mBlocks, heads, batch};
    }

    /** Elements of a 16-bit panel row of the wgmma backward's V and dO tiles: one 128-byte swizzle span. */
    int panelElements() {
        return FwdKernelPlan.SWIZZLE_ROW_BYTES / type.bytes();
    }

    /** Bytes of a [BLOCK][headDim] INT8 tile (or its transpose). */
    public int int8TileBytes() {
        return SageBwdLayout.BLOCK * headDim;
    }

    /**
     * Dynamic shared memory of the forward: the Q tile and two stages of K and V^T on mma.sync; on wgmma
     * two Q slots, {@link #WGMMA_FWD_STAGES} stages of K and V^T and the mbarriers, from a swizzle
     * repeat.
     */
    public int forwardSharedBytes() {
        if (wgmmaForward()) {
            return TileTable.SWIZZLE_ALIGN + WGMMA_FWD_Q_SLOTS * FWD_BLOCK_M * headDim
                    + WGMMA_FWD_STAGES * 2 * int8TileBytes() + TileTable.BARRIER_BYTES;
        }
        return FWD_BLOCK_M * headDim + 4 * int8TileBytes();
    }

    /**
     * Keys per backward block: {@link #WIDE_BWD_KEYS} where its shared memory fits the arch (always for
     * the wgmma backward: one key tile per warpgroup), else one tile.
     */
    public int backwardKeys() {
        return wgmmaBackward() || backwardSharedBytes(WIDE_BWD_KEYS) <= arch.maxSmemPerBlock() ? WIDE_BWD_KEYS
                : SageBwdLayout.BLOCK;
    }

    /** Threads of a backward block: a warpgroup per key tile (wgmma), else 16 keys per warp. */
    public int backwardThreads() {
        return wgmmaBackward() ? backwardKeys() / SageBwdLayout.BLOCK * WARPGROUP_THREADS : backwardKeys() / 16 * 32;
    }

    /** Dynamic shared memory of the backward at {@link #backwardKeys()}. */
    public int backwardSharedBytes() {
        return backwardSharedBytes(backwardKeys());
    }

    /**
     * Dynamic shared memory of a backward block of {@code keys} keys: K and K^T of its keys, Q, Q^T and
     * dO^T of a query tile in INT8, dS8 [query][key], V and dO in 16 bits, LSE and D of a step and the
     * warps' maxima.
     */
    private int backwardSharedBytes(int keys) {
        int b = SageBwdLayout.BLOCK;
        int rowBytes = headDim * type.bytes();
        if (wgmmaBackward()) {
            // K8, K8^T and V of the keys, two dS8 slots, the query-tile stages (Q8, Q8^T, dO8^T, dO) and their
            // TMA barriers, the FP32 dQ tiles, their LSE and D, the warps' maxima and two slots of the tiles' dS
            // maxima; the tiles start on a swizzle repeat.
            int warps = keys / b * WARPGROUP_THREADS / 32;
            return 2 * keys * headDim + keys * rowBytes + 2 * b * keys
                    + WGMMA_BWD_STAGES * (3 * int8TileBytes() + b * rowBytes + TileTable.MBARRIER_BYTES)
                    + WGMMA_DQ_BUFFERS * b * headDim * Float.BYTES
                    + (WGMMA_BWD_STAGES * WGMMA_ROW_SLOT_FLOATS + 2 * warps + 2 * keys / b) * Float.BYTES
                    + TileTable.SWIZZLE_ALIGN;
        }
        return 2 * keys * headDim + 3 * int8TileBytes() + b * keys + keys * rowBytes + b * rowBytes
                + (2 * b + 2 * keys / 16) * Float.BYTES;
    }

    /** The kernels' tiles as benchmark results name them: forward rows and keys, backward keys. */
    public String config() {
        return "sagebwd-m" + FWD_BLOCK_M + "n" + SageBwdLayout.BLOCK + "b" + backwardKeys();
    }

    /** The 16-bit backward module whose D and dQ kernels run around this backward. */
    public FlashBwdPlan flashPlan() {
        return new FlashBwdPlan(arch, type, headDim, causal);
    }

    /** What the SageBwd templates read of the layout (spec/SageBwdLayout.java). */
    static Map<String, Object> layoutModel() {
        var m = new LinkedHashMap<String, Object>();
        m.put("block", SageBwdLayout.BLOCK);
        m.put("int8Max", SageBwdLayout.INT8_MAX);
        m.put("permPeriod", SageBwdLayout.PERM_PERIOD);
        m.put("permColumns", java.util.Arrays.stream(SageBwdLayout.Order.COLUMNS.perm()).boxed().toList());
        m.put("permRows", java.util.Arrays.stream(SageBwdLayout.Order.ROWS.perm()).boxed().toList());
        return m;
    }

    public Map<String, Object> templateModel() {
        var m = new LinkedHashMap<String, Object>();
        m.put("specKey", key());
        m.put("entry", entry());
        m.put("elemPtx", type.ptxName());
        m.put("headDim", headDim);
        m.put("fwdBlockM", FWD_BLOCK_M);
        m.put("threads", backwardThreads());
        m.putAll(FwdKernelPlan.tileModel(headDim, type.bytes()));
        m.put("bwdKeys", backwardKeys());
        m.put("elemBytes", type.bytes());
        m.put("causal", causal);
        m.putAll(layoutModel());
        m.put("wgmmaForward", wgmmaForward());
        m.put("wgmmaBackward", wgmmaBackward());
        if (wgmmaForward() || wgmmaBackward()) {
            m.putAll(wgmmaModel());
        }
        return m;
    }

    /** The wgmma kernels' numbers and their five instruction shapes (common/wgmma.ftl). */
    private Map<String, Object> wgmmaModel() {
        String elem = type.ptxName();
        int dqCols = headDim / (backwardKeys() / SageBwdLayout.BLOCK); // each warpgroup's share of dQ's columns
        var s = WgmmaShape.int8("sagebwd_wgmma_s",
                "S = Q8 K8^T (forward) and S^T = K8 Q8^T (backward): A and B K-major from shared memory",
                SageBwdLayout.BLOCK, false);
        var pv = WgmmaShape.int8("sagebwd_wgmma_pv", "O += P8 V8 (forward): A from registers, B (V8^T in"
                + " PERM_COLUMNS key order) K-major from shared memory", headDim, true);
        var dp = WgmmaShape.sixteenBit("sagebwd_wgmma_dp", "dP^T = V dO^T in 16 bits: A and B K-major from shared"
                + " memory", SageBwdLayout.BLOCK, elem, false, false);
        var t = WgmmaShape.int8("sagebwd_wgmma_t",
                "dV += P8^T dO8 and dK += dS8^T Q8: A from registers, B (dO8^T, Q8^T) K-major from shared memory",
                WGMMA_DV_COLS, true);
        var dq = WgmmaShape.int8("sagebwd_wgmma_dq", "dQ += dS8 K8: A (dS8) and B (K8^T) K-major from shared memory",
                dqCols, false);
        var m = new LinkedHashMap<String, Object>();
        m.put("wgmmaShapes", java.util.List.of(s.model(), pv.model(), dp.model(), t.model(), dq.model()));
        m.put("sWgmma", s.name());
        m.put("pvWgmma", pv.name());
        // wgmma_pipeline.ftl and wgmma_schedule.ftl, for the forward
        m.put("fwdThreads", forwardThreads());
        m.put("stages", WGMMA_FWD_STAGES);
        m.put("consumerWarpgroups", WGMMA_FWD_CONSUMERS);
        m.put("qSlots", WGMMA_FWD_Q_SLOTS);
        m.put("qTileBytes", FWD_BLOCK_M * headDim);
        m.put("kvTileBytes", int8TileBytes());
        m.put("vTileBytes", int8TileBytes());
        m.put("vStageBytes", int8TileBytes());
        m.put("qkRowBytes", headDim);
        m.put("qkColBlocks", 1);
        m.put("qkColBlockElems", headDim);
        m.put("vTransposed", true);
        m.put("onesRows", false);
        m.put("mbarSuspendNs", TileTable.MBAR_SUSPEND_NS);
        m.put("pingpong", FwdKernelPlan.pingpong(WGMMA_FWD_CONSUMERS, causal));
        m.put("producerRegisters", TileTable.WGMMA_PRODUCER_REGS);
        m.put("consumerRegisters", TileTable.consumerRegisters(arch, WGMMA_FWD_CONSUMERS, 1));
        m.put("dpWgmma", dp.name());
        m.put("tWgmma", t.name());
        m.put("dqWgmma", dq.name());
        m.put("dqCols", dqCols);
        m.put("dvCols", WGMMA_DV_COLS);
        m.put("tAhead", WGMMA_T_AHEAD);
        m.put("settleFolds", WGMMA_SETTLE_FOLDS);
        m.put("panelRowBytes", FwdKernelPlan.SWIZZLE_ROW_BYTES);
        m.put("bwdStages", WGMMA_BWD_STAGES);
        m.put("dqBuffers", WGMMA_DQ_BUFFERS);
        m.put("rowSlotFloats", WGMMA_ROW_SLOT_FLOATS);
        m.put("mbarrierBytes", TileTable.MBARRIER_BYTES);
        m.put("swizzleAlign", TileTable.SWIZZLE_ALIGN);
        return m;
    }
}
