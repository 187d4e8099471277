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
    void benchAndTuneRefuseAutoBeforeLookingForAGpu() {
        for (String[] args : new String[][] {{"bench", "--precision", "auto"}, {"tune", "--dry-run", "--arch", "sm_90a",
                "--precision", "bf16,auto"}}) {
            var r = Cli.run(Cli.knobs(cache), args);
            assertEquals(2, r.code(), r.out() + r.err());
            assertTrue(r.err().contains("auto is resolved per GPU at run time"), r.err());
        }
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

    @Test
    void tuneSaysThereIsNoGpuButItsDryRunListsCandidatesForAGivenArch() {
        var r = Cli.run(Cli.knobs(cache), "tune", "--shapes", "1x2x64x64");
        assertEquals(2, r.code(), r.out() + r.err());
        assertTrue(r.err().contains("no GPU"), r.err());

        var dry = Cli.run(Cli.knobs(cache), "tune", "--dry-run", "--arch", "sm_90a", "--shapes", "4x32x4096x128",
                "--precision", "int8-fp8", "--causal", "1");
        assertEquals(0, dry.code(), dry.out() + dry.err());
        assertTrue(dry.out().contains("4x32x4096x128 int8-fp8 causal"), dry.out());
        assertTrue(dry.out().contains("(default) compile, check, time"), dry.out());
        assertTrue(dry.out().contains("wgm64n64w4s2 ") && dry.out().contains("m64n64w4s2 "),
                "wgmma and mma.sync candidates: " + dry.out());
    }
}
