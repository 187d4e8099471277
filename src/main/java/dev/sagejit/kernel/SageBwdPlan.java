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
    /** Threads of a backward block: 16 keys per warp, {@link SageBwdLayout#BLOCK} keys in all. */
    public static final int BWD_THREADS = SageBwdLayout.BLOCK / 16 * 32;
    /** The kernels as benchmark results name them. */
    public static final String CONFIG = "sagebwd-m" + FWD_BLOCK_M + "n" + SageBwdLayout.BLOCK;

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

    /** Bytes of a [BLOCK][headDim] 16-bit tile. */
    public int tileBytes() {
        return SageBwdLayout.BLOCK * headDim * type.bytes();
    }

    /** Dynamic shared memory of the forward: the Q tile and two stages of K and V^T. */
    public int forwardSharedBytes() {
        return FWD_BLOCK_M * headDim + 4 * int8TileBytes();
    }

    /**
     * Dynamic shared memory of the backward: K, K^T, Q, Q^T and dO^T in INT8, dS, V and dO in 16
     * bits, LSE and D of a step and the warps' maxima.
     */
    public int backwardSharedBytes() {
        int b = SageBwdLayout.BLOCK;
        return 5 * int8TileBytes() + b * b + 2 * tileBytes() + (2 * b + 2 * BWD_THREADS / 32) * Float.BYTES;
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
        m.put("threads", BWD_THREADS);
        m.putAll(FwdKernelPlan.tileModel(headDim, type.bytes()));
        m.put("tileBytes", tileBytes());
        m.put("causal", causal);
        m.putAll(layoutModel());
        return m;
    }
}
