package dev.sagejit.kernel;

import dev.sagejit.api.DType;
import dev.sagejit.spec.Arch;
import dev.sagejit.spec.MmaKind;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * The 16-bit attention backward (FlashAttention-2's algorithm with mma.sync m16n8k16, the
 * same-precision baseline of SageBwd): one module of three kernels (D and the dQ accumulator, the
 * main pass over key blocks, dQ's conversion) for one element type, head dim and mask.
 *
 * @param arch     sm_80 or newer (mma.sync BF16/FP16)
 * @param type     BF16 or FP16 (Q, K, V, O, dO and the gradients)
 * @param headDim  64 or 128
 * @param causal   bottom-right aligned causal mask
 */
public record FlashBwdPlan(Arch arch, DType type, int headDim, boolean causal) {
    public static final String TEMPLATE = "attn/bwd/flash_bwd_mma.ftl";
    /** Query rows per step and keys per block: 4 warps of 16 keys. */
    public static final int BLOCK = 64;
    public static final int THREADS = 128;
    /** The tiles as benchmark results name them: BLOCK query rows, BLOCK keys, THREADS / 32 warps. */
    public static final String CONFIG = "bwd-m" + BLOCK + "n" + BLOCK + "w" + THREADS / 32;
    /** Query rows of D per block of the prep kernel (one warp each). */
    public static final int PREP_ROWS = THREADS / 32;
    /** Accumulator elements the dQ conversion kernel turns into dQ per thread (two 16-byte loads). */
    public static final int DQ_ELEMS = 8;

    public FlashBwdPlan {
        if (!arch.has(MmaKind.MMA_SYNC_F16)) {
            throw new IllegalArgumentException(arch.name() + " has no 16-bit mma.sync; the backward needs sm_80+");
        }
        Sage2QuantPlan.requireInputs("the 16-bit backward", type, headDim);
    }

    public String key() {
        return "bwd_" + type.name().toLowerCase(Locale.ROOT) + "_d" + headDim + (causal ? "_causal" : "") + "_"
                + arch.id();
    }

    /** The main kernel; {@code entry() + "_prep"} and {@code entry() + "_dq"} are the other two. */
    public String entry() {
        return "sagejit_" + key();
    }

    public String prepEntry() {
        return entry() + "_prep";
    }

    public String dqEntry() {
        return entry() + "_dq";
    }

    /** Bytes of one [64][headDim] 16-bit tile. */
    public int tileBytes() {
        return BLOCK * headDim * type.bytes();
    }

    /** Bytes of one row of dS^T in shared memory: BLOCK query columns of the element type. */
    public int dsRowBytes() {
        return BLOCK * type.bytes();
    }

    /** Dynamic shared memory of the main kernel: K, V, Q and dO tiles, dS^T, and LSE and D of a step. */
    public int sharedBytes() {
        return 4 * tileBytes() + BLOCK * dsRowBytes() + 2 * BLOCK * Float.BYTES;
    }

    public Map<String, Object> templateModel() {
        var m = new LinkedHashMap<String, Object>();
        m.put("specKey", key());
        m.put("entry", entry());
        m.put("elemPtx", type.ptxName());
        m.put("blockM", BLOCK);
        m.put("blockN", BLOCK);
        m.put("threads", THREADS);
        m.put("dqElems", DQ_ELEMS);
        m.put("headDim", headDim);
        m.putAll(FwdKernelPlan.tileModel(headDim, type.bytes()));
        m.put("tileBytes", tileBytes());
        m.put("dsRowBytes", dsRowBytes());
        m.put("causal", causal);
        return m;
    }
}
