package dev.sagejit.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sagejit.runtime.CudaDriver;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What the commands that need a GPU say on a machine without one. */
class NoGpuCommandsTest {
    @TempDir
    Path cache;

    @BeforeEach
    void onlyWithoutGpu() {
        org.junit.jupiter.api.Assumptions.assumeFalse(CudaDriver.available(), "this machine has a GPU");
    }

    @Test
    void runExitsTwoSayingThereIsNoGpu() {
        var r = Cli.run(Cli.knobs(cache), "run", "--shape", "1x2x64x64");
        assertEquals(2, r.code(), r.out() + r.err());
        assertTrue(r.err().contains("no GPU"), r.err());
        assertTrue(!r.err().contains("\tat "), "no stack trace without --verbose: " + r.err());
    }

    @Test
    void verboseAddsTheStackTrace() {
        var r = Cli.run(Cli.knobs(cache), "--verbose", "bench", "--shapes", "1x1x64x64");
        assertEquals(2, r.code());
        assertTrue(r.err().contains("no GPU") && r.err().contains("\tat "), r.err());
    }

    @Test
    void infoExitsZeroAndDescribesNvrtc() {
        var r = Cli.run(Cli.knobs(cache), "info");
        assertEquals(0, r.code(), r.out() + r.err());
        assertTrue(r.out().contains("GPU: none"), r.out());
        assertTrue(r.out().contains("NVRTC libraries"), r.out());
        assertTrue(r.out().contains("Kernel cache: " + cache), r.out());
        assertTrue(r.out().contains("Java: "), r.out());
    }
}
