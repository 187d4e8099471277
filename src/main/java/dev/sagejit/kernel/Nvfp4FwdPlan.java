package dev.sagejit.kernel;

import dev.sagejit.api.DType;
import dev.sagejit.reference.Nvfp4Reference;
import dev.sagejit.spec.Arch;
import dev.sagejit.spec.MmaKind;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * The NVFP4 attention kernel (SageAttention3): native on GPUs with the block-scaled FP4 MMA (sm_120a;
 * compile-verified only, no such GPU here), emulated exactly with 16-bit MMAs elsewhere (sm_89+, e.g.
 * the H200); one variant per output type, head dim, mask and LSE. It reads the operands
 * {@link Nvfp4Quantizer} writes (NVFP4 with the K permutation and two-level P,
 * docs/nvfp4-quantization.md).
 *
 * @param arch    sm_120a (native) or an sm_89+ target (emulated)
 * @param outType BF16 or FP16 output
 */
public record Nvfp4FwdPlan(Arch arch, DType outType, int headDim, boolean causal, boolean lse) {
    /** How NVFP4 runs: on FP4 tensor cores, or emulated exactly with 16-bit MMAs (same numerics). */
    public enum Mode {
        NATIVE("nvfp4"), EMULATED("nvfp4-emulated");

        private final String id;

        Mode(String id) {
            this.id = id;
        }

        public String id() {
            return id;
        }
    }

    /**
     * The plan of a mode on an arch.
     *
     * @throws dev.sagejit.api.SageException.Unsupported for native NVFP4 on a GPU without FP4 tensor
     *         cores, naming the emulated mode and int8-fp8 as what runs there
     */
    public static Nvfp4FwdPlan of(Mode mode, Arch arch, DType outType, int headDim, boolean causal, boolean lse) {
        if (mode == Mode.NATIVE && !arch.has(MmaKind.MMA_BLOCK_SCALE_FP4)) {
            throw new dev.sagejit.api.SageException.Unsupported("native NVFP4 needs FP4 tensor cores (sm_120a); "
                    + arch.name() + " has none. Use " + Mode.EMULATED.id() + " (the same numerics through 16-bit MMAs)"
                    + " or int8-fp8 (SageAttention2, faster on this GPU)");
        }
        if (mode == Mode.EMULATED && arch.has(MmaKind.MMA_BLOCK_SCALE_FP4)) {
            throw new IllegalArgumentException(arch.name() + " has FP4 tensor cores: run " + Mode.NATIVE.id()
                    + " (the emulated kernel exists for GPUs without them)");
        }
        return new Nvfp4FwdPlan(arch, outType, headDim, causal, lse);
    }

    public static final String TEMPLATE = "attn/fwd/nvfp4_fwd_mma.ftl";
    /** Query rows per block: 4 warps of 16 rows (one m16 tile each). */
    public static final int BLOCK_M = 64;
    /** Keys per block: one k64 step of the P V MMA, a multiple of the K permutation group. */
    public static final int BLOCK_N = 64;
    public static final int THREADS = 128;
    /**
     * The numerics this kernel implements, as {@link Nvfp4Reference} options: the paper's choices with
     * the online softmax over blocks of {@link #BLOCK_N} keys (the block decides the running maximum P
     * is quantized against, so the emulation must use the same one to agree code for code).
     */
    public static final Nvfp4Reference.Options OPTIONS = Nvfp4Reference.Options.DEFAULT.withBlockN(BLOCK_N);

    public Nvfp4FwdPlan {
        if (!arch.has(MmaKind.MMA_BLOCK_SCALE_FP4) && !arch.has(MmaKind.MMA_SYNC_FP8)) {
            throw new IllegalArgumentException(arch.name() + " has neither the block-scaled FP4 MMA (sm_120a) nor the"
                    + " FP8 conversions the emulated NVFP4 kernel needs (sm_89+); use bf16 or fp16");
        }
        Sage2QuantPlan.requireInputs("NVFP4", outType, headDim);
        if (Nvfp4Reference.QMEAN_ROWS % BLOCK_M != 0 || BLOCK_N % Nvfp4Reference.PERMUTE_GROUP != 0
                || Nvfp4Reference.TOKEN_PAD % BLOCK_N != 0) {
            throw new IllegalStateException("NVFP4 kernel blocks must tile the document's Q groups, K permutation"
                    + " groups and key padding");
        }
    }

    /** Whether this GPU lacks FP4 tensor cores, so the kernel emulates each FP4 MMA exactly with 16-bit MMAs. */
    public boolean emulated() {
        return !arch.has(MmaKind.MMA_BLOCK_SCALE_FP4);
    }

    public String key() {
        return "fwd_nvfp4" + (emulated() ? "emu_" : "_") + outType.name().toLowerCase(Locale.ROOT) + "_d" + headDim + (causal ? "_causal" : "")
                + (lse ? "_lse" : "") + "_" + arch.id();
    }

    public String entry() {
        return "sagejit_" + key();
    }

    public Map<String, Object> templateModel() {
        var m = new LinkedHashMap<String, Object>();
        m.put("specKey", key());
        m.put("entry", entry());
        m.put("elemPtx", outType.ptxName());
        m.put("headDim", headDim);
        m.put("blockM", BLOCK_M);
        m.put("blockN", BLOCK_N);
        m.put("log2PRow", Nvfp4Reference.LOG2_2688);
        m.put("log2PBlock", Nvfp4Reference.LOG2_448);
        m.put("causal", causal);
        m.put("lse", lse);
        m.put("emulated", emulated());
        m.putAll(Nvfp4QuantPlan.layoutModel());
        return m;
    }
}
