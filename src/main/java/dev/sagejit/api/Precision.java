package dev.sagejit.api;

/**
 * The precision mode of an attention call, named after SageAttention's choices: which operands are
 * quantized and how the two matmuls accumulate.
 */
public enum Precision {
    /** BF16 inputs and P, FP32 accumulation (FlashAttention-2 algorithm). */
    BF16("bf16", DType.BF16),
    /** FP16 inputs and P, FP32 accumulation (FlashAttention-2 algorithm). */
    FP16("fp16", DType.FP16),
    /**
     * SageAttention2 with BF16 inputs and output: K smoothed, Q and K in INT8 (per-thread groups),
     * P in FP8 E4M3 with the static 448 scale, V in FP8 per channel, two-level FP32 accumulation of PV
     * (docs/int8-fp8-quantization.md).
     */
    INT8_FP8("int8-fp8", DType.BF16),
    /** {@link #INT8_FP8} with FP16 inputs and output. */
    INT8_FP8_FP16("int8-fp8-fp16", DType.FP16);

    private final String id;
    private final DType inputType;

    Precision(String id, DType inputType) {
        this.id = id;
        this.inputType = inputType;
    }

    /** Short name used in spec keys, CLI flags and results files. */
    public String id() {
        return id;
    }

    /** Element type of Q, K, V and O in this mode. */
    public DType inputType() {
        return inputType;
    }

    /** Whether Q, K, V are quantized to 8 bits before the attention kernel runs. */
    public boolean quantized() {
        return this == INT8_FP8 || this == INT8_FP8_FP16;
    }

    /** The id as a C identifier fragment (spec keys become kernel names): {@code int8-fp8} to {@code int8fp8}. */
    public String keyId() {
        return id.replace("-", "");
    }

    /** Parses {@link #id()} (case-insensitive), naming the accepted values on failure. */
    public static Precision parse(String text) {
        for (Precision p : values()) {
            if (p.id.equalsIgnoreCase(text) || p.name().equalsIgnoreCase(text)) {
                return p;
            }
        }
        throw new IllegalArgumentException("unknown precision '" + text + "'; expected one of "
                + java.util.Arrays.stream(values()).map(Precision::id).toList());
    }
}
