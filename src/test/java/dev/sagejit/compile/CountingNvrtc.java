package dev.sagejit.compile;

import dev.sagejit.spec.Arch;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/** Delegates to a real NVRTC and counts compiles; a small delay widens races in concurrency tests. */
final class CountingNvrtc implements Nvrtc {
    final AtomicInteger compiles = new AtomicInteger();
    private final Nvrtc real;
    private final long delayMillis;

    CountingNvrtc(Nvrtc real, long delayMillis) {
        this.real = real;
        this.delayMillis = delayMillis;
    }

    /** Whichever real NVRTC this machine has, newest first. */
    static CountingNvrtc any(long delayMillis) {
        boolean has13 = TestNvrtcs.libraries().stream().anyMatch(l -> l.major() == 13);
        return new CountingNvrtc(has13 ? TestNvrtcs.ffm13() : TestNvrtcs.jcuda(), delayMillis);
    }

    @Override
    public String backend() {
        return real.backend();
    }

    @Override
    public String version() {
        return real.version();
    }

    @Override
    public Path library() {
        return real.library();
    }

    @Override
    public List<Arch> supportedArchs() {
        return real.supportedArchs();
    }

    @Override
    public CompiledKernel compile(KernelSource source, CompileOptions options) {
        compiles.incrementAndGet();
        if (delayMillis > 0) {
            try {
                Thread.sleep(delayMillis);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        return real.compile(source, options);
    }
}
