package dev.sagejit.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sagejit.compile.NvrtcBackends;
import dev.sagejit.util.Knobs;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code compile} through the real NVRTC found by this process's settings (SAGEJIT_PYTHON_PATH,
 * SAGEJIT_NVRTC, ...). Skipped when none is found, unless {@code -Dsagejit.test.require-nvrtc=true}.
 */
class CompileCommandTest {
    @TempDir
    Path cache;

    private Knobs knobsWithNvrtc() {
        Knobs knobs = Cli.knobs(cache);
        boolean found = !NvrtcBackends.available(knobs).isEmpty();
        if (!found && Boolean.getBoolean("sagejit.test.require-nvrtc")) {
            throw new AssertionError("no NVRTC found but sagejit.test.require-nvrtc=true; set SAGEJIT_PYTHON_PATH");
        }
        Assumptions.assumeTrue(found, "no NVRTC library found; set SAGEJIT_PYTHON_PATH or SAGEJIT_NVRTC");
        return knobs;
    }

    @Test
    void compilesTheWholeBaselineFamilyThenServesItFromTheCache() {
        Knobs knobs = knobsWithNvrtc();
        var first = Cli.run(knobs, "compile", "--all", "--arch", "sm_90a");
        assertEquals(0, first.code(), first.out() + first.err());
        // 32 attention kernels, 4 int8-fp8 and 4 NVFP4 quantizer modules, 16 emulated NVFP4 kernels,
        // 8 modules of the 16-bit backward, 8 SageBwd modules and 4 SageBwd quantizer modules.
        assertEquals("76 compiled, 0 failed", first.lastLine(), first.out());
        assertTrue(first.out().contains("sagebwd_fp16_d128_causal_wg_sm90a"), first.out());
        assertTrue(first.out().contains("quant_sagebwd_bf16_d64_sm90a"), first.out());
        assertTrue(first.out().contains("fwd_fp16_d64_causal_lse_sm90a_wgm128n128w8s3"), first.out());
        assertTrue(first.out().contains("quant_nvfp4_bf16_d128_sm90a"), first.out());
        assertTrue(first.out().contains("bwd_fp16_d128_causal_sm90a"), first.out());
        var again = Cli.run(knobs, "compile", "--all", "--arch", "sm_90a", "--jobs", "1");
        assertEquals("76 compiled, 0 failed", again.lastLine(), again.out());
        assertEquals(76, again.out().lines().filter(l -> l.endsWith("cached")).count(), again.out());
        var info = Cli.run(knobs, "cache", "info");
        assertTrue(info.out().contains("entries:  76"), info.out());
        var clear = Cli.run(knobs, "cache", "clear");
        assertEquals(0, clear.code());
        assertTrue(clear.out().contains("removed 76"), clear.out());
    }

    @Test
    void compilesOneSageBwdModuleWithItsQuantizers() {
        Knobs knobs = knobsWithNvrtc();
        var r = Cli.run(knobs, "compile", "--precision", "sagebwd-fp16", "--head-dim", "64", "--causal", "--arch",
                "sm_90a,sm_120a");
        assertEquals(0, r.code(), r.out() + r.err());
        assertEquals("4 compiled, 0 failed", r.lastLine(), r.out());
        for (String key : new String[] {"sagebwd_fp16_d64_causal_wg_sm90a", "quant_sagebwd_fp16_d64_sm90a",
                "sagebwd_fp16_d64_causal_sm120a", "quant_sagebwd_fp16_d64_sm120a"}) {
            assertTrue(r.out().contains(key), key + " in " + r.out());
        }
    }

    @Test
    void emitsSourceAndPtx() throws Exception {
        Knobs knobs = knobsWithNvrtc();
        Path emit = cache.resolve("emit");
        var r = Cli.run(knobs, "compile", "--precision", "fp16", "--head-dim", "64", "--ptx", "--emit-dir",
                emit.toString());
        assertEquals("1 compiled, 0 failed", r.lastLine(), r.out() + r.err());
        try (var files = Files.list(emit)) {
            var names = files.map(p -> p.getFileName().toString()).sorted().toList();
            assertTrue(names.contains("fwd_fp16_d64_sm90a_wgm128n128w8s3.cu"), names.toString());
            assertTrue(names.stream().anyMatch(n -> n.endsWith(".ptx")), names.toString());
        }
    }

    @Test
    void invalidTilesForASpecAreAUsageError() {
        var r = Cli.run(Cli.knobs(cache), "compile", "--head-dim", "128", "--tiles", "m256n128w8s2");
        assertEquals(2, r.code(), r.out() + r.err());
        assertTrue(r.err().contains("cannot run"), r.err());
    }
}
