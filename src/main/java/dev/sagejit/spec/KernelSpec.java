package dev.sagejit.spec;

import dev.sagejit.api.DType;
import dev.sagejit.api.Precision;

/**
 * Everything that changes the generated code of an attention kernel, and nothing else: the only
 * input to code generation besides the tile config. Batch, head counts, the GQA ratio, sequence
 * lengths, strides (hence layout) and the softmax scale are launch arguments, so one compiled kernel
 * serves all of them.
 *
 * @param direction forward or backward
 * @param arch      target architecture
 * @param precision precision mode
 * @param headDim   64 or 128
 * @param causal    bottom-right aligned causal mask
 * @param lse       whether the kernel writes the FP32 log-sum-exp per query row
 */
public record KernelSpec(Direction direction, Arch arch, Precision precision, int headDim,
        boolean causal, boolean lse) {

    public KernelSpec {
        java.util.Objects.requireNonNull(direction, "direction");
        java.util.Objects.requireNonNull(arch, "arch");
        java.util.Objects.requireNonNull(precision, "precision");
        if (headDim != 64 && headDim != 128) {
            throw new IllegalArgumentException("head dim " + headDim + " is not supported; use 64 or 128");
        }
        if (direction != Direction.FWD) {
            throw new IllegalArgumentException("KernelSpec describes forward kernels; the backward modules are"
                    + " FlashBwdPlan (bf16, fp16) and SageBwdPlan (sagebwd)");
        }
        if (precision.sageBwd()) {
            throw new IllegalArgumentException(precision.id() + " is a training mode with its own kernels (SageBwdPlan):"
                    + " 'sagejit compile --precision " + precision.id() + "' builds them, 'sagejit bench --direction"
                    + " both --precision " + precision.id() + "' times them, 'sagejit run --backward' checks them");
        }
        if (!arch.has(MmaKind.MMA_SYNC_F16)) {
            throw new IllegalArgumentException(arch.name() + " has no BF16/FP16 mma.sync");
        }
        if (precision.quantized() && !(arch.has(MmaKind.MMA_SYNC_INT8) && arch.has(MmaKind.MMA_SYNC_FP8))) {
            throw new dev.sagejit.api.SageException.Unsupported("precision " + precision.id() + " needs INT8 and FP8"
                    + " tensor cores (sm_89 or newer); " + arch.name() + " has no FP8 mma; use bf16 or fp16");
        }
    }

    /** Element type of Q, K, V and O. */
    public DType elementType() {
        return precision.inputType();
    }

    /** Bytes per element of the Q, K and V operands the attention kernel reads: 1 once quantized. */
    public int operandBytes() {
        return precision.quantized() ? 1 : elementType().bytes();
    }

    /**
     * Readable canonical id, e.g. {@code fwd_bf16_d128_causal_lse_sm90a}. Two specs are equal exactly
     * when their keys are.
     */
    public String key() {
        return direction.id() + "_" + precision.keyId() + "_d" + headDim + (causal ? "_causal" : "")
                + (lse ? "_lse" : "") + "_" + arch.id();
    }

    /** The key of this spec compiled with the given tiles, e.g. {@code ..._sm90a_m128n64w4s2}. */
    public String key(TileConfig tiles) {
        return key() + "_" + tiles.key();
    }

    /** Every forward spec of the INT8/FP8 family for one arch (empty where it is not built). */
    public static java.util.List<KernelSpec> sage2Family(Arch arch) {
        return arch.has(MmaKind.MMA_SYNC_FP8) ? family(arch, Precision.INT8_FP8, Precision.INT8_FP8_FP16)
                : java.util.List.of();
    }

    /** Every forward spec of the baseline family for one arch: the list {@code compile --all} builds. */
    public static java.util.List<KernelSpec> baselineFamily(Arch arch) {
        return family(arch, Precision.BF16, Precision.FP16);
    }

    /** Every forward spec of some precisions on one arch: head dims 64 and 128, causal or not, LSE or not. */
    private static java.util.List<KernelSpec> family(Arch arch, Precision... precisions) {
        var out = new java.util.ArrayList<KernelSpec>();
        for (Precision p : precisions) {
            for (int d : new int[] {64, 128}) {
                for (boolean causal : new boolean[] {false, true}) {
                    for (boolean lse : new boolean[] {false, true}) {
                        out.add(new KernelSpec(Direction.FWD, arch, p, d, causal, lse));
                    }
                }
            }
        }
        return java.util.List.copyOf(out);
    }
}
