package dev.sagejit.kernel;

import dev.sagejit.api.DType;
import dev.sagejit.spec.Arch;
import dev.sagejit.spec.Int8Fp8Layout;
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
    /** Tokens per thread block of every quantizer (a multiple of the K scale block). */
    public static final int TOKENS = 64;
    /** Threads per quantizer block: a multiple of both head dims' 16-byte chunks per row. */
    public static final int THREADS = 128;
    /**
     * 64-token tiles one kv_stats block sums over: fewer blocks means fewer global atomics, but 8
     * left B4 H32 N4096 with 1.3 waves of under-occupied blocks (ncu: half the DRAM bandwidth).
     */
    public static final int STATS_TILES = 2;
    public static final String KV_STATS = "sage2_kv_stats";
    public static final String QUANT_Q = "sage2_quant_q";
    public static final String QUANT_K = "sage2_quant_k";
    public static final String QUANT_V = "sage2_quant_v";
    /** kv_stats and quant_q without qshift in one interleaved grid (forward without LSE). */
    public static final String STATS_AND_Q = "sage2_stats_and_q";
    /** quant_k and quant_v in one interleaved grid. */
    public static final String QUANT_KV = "sage2_quant_kv";

    public Sage2QuantPlan {
        requireInputs("int8-fp8", inputType, headDim);
    }

    public String key() {
        return moduleKey("int8fp8", inputType, headDim, arch);
    }

    /** Checks what every quantizer module reads: BF16 or FP16 inputs of head dim 64 or 128. */
    static void requireInputs(String mode, DType inputType, int headDim) {
        if (inputType != DType.BF16 && inputType != DType.FP16) {
            throw new IllegalArgumentException("the " + mode + " quantizers read BF16 or FP16, not " + inputType);
        }
        if (headDim != 64 && headDim != 128) {
            throw new IllegalArgumentException("head dim " + headDim + " is not supported; use 64 or 128");
        }
    }

    /** What every quantizer module's template reads: its key, input element type, head dim, threads. */
    static Map<String, Object> moduleModel(String key, DType inputType, int headDim, int threads) {
        var m = new LinkedHashMap<String, Object>();
        m.put("specKey", key);
        m.put("elemPtx", inputType.ptxName());
        m.put("headDim", headDim);
        m.put("threads", threads);
        return m;
    }

    /** A quantizer module's cache key, e.g. quant_int8fp8_bf16_d128_sm90a. */
    static String moduleKey(String mode, DType inputType, int headDim, Arch arch) {
        return "quant_" + mode + "_" + inputType.name().toLowerCase(java.util.Locale.ROOT) + "_d" + headDim + "_" + arch.id();
    }

    /** Blocks of the kv_stats kernel along the tokens. */
    public static int statsBlocks(int nk) {
        return (nk + STATS_TILES * TOKENS - 1) / (STATS_TILES * TOKENS);
    }

    public Map<String, Object> templateModel() {
        var m = moduleModel(key(), inputType, headDim, THREADS);
        m.put("tokens", TOKENS);
        m.put("statsTiles", STATS_TILES);
        m.put("rotateQk", Int8Fp8Layout.ROTATE_QK);
        m.put("rotationBlock", Int8Fp8Layout.ROTATION_BLOCK);
        m.put("rotationSigns", Int8Fp8Layout.rotationSignWords(headDim));
        m.putAll(layoutModel());
        return m;
    }

    /**
     * The int8-fp8 layout decisions (Int8Fp8Layout) as the templates read them: the quantizers and the
     * attention kernels that consume their output print these, never their own numbers.
     */
    public static Map<String, Object> layoutModel() {
        var m = new LinkedHashMap<String, Object>();
        m.put("int8Max", Int8Fp8Layout.INT8_MAX);
        m.put("fp8Max", Int8Fp8Layout.FP8_MAX);
        m.put("log2Fp8Max", Int8Fp8Layout.LOG2_FP8_MAX);
        m.put("qScaleRows", Int8Fp8Layout.Q_SCALE_ROWS);
        m.put("qGroupsPerSlice", Int8Fp8Layout.Q_GROUPS_PER_SLICE);
        m.put("kScaleTokens", Int8Fp8Layout.K_SCALE_TOKENS);
        m.put("kGroupsPerBlock", Int8Fp8Layout.K_GROUPS_PER_BLOCK);
        m.put("vPermPeriod", Int8Fp8Layout.V_PERM_PERIOD);
        m.put("rowSumColumns", Int8Fp8Layout.ROW_SUM_COLUMNS);
        m.put("e4m3OnesWord", String.format(java.util.Locale.ROOT, "0x%08Xu", Int8Fp8Layout.E4M3_ONE * 0x01010101));
        m.put("vPerm", java.util.Arrays.stream(Int8Fp8Layout.vPerm()).boxed().toList());
        return m;
    }
}
