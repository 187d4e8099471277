package dev.sagejit.compile;

import dev.sagejit.api.SageException;
import dev.sagejit.codegen.GeneratorVersion;
import dev.sagejit.util.Knobs;

/**
 * The compile stage: rendered source in, kernel image out, through the cache. The one entry is
 * {@link #compile}; it checks the NVRTC can target the arch before anything else.
 */
public final class KernelCompiler {
    /** Version of the generator that rendered the sources; part of every cache key. */
    public static final String GENERATOR_VERSION = GeneratorVersion.VALUE;

    private final Knobs knobs;
    private final Nvrtc nvrtc;
    private final KernelCache cache;

    public KernelCompiler(Knobs knobs, Nvrtc nvrtc, KernelCache cache) {
        this.knobs = java.util.Objects.requireNonNull(knobs, "knobs");
        this.nvrtc = java.util.Objects.requireNonNull(nvrtc, "nvrtc");
        this.cache = java.util.Objects.requireNonNull(cache, "cache");
    }

    /**
     * Compiles {@code source} (or returns it from the cache).
     *
     * @throws SageException.Unsupported when this NVRTC cannot target {@code options.arch()}
     * @throws SageException.Compile     when NVRTC rejects the source
     */
    public CompiledKernel compile(KernelSource source, CompileOptions options) {
        if (!nvrtc.supports(options.arch())) {
            throw new SageException.Unsupported(nvrtc + " cannot target " + options.arch().name()
                    + " (it supports " + nvrtc.supportedArchs().stream().map(a -> a.name()).toList()
                    + "); install a newer NVRTC (pip install nvidia-cuda-nvrtc) and point SAGEJIT_NVRTC"
                    + " or SAGEJIT_PYTHON_PATH at it (cache: " + knobs.cacheDir() + ")");
        }
        return cache.getOrCompile(source, options, nvrtc);
    }

    /** The NVRTC this stage compiles with. */
    public Nvrtc nvrtc() {
        return nvrtc;
    }

    /** The cache this stage reads and fills. */
    public KernelCache cache() {
        return cache;
    }
}
