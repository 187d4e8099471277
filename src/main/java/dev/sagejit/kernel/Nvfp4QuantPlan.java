package dev.sagejit.kernel;

import dev.sagejit.api.DType;
import dev.sagejit.reference.Nvfp4Reference;
import dev.sagejit.spec.Arch;
import java.util.Map;

/**
 * The quantizer module of the NVFP4 mode for one input type and head dim: six kernels that turn
 * BF16/FP16 Q, K, V into the operands docs/nvfp4-quantization.md describes, bit for bit as
 * {@link Nvfp4Reference} emulates them. Portable (software E2M1 rounding): it runs on sm_90a, where
 * the emulated NVFP4 mode needs it, and on sm_120a.
 *
 * @param arch      target architecture (sm_89 or newer: the E4M3 scales use cvt e4m3x2)
 * @param inputType BF16 or FP16
 * @param headDim   64 or 128
 */
public record Nvfp4QuantPlan(Arch arch, DType inputType, int headDim) {
    public static final String TEMPLATE = "quant/nvfp4_quant.ftl";
    /** Threads of the per-block kernels (a multiple of both head dims' 16-channel blocks per row). */
    public static final int THREADS = 128;
    public static final String KMEAN = "nvfp4_kmean";
    public static final String QMEAN = "nvfp4_qmean";
    public static final String QUANT_Q = "nvfp4_quant_q";
    public static final String QUANT_K = "nvfp4_quant_k";
    public static final String QUANT_V = "nvfp4_quant_v";
    public static final String DELTA_S = "nvfp4_delta_s";

    public Nvfp4QuantPlan {
        Sage2QuantPlan.requireInputs("NVFP4", inputType, headDim);
    }

    public String key() {
        return Sage2QuantPlan.moduleKey("nvfp4", inputType, headDim, arch);
    }

    /** Stored rows of one quantizer block of the per-16-channel kernels. */
    public int rowsPerBlock() {
        return THREADS / (headDim / Nvfp4Reference.Format.NVFP4.blockSize());
    }

    /**
     * The NVFP4 layout decisions (Nvfp4Reference) as the templates read them (fp4.ftl,
     * nvfp4_layout.ftl): the quantizers and the attention kernels print these, never their own.
     */
    public static Map<String, Object> layoutModel() {
        var m = new java.util.LinkedHashMap<String, Object>();
        m.put("e2m1Max", (int) Nvfp4Reference.E2M1_MAX);  // 6, an integer: printed as 6.0f
        m.put("blockSize", Nvfp4Reference.Format.NVFP4.blockSize());
        m.put("e4m3Nan", Byte.toUnsignedInt(dev.sagejit.reference.Sage2Reference.E4M3_NAN));
        m.put("qmeanRows", Nvfp4Reference.QMEAN_ROWS);
        m.put("permuteGroup", Nvfp4Reference.PERMUTE_GROUP);
        return m;
    }

    public Map<String, Object> templateModel() {
        var m = Sage2QuantPlan.moduleModel(key(), inputType, headDim, THREADS);
        m.putAll(layoutModel());
        return m;
    }
}
