package dev.sagejit.compile;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sagejit.api.SageException;
import dev.sagejit.spec.Arch;
import dev.sagejit.util.Knobs;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class KernelCacheTest {
    private static final CompileOptions OPTS = CompileOptions.cubin(Arch.SM90A);

    @TempDir
    Path dir;

    private Knobs knobs(boolean diskEnabled) {
        return new Knobs(Optional.empty(), "auto", dir, diskEnabled, 0, Optional.empty(), List.of(), List.of());
    }

    private Path onlyEntry() throws Exception {
        try (var s = Files.list(dir.resolve("kernels"))) {
            List<Path> entries = s.toList();
            assertEquals(1, entries.size(), entries.toString());
            return entries.getFirst();
        }
    }

    @Test
    void secondCallHitsMemoryAndFreshCacheHitsDisk() throws Exception {
        var nvrtc = CountingNvrtc.any(0);
        var src = Kernels.mmaProbe("fwd_probe_sm90a");
        var first = new KernelCache(knobs(true)).getOrCompile(src, OPTS, nvrtc);
        assertFalse(first.fromCache());

        var cache = new KernelCache(knobs(true));
        var fromDisk = cache.getOrCompile(src, OPTS, nvrtc);
        assertTrue(fromDisk.fromCache());
        assertArrayEquals(first.image(), fromDisk.image());
        assertEquals(first.report(), fromDisk.report());
        assertEquals(first.nvrtcVersion(), fromDisk.nvrtcVersion());
        assertTrue(cache.getOrCompile(src, OPTS, nvrtc).fromCache());
        assertEquals(1, nvrtc.compiles.get());

        Path entry = onlyEntry();
        assertTrue(entry.getFileName().toString().matches("fwd_probe_sm90a-[0-9a-f]{16}"), entry.toString());
        assertTrue(Files.isRegularFile(entry.resolve("kernel.cubin")));
        assertEquals(src.code(), Files.readString(entry.resolve("source.cu")));
        var manifest = new ObjectMapper().readTree(entry.resolve("manifest.json").toFile());
        assertEquals("sm_90a", manifest.path("key").path("arch").asText());
        assertEquals(first.report().registers(), manifest.path("ptxas").path("registers").asInt());
        assertEquals(first.image().length, manifest.path("image_bytes").asInt());
    }

    @Test
    void truncatedCubinIsRecompiledWithAWarning() throws Exception {
        var nvrtc = CountingNvrtc.any(0);
        var src = Kernels.mmaProbe("truncated");
        new KernelCache(knobs(true)).getOrCompile(src, OPTS, nvrtc);
        Path cubin = onlyEntry().resolve("kernel.cubin");
        Files.write(cubin, java.util.Arrays.copyOf(Files.readAllBytes(cubin), 100));

        String err = capturingStderr(() -> {
            var again = new KernelCache(knobs(true)).getOrCompile(src, OPTS, nvrtc);
            assertFalse(again.fromCache());
        });
        assertEquals(2, nvrtc.compiles.get());
        assertTrue(err.contains("corrupt") && err.contains("recompiling"), err);
        assertTrue(new KernelCache(knobs(true)).getOrCompile(src, OPTS, nvrtc).fromCache());
    }

    @Test
    void garbledManifestIsRecompiled() throws Exception {
        var nvrtc = CountingNvrtc.any(0);
        var src = Kernels.mmaProbe("garbled");
        new KernelCache(knobs(true)).getOrCompile(src, OPTS, nvrtc);
        Files.writeString(onlyEntry().resolve("manifest.json"), "{\"digest\": ");

        String err = capturingStderr(() ->
                assertFalse(new KernelCache(knobs(true)).getOrCompile(src, OPTS, nvrtc).fromCache()));
        assertEquals(2, nvrtc.compiles.get());
        assertTrue(err.contains("recompiling"), err);
        assertTrue(new KernelCache(knobs(true)).getOrCompile(src, OPTS, nvrtc).fromCache());
    }

    @Test
    void eightThreadsCompileOneKeyOnce() throws Exception {
        var nvrtc = CountingNvrtc.any(50);
        var cache = new KernelCache(knobs(true));
        var src = Kernels.mmaProbe("contended");
        var start = new CountDownLatch(1);
        try (var pool = Executors.newFixedThreadPool(8)) {
            var futures = new ArrayList<Future<CompiledKernel>>();
            for (int i = 0; i < 8; i++) {
                futures.add(pool.submit(() -> {
                    start.await();
                    return cache.getOrCompile(src, OPTS, nvrtc);
                }));
            }
            start.countDown();
            int compiled = 0;
            for (var f : futures) {
                compiled += f.get().fromCache() ? 0 : 1;
            }
            assertEquals(1, compiled);
        }
        assertEquals(1, nvrtc.compiles.get());
    }

    @Test
    void twoCachesOnOneFolderCompileOnce() throws Exception {
        // Stands in for two processes: separate memory maps, shared folder and lock files.
        var nvrtc = CountingNvrtc.any(50);
        var src = Kernels.mmaProbe("two_caches");
        try (var pool = Executors.newFixedThreadPool(2)) {
            var a = pool.submit(() -> new KernelCache(knobs(true)).getOrCompile(src, OPTS, nvrtc));
            var b = pool.submit(() -> new KernelCache(knobs(true)).getOrCompile(src, OPTS, nvrtc));
            assertArrayEquals(a.get().image(), b.get().image());
        }
        assertEquals(1, nvrtc.compiles.get());
    }

    @Test
    void fourProcessesShareOneCacheFolder() throws Exception {
        String javaBin = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        var children = new ArrayList<Process>();
        for (int p = 0; p < 4; p++) {
            children.add(new ProcessBuilder(javaBin, "--enable-native-access=ALL-UNNAMED", "-cp",
                    System.getProperty("java.class.path"), CacheWriterMain.class.getName(), dir.toString())
                    .redirectErrorStream(true).start());
        }
        var outputs = new ArrayList<String>();
        for (var child : children) {
            String out = new String(child.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(child.waitFor(120, java.util.concurrent.TimeUnit.SECONDS), "cache process hung");
            assertEquals(0, child.exitValue(), out);
            outputs.add(out.lines().filter(l -> l.startsWith("compiled ") || l.startsWith("cached ")).findFirst()
                    .orElseThrow(() -> new AssertionError("no result line in: " + out)));
        }
        // The folder's lock lets one process compile; the others read its entry, byte for byte the same.
        assertEquals(1, outputs.stream().filter(l -> l.startsWith("compiled ")).count(), outputs.toString());
        assertEquals(1, outputs.stream().map(l -> l.substring(l.indexOf(' ') + 1)).distinct().count(), outputs.toString());
        onlyEntry();
        assertTrue(new KernelCache(knobs(true)).getOrCompile(Kernels.mmaProbe("shared_by_processes"), OPTS,
                CountingNvrtc.any(0)).fromCache());
    }

    @Test
    void clearEmptiesAndReportCounts() {
        var nvrtc = CountingNvrtc.any(0);
        var cache = new KernelCache(knobs(true));
        cache.getOrCompile(Kernels.mmaProbe("one"), OPTS, nvrtc);
        cache.getOrCompile(Kernels.mmaProbe("two"), OPTS, nvrtc);
        var report = cache.report();
        assertEquals(2, report.entries());
        assertTrue(report.totalBytes() > 0);
        assertEquals(dir.resolve("kernels"), report.location());

        assertEquals(2, cache.clear());
        assertEquals(0, cache.report().entries());
        assertFalse(cache.getOrCompile(Kernels.mmaProbe("one"), OPTS, nvrtc).fromCache());
        assertEquals(3, nvrtc.compiles.get());
    }

    @Test
    void diskOffKeepsMemoryOnly() {
        var nvrtc = CountingNvrtc.any(0);
        var cache = new KernelCache(knobs(false));
        assertFalse(cache.getOrCompile(Kernels.mmaProbe("mem"), OPTS, nvrtc).fromCache());
        assertTrue(cache.getOrCompile(Kernels.mmaProbe("mem"), OPTS, nvrtc).fromCache());
        assertFalse(Files.exists(dir.resolve("kernels")));
        assertEquals(1, cache.report().entries());
    }

    @Test
    void failuresAreNotCached() {
        var nvrtc = CountingNvrtc.any(0);
        var cache = new KernelCache(knobs(true));
        assertThrows(SageException.Compile.class, () -> cache.getOrCompile(Kernels.broken(), OPTS, nvrtc));
        assertThrows(SageException.Compile.class, () -> cache.getOrCompile(Kernels.broken(), OPTS, nvrtc));
        assertEquals(2, nvrtc.compiles.get());
        assertEquals(0, cache.report().entries());
    }

    @Test
    void compilerStageGoesThroughTheCache() {
        var nvrtc = CountingNvrtc.any(0);
        var compiler = new KernelCompiler(knobs(true), nvrtc, new KernelCache(knobs(true)));
        assertFalse(compiler.compile(Kernels.mmaProbe("stage"), OPTS).fromCache());
        assertTrue(compiler.compile(Kernels.mmaProbe("stage"), OPTS).fromCache());
        assertEquals("0.1.0", KernelCompiler.GENERATOR_VERSION);
    }

    /** Runs {@code body} while collecting what slf4j-simple writes to System.err. */
    private static String capturingStderr(Runnable body) {
        PrintStream old = System.err;
        var buf = new ByteArrayOutputStream();
        System.setErr(new PrintStream(buf, true, StandardCharsets.UTF_8));
        try {
            body.run();
        } finally {
            System.setErr(old);
        }
        return buf.toString(StandardCharsets.UTF_8);
    }
}
