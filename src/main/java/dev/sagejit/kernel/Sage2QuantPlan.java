package dev.sagejit.kernel;

import dev.sagejit.api.DType;
import dev.sagejit.spec.Arch;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The quantizer module of the int8-fp8 mode for one input type and head dim: four kernels that turn
 * BF16/FP16 Q, K, V into the operands docs/int8-fp8-quantization.md describes.
 *
 * @param arch      target architecture
 * @param inputType BF16 or FP16
 * @param headDim   64 or 128
 */
public record Sage2QuantPlan(Arch arch, DType inputType, int headDim) {
    public static final String TEMPLATE = "quant/sage2_quant.ftl";
    /** Tokens per thread block of every quantizer (a multiple of the 64-token K scale block). */
    public static final int TOKENS = 64;
    /** Threads per quantizer block: a multiple of both head dims' 16-byte chunks per row. */
    public static final int THREADS = 128;
    /** 64-token tiles one kv_stats block sums over (fewer blocks, fewer global atomics). */
    public static final int STATS_TILES = 8;
    /** Token block of one K scale group set (4 per-thread groups per 64 tokens). */
    public static final int K_SCALE_TOKENS = 64;
    /** Query rows of one Q scale slice (8 groups per 16 rows). */
    public static final int Q_SCALE_ROWS = 16;
    /** V^T rows are padded to a multiple of this many tokens (the permutation's period). */
    public static final int V_PAD = 16;

    public static final String KV_STATS = "sage2_kv_stats";
    public static final String QUANT_Q = "sage2_quant_q";
    public static final String QUANT_K = "sage2_quant_k";
    public static final String QUANT_V = "sage2_quant_v";

    public Sage2QuantPlan {
        if (inputType != DType.BF16 && inputType != DType.FP16) {
            throw new IllegalArgumentException("the int8-fp8 quantizers read BF16 or FP16, not " + inputType);
        }
        if (headDim != 64 && headDim != 128) {
            throw new IllegalArgumentException("head dim " + headDim + " is not supported; use 64 or 128");
        }
    }

    public String key() {
        return "quant_int8fp8_" + inputType.name().toLowerCase(java.util.Locale.ROOT) + "_d" + headDim + "_" + arch.id();
    }

    /** Blocks of the kv_stats kernel along the tokens. */
    public static int statsBlocks(int nk) {
        return (nk + STATS_TILES * TOKENS - 1) / (STATS_TILES * TOKENS);
    }

    /** Q scale entries per (batch, head): 8 per started 16-row slice. */
    public static int qGroups(int nq) {
        return (nq + Q_SCALE_ROWS - 1) / Q_SCALE_ROWS * 8;
    }

    /** K scale entries per (batch, kv head): 4 per started 64-token block. */
    public static int kGroups(int nk) {
        return (nk + K_SCALE_TOKENS - 1) / K_SCALE_TOKENS * 4;
    }

    /** Row pitch of V^T in bytes: tokens padded to {@link #V_PAD}. */
    public static int nkPad(int nk) {
        return (nk + V_PAD - 1) / V_PAD * V_PAD;
    }

    public Map<String, Object> templateModel() {
        var m = new LinkedHashMap<String, Object>();
        m.put("specKey", key());
        m.put("elemPtx", inputType == DType.BF16 ? "bf16" : "f16");
        m.put("headDim", headDim);
        m.put("threads", THREADS);
        m.put("tokens", TOKENS);
        m.put("statsTiles", STATS_TILES);
        return m;
    }
}
