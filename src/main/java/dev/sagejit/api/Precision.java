package dev.sagejit.api;

/**
 * The precision mode of an attention call, named after SageAttention's choices: which operands are
 * quantized and how the two matmuls accumulate.
 */
public enum Precision {
    /** BF16 inputs and P, FP32 accumulation (FlashAttention-2 algorithm). */
    BF16("bf16", DType.BF16),
    /** FP16 inputs and P, FP32 accumulation (FlashAttention-2 algorithm). */
    FP16("fp16", DType.FP16);

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
