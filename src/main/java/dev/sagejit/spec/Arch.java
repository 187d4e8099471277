package dev.sagejit.spec;

import dev.sagejit.api.DType;
import dev.sagejit.api.Precision;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;

/**
 * A GPU architecture sagejit generates code for, as data: what NVRTC calls it and the limits that
 * decide tile sizes. Numbers are NVIDIA's published per-compute-capability limits.
 *
 * @param name           NVRTC/ptxas name, e.g. {@code sm_90a}
 * @param major          compute capability major
 * @param minor          compute capability minor
 * @param maxSmemPerBlock largest dynamic shared memory one block may opt in to, bytes
 * @param smemPerSm      shared memory per multiprocessor, bytes
 * @param regsPerSm      32-bit registers per multiprocessor
 * @param maxThreadsPerSm resident threads per multiprocessor
 * @param mmaKinds       tensor-core instructions available
 */
public record Arch(String name, int major, int minor, int maxSmemPerBlock, int smemPerSm,
        int regsPerSm, int maxThreadsPerSm, Set<MmaKind> mmaKinds) {

    public static final Arch SM80 = new Arch("sm_80", 8, 0, 163 * 1024, 164 * 1024, 65536, 2048,
            EnumSet.of(MmaKind.MMA_SYNC_F16, MmaKind.MMA_SYNC_INT8));
    public static final Arch SM89 = new Arch("sm_89", 8, 9, 99 * 1024, 100 * 1024, 65536, 1536,
            EnumSet.of(MmaKind.MMA_SYNC_F16, MmaKind.MMA_SYNC_INT8, MmaKind.MMA_SYNC_FP8));
    public static final Arch SM90A = new Arch("sm_90a", 9, 0, 227 * 1024, 228 * 1024, 65536, 2048,
            EnumSet.of(MmaKind.MMA_SYNC_F16, MmaKind.MMA_SYNC_INT8, MmaKind.MMA_SYNC_FP8,
                    MmaKind.WGMMA));
    public static final Arch SM120A = new Arch("sm_120a", 12, 0, 99 * 1024, 100 * 1024, 65536, 1536,
            EnumSet.of(MmaKind.MMA_SYNC_F16, MmaKind.MMA_SYNC_INT8, MmaKind.MMA_SYNC_FP8,
                    MmaKind.MMA_BLOCK_SCALE_FP4));

    /** Every architecture sagejit knows, oldest first. */
    public static final List<Arch> ALL = List.of(SM80, SM89, SM90A, SM120A);

    public Arch {
        mmaKinds = Set.copyOf(mmaKinds);
    }

    /** Short id used in spec keys: {@code sm_90a} becomes {@code sm90a}. */
    public String id() {
        return name.replace("_", "");
    }

    public boolean has(MmaKind kind) {
        return mmaKinds.contains(kind);
    }

    /** Parses {@code sm_90a}, {@code sm90a} or {@code 90a}; names the known archs on failure. */
    public static Arch parse(String text) {
        String t = text.trim().toLowerCase(java.util.Locale.ROOT).replace("sm_", "").replace("sm", "");
        for (Arch a : ALL) {
            if (a.name.equals("sm_" + t)) {
                return a;
            }
        }
        throw new IllegalArgumentException("unknown architecture '" + text + "'; expected one of "
                + ALL.stream().map(Arch::name).toList());
    }

    /**
     * The concrete mode {@code p} runs as on this arch with {@code input} tensors: itself, or for
     * {@link Precision#AUTO} int8-fp8 (BF16 or FP16 flavour) where the GPU has INT8 and FP8 MMAs, else
     * BF16 or FP16. NVFP4 is never chosen automatically: its accuracy (cosine about 0.98 on Gaussian
     * inputs) is below the other modes'.
     */
    public Precision resolve(Precision p, DType input) {
        if (p != Precision.AUTO) {
            return p;
        }
        boolean eightBit = has(MmaKind.MMA_SYNC_INT8) && has(MmaKind.MMA_SYNC_FP8);
        if (!eightBit) {
            return Precision.sixteenBitFor(input);
        }
        return input == DType.FP16 ? Precision.INT8_FP8_FP16 : Precision.INT8_FP8;
    }

    /**
     * The architecture to generate code for on a device of the given compute capability: the newest
     * known arch the device can run. Arch-specific targets (sm_90a, sm_120a) only match their exact
     * device.
     */
    public static Arch forDevice(int major, int minor) {
        if (major == 9 && minor == 0) {
            return SM90A;
        }
        if (major == 12 && minor == 0) {
            return SM120A;
        }
        if (major > 8 || (major == 8 && minor >= 9)) {
            return SM89;
        }
        if (major == 8) {
            return SM80;
        }
        throw new dev.sagejit.api.SageException.Unsupported("compute capability " + major + "." + minor
                + " is older than sm_80; sagejit needs an Ampere or newer NVIDIA GPU");
    }
}
