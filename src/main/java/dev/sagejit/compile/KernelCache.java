package dev.sagejit.compile;

import dev.sagejit.codegen.GeneratorVersion;
import dev.sagejit.util.Knobs;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Content-addressed cache of compiled kernels: memory first, then (when {@code SAGEJIT_CACHE} is not
 * off) a disk store under {@code <cacheDir>/kernels}. Threads asking for one key wait for a single
 * compile; processes sharing a cache folder compile a key once thanks to a per-key file lock. A
 * corrupt disk entry is logged, deleted and recompiled.
 */
public final class KernelCache {
    private static final Logger LOG = LoggerFactory.getLogger(KernelCache.class);

    private final Knobs knobs;
    private final DiskStore disk;
    private final ConcurrentHashMap<String, CompletableFuture<CompiledKernel>> memory = new ConcurrentHashMap<>();

    /** A cache rooted at {@code knobs.cacheDir()}. */
    public KernelCache(Knobs knobs) {
        this.knobs = knobs;
        this.disk = new DiskStore(knobs.cacheDir());
    }

    /**
     * Returns the kernel for this source, options and NVRTC, compiling it only when neither memory
     * nor disk holds it. {@link CompiledKernel#fromCache()} is false exactly when this call compiled.
     *
     * @throws dev.sagejit.api.SageException.Compile when NVRTC rejects the source (not cached)
     */
    public CompiledKernel getOrCompile(KernelSource source, CompileOptions options, Nvrtc nvrtc) {
        CacheKey key = CacheKey.of(GeneratorVersion.VALUE, source, options, nvrtc);
        var mine = new CompletableFuture<CompiledKernel>();
        var existing = memory.putIfAbsent(key.digest(), mine);
        if (existing != null) {
            return await(existing).asCached();
        }
        try {
            CompiledKernel k = load(key, source, options, nvrtc);
            mine.complete(k);
            return k;
        } catch (RuntimeException | Error e) {
            memory.remove(key.digest(), mine); // failures are not cached: a later call tries again
            mine.completeExceptionally(e);
            throw e;
        }
    }

    private CompiledKernel load(CacheKey key, KernelSource source, CompileOptions options, Nvrtc nvrtc) {
        if (!knobs.cacheEnabled()) {
            return nvrtc.compile(source, options);
        }
        try {
            return disk.getOrBuild(key, source, options, () -> nvrtc.compile(source, options));
        } catch (IOException e) {
            LOG.warn("kernel cache at {} is unusable ({}); compiling {} without it", disk.location(),
                    e.toString(), source.name());
            return nvrtc.compile(source, options);
        }
    }

    private static CompiledKernel await(CompletableFuture<CompiledKernel> f) {
        try {
            return f.join();
        } catch (CompletionException e) {
            if (e.getCause() instanceof RuntimeException re) {
                throw re;
            }
            if (e.getCause() instanceof Error err) {
                throw err;
            }
            throw e;
        }
    }

    /** Entries, bytes and folder of the cache. */
    public CacheReport report() {
        if (!knobs.cacheEnabled()) {
            return new CacheReport(memory.size(), 0, disk.location());
        }
        try {
            return disk.report();
        } catch (IOException e) {
            throw new UncheckedIOException("could not read the kernel cache at " + disk.location(), e);
        }
    }

    /** Forgets every entry in memory and deletes every disk entry; returns how many were removed. */
    public int clear() {
        int inMemory = memory.size();
        memory.clear();
        if (!knobs.cacheEnabled()) {
            return inMemory;
        }
        try {
            return disk.clear();
        } catch (IOException e) {
            throw new UncheckedIOException("could not clear the kernel cache at " + disk.location()
                    + "; delete that folder by hand", e);
        }
    }
}
