package dev.sagejit.compile;

import dev.sagejit.spec.Arch;
import java.nio.file.Path;
import java.util.List;

/**
 * One loaded NVRTC library behind one binding. Implementations are thread-safe: every
 * {@link #compile} call creates, uses and destroys its own NVRTC program.
 *
 * <p>Obtain instances from {@link NvrtcBackends}: {@link JcudaNvrtc} binds libnvrtc.so.12 through
 * JCuda, {@link FfmNvrtc} binds any libnvrtc (primarily .so.13) through {@code java.lang.foreign}.
 */
public interface Nvrtc {

    /** {@code jcuda} or {@code ffm}. */
    String backend();

    /** NVRTC's own version, {@code major.minor}, e.g. {@code 13.0}. */
    String version();

    /** The library file this binding loaded. */
    Path library();

    /** The architectures of {@link Arch#ALL} this NVRTC can generate code for. */
    List<Arch> supportedArchs();

    /** Whether {@link #supportedArchs()} holds {@code arch}. */
    default boolean supports(Arch arch) {
        return supportedArchs().contains(arch);
    }

    /**
     * Compiles one source.
     *
     * @throws dev.sagejit.api.SageException.Compile when NVRTC rejects it; the source is first
     *         written to {@code <cacheDir>/failed/<name>.cu} and the exception carries that path,
     *         the log and the options
     */
    CompiledKernel compile(KernelSource source, CompileOptions options);
}
