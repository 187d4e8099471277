package dev.sagejit.kernel;

import dev.sagejit.api.AttentionOptions;
import dev.sagejit.api.DeviceTensor;
import dev.sagejit.api.SageAttention;
import dev.sagejit.spec.Arch;
import dev.sagejit.util.Knobs;
import java.lang.invoke.MethodHandles;

/**
 * What sagejit's own tools (the CLI, benchmarks, the tuner, the tests) need of a {@link SageAttention}
 * beyond its public API: opening it with explicit {@link Knobs}, its launcher, its target arch and
 * the kernel plan of a call. This package is not exported, so applications that use sagejit as a
 * module see only the public API; {@link SageAttention} installs the {@link Access} when its class
 * initializes.
 */
public final class SageInternals {
    /** The part of {@link SageAttention} that this class reaches; implemented by SageAttention alone. */
    public interface Access {
        /** {@link SageAttention#open()} with the given settings instead of the environment's. */
        SageAttention open(Knobs knobs);

        /** The launcher behind {@code sage}. */
        FwdLauncher launcher(SageAttention sage);
    }

    private static volatile Access access;

    private SageInternals() {
    }

    /** Called once, by SageAttention's static initializer. */
    public static void install(Access a) {
        if (access != null) {
            throw new IllegalStateException("SageInternals.Access is installed already");
        }
        access = a;
    }

    /**
     * Opens the GPU {@code knobs.deviceOrdinal()} and the NVRTC that best serves it.
     *
     * @throws dev.sagejit.api.SageException.Unsupported when there is no GPU, no driver or no NVRTC
     */
    public static SageAttention open(Knobs knobs) {
        return access().open(knobs);
    }

    /** The launcher of {@code sage}, for benchmarks and tools that launch repeatedly. */
    public static FwdLauncher launcher(SageAttention sage) {
        return access().launcher(sage);
    }

    /** Code-generation target of {@code sage}'s GPU. */
    public static Arch arch(SageAttention sage) {
        return launcher(sage).arch();
    }

    /** The validated problem's kernel plan on {@code sage}, without launching. */
    public static FwdKernelPlan plan(SageAttention sage, AttentionOptions options, DeviceTensor q, DeviceTensor k,
            DeviceTensor v, DeviceTensor o, long lseAddress) {
        return launcher(sage).plan(new FwdProblem(options, q, k, v, o, lseAddress));
    }

    private static Access access() {
        if (access == null) {
            try {
                MethodHandles.lookup().ensureInitialized(SageAttention.class); // runs its install
            } catch (IllegalAccessException e) {
                throw new IllegalStateException(e);
            }
        }
        return access;
    }
}
