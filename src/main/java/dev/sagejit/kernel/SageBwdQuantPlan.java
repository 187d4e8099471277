package dev.sagejit.kernel;

import dev.sagejit.api.DType;
import dev.sagejit.spec.Arch;
import dev.sagejit.spec.SageBwdLayout;
import java.util.Map;

/**
 * The quantizer module of SageBwd for one input type and head dim: one kernel that turns a block of
 * {@link SageBwdLayout#BLOCK} rows of Q, K, V or dO into INT8 codes with one scale, row-major and/or
 * transposed in one of the layout's token orders (docs/sagebwd.md). K's channel sums come from the
 * int8-fp8 module's kv_stats kernel.
 *
 * @param arch      target architecture
 * @param inputType BF16 or FP16
 * @param headDim   64 or 128
 */
public record SageBwdQuantPlan(Arch arch, DType inputType, int headDim) {
    public static final String TEMPLATE = "quant/sagebwd_quant.ftl";
    public static final String ENTRY = "sagebwd_quant";
    /** Threads per block: a multiple of both head dims' 16-byte chunks per row. */
    public static final int THREADS = 128;

    /** What the quantizer does with K's mean (the kernel's mean_mode). */
    public enum Mean {
        NONE(0), SUBTRACT(1), SHIFT(2);

        final int code;

        Mean(int code) {
            this.code = code;
        }
    }

    public SageBwdQuantPlan {
        Sage2QuantPlan.requireInputs("SageBwd", inputType, headDim);
    }

    public String key() {
        return Sage2QuantPlan.moduleKey("sagebwd", inputType, headDim, arch);
    }

    public Map<String, Object> templateModel() {
        var m = Sage2QuantPlan.moduleModel(key(), inputType, headDim, THREADS);
        m.putAll(SageBwdPlan.layoutModel());
        return m;
    }
}
