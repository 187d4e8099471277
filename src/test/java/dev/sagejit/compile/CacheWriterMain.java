package dev.sagejit.compile;

import dev.sagejit.util.Knobs;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

/**
 * Child process of {@link KernelCacheTest}: compiles one kernel through a cache on the folder
 * {@code args[0]} (a real NVRTC, with a delay that widens the race) and prints whether it compiled
 * or found the entry, as one of several processes sharing the folder would.
 */
final class CacheWriterMain {
    private CacheWriterMain() {
    }

    public static void main(String[] args) {
        var knobs = new Knobs(Optional.empty(), "auto", Path.of(args[0]), true, 0, Optional.empty(), List.of(), List.of());
        var compiled = new KernelCache(knobs).getOrCompile(Kernels.mmaProbe("shared_by_processes"),
                CompileOptions.cubin(dev.sagejit.spec.Arch.SM90A), CountingNvrtc.any(300));
        System.out.println((compiled.fromCache() ? "cached " : "compiled ") + compiled.image().length);
    }
}
