package dev.sagejit.kernel;

import dev.sagejit.api.DType;
import dev.sagejit.spec.Arch;
import dev.sagejit.spec.MmaKind;
import dev.sagejit.spec.SageBwdLayout;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * SageBwd's attention kernels (mma.sync m16n8k32 INT8 and m16n8k16 16-bit): one module with the
 * training forward ({@link #forwardEntry()}) and the backward ({@link #backwardEntry()}) for one
 * element type, head dim and mask. The 16-bit backward module ({@link FlashBwdPlan}) supplies D =
 * rowsum(dO * O) and dQ's conversion.
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

    public SageBwdPlan {
        if (!arch.has(MmaKind.MMA_SYNC_F16) || !arch.has(MmaKind.MMA_SYNC_INT8)) {
            throw new IllegalArgumentException(arch.name() + " has no INT8/16-bit mma.sync; SageBwd needs sm_80+");
        }
        Sage2QuantPlan.requireInputs("SageBwd", type, headDim);
    }

    public String key() {
        return "sagebwd_" + type.name().toLowerCase(Locale.ROOT) + "_d" + headDim + (causal ? "_causal" : "") + "_"
                + arch.id();
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

    public int forwardThreads() {
        return FWD_BLOCK_M / 16 * 32;
    }

    /** Bytes of a [BLOCK][headDim] INT8 tile (or its transpose). */
    public int int8TileBytes() {
        return SageBwdLayout.BLOCK * headDim;
    }

    /** Dynamic shared memory of the forward: the Q tile and two stages of K and V^T. */
    public int forwardSharedBytes() {
        return FWD_BLOCK_M * headDim + 4 * int8TileBytes();
    }

    /** Keys per backward block: {@link #WIDE_BWD_KEYS} where its shared memory fits the arch, else one tile. */
    public int backwardKeys() {
        return backwardSharedBytes(WIDE_BWD_KEYS) <= arch.maxSmemPerBlock() ? WIDE_BWD_KEYS : SageBwdLayout.BLOCK;
    }

    /** Threads of a backward block: 16 keys per warp. */
    public int backwardThreads() {
        return backwardKeys() / 16 * 32;
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
        return m;
    }
}
