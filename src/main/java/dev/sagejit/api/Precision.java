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
    INT8_FP8_FP16("int8-fp8-fp16", DType.FP16),
    /**
     * SageAttention3 on FP4 tensor cores (sm_120a): Q, K, V in NVFP4 (E2M1 with E4M3 scales per 16
     * values), Q and K smoothed, two-level P, BF16 inputs and output (docs/nvfp4-quantization.md).
     * Refused on GPUs without FP4 tensor cores, naming {@link #NVFP4_EMULATED} and {@link #INT8_FP8}.
     */
    NVFP4("nvfp4", DType.BF16),
    /**
     * {@link #NVFP4}'s exact numerics on GPUs without FP4 tensor cores (sm_89, sm_90a): the same
     * quantizers, each FP4 MMA done as dequantized 16-bit MMAs. For accuracy studies, not for speed.
     */
    NVFP4_EMULATED("nvfp4-emulated", DType.BF16),
    /**
     * SageBwd, 8-bit attention for training (SageAttention3's second part, docs/sagebwd.md): BF16
     * tensors; Q, K (smoothed), V and dO in INT8 per 64-row block, P~ per row and P, dS per 64 x 64
     * tile; six of the seven matmuls of forward and backward in INT8, dP = dO V^T in BF16. Runs through
     * {@link SageAttention#forwardForTraining} on GPUs with INT8 mma.sync (sm_80+).
     */
    SAGEBWD("sagebwd", DType.BF16),
    /** {@link #SAGEBWD} with FP16 tensors (dP = dO V^T in FP16). */
    SAGEBWD_FP16("sagebwd-fp16", DType.FP16),
    /**
     * The fastest mode of this GPU that meets the accuracy bars, chosen per call from the GPU and the
     * tensors' type ({@link SageAttention#resolve}): int8-fp8 where INT8 and FP8 tensor cores exist (sm_89, sm_90a,
     * sm_120a), else the 16-bit mode of the tensors. Host arrays go to the GPU as BF16.
     */
    AUTO("auto", DType.BF16);

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

    /**
     * Whether this is a SageAttention2 mode: Q and K quantized to INT8, V to FP8, before the
     * attention kernel runs (the int8-fp8 kernel family and its tile space).
     */
    public boolean quantized() {
        return this == INT8_FP8 || this == INT8_FP8_FP16;
    }

    /** Whether tensors of type {@code t} run in this mode: its input type, or BF16 and FP16 for {@link #AUTO}. */
    public boolean accepts(DType t) {
        return this == AUTO ? t == DType.BF16 || t == DType.FP16 : t == inputType;
    }

    /** Whether this is a 16-bit mode (BF16 or FP16 operands and P): the modes with a backward so far. */
    public boolean sixteenBit() {
        return this == BF16 || this == FP16;
    }

    /** Whether this is a SageBwd (8-bit training) mode: it runs only as a training step. */
    public boolean sageBwd() {
        return this == SAGEBWD || this == SAGEBWD_FP16;
    }

    /** Whether {@link SageAttention#forwardForTraining} and a backward exist for this mode. */
    public boolean trainable() {
        return sixteenBit() || sageBwd();
    }

    /** The 16-bit mode of tensors of type {@code t}: FP16 for FP16, else BF16. */
    public static Precision sixteenBitFor(DType t) {
        return t == DType.FP16 ? FP16 : BF16;
    }

    /** Whether this is a SageAttention3 (NVFP4 microscaling) mode, native or emulated. */
    public boolean nvfp4() {
        return this == NVFP4 || this == NVFP4_EMULATED;
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
