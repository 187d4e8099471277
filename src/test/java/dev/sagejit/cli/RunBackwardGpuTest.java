package dev.sagejit.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sagejit.util.JsonLines;
import dev.sagejit.util.Knobs;
import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code run --backward} end to end on the GPU: the host-array training step of
 * {@link dev.sagejit.bench.GradientCheck} (BSHD, GQA, causal; the LSE copied back) and its results lines.
 */
@Tag("gpu")
class RunBackwardGpuTest {
    @TempDir
    Path tmp;

    @Test
    void aBshdGqaCausalStepPassesAndWritesOneLinePerTensorAndMetric() throws IOException {
        Path results = tmp.resolve("r.jsonl");
        var r = Cli.run(Knobs.fromEnvironment(), "run", "--backward", "--shape", "1x4x2x192x192x64", "--layout", "bshd",
                "--causal", "--lse", "--out-lse", tmp.resolve("lse.npy").toString(), "--results", results.toString(),
                "--run", "gpu-test", "--commit", "abc", "--label", "gaussian");
        assertEquals(0, r.code(), r.out() + r.err());
        for (String tensor : new String[] {"O  ", "dQ ", "dK ", "dV ", "LSE"}) {
            assertTrue(r.out().contains(tensor + " vs FP64 reference (all rows)"), r.out());
        }
        assertTrue(r.out().contains("PASS: rel L2 of dQ"), r.out());
        var lines = JsonLines.read(results);
        assertEquals(20, lines.size());
        for (var line : lines) {
            assertEquals("sagejit", line.get("impl"));
            assertEquals("gaussian", line.get("inputs"));
            assertEquals(line.get("tensor").equals("O") ? "fwd" : "bwd", line.get("direction"));
        }
    }
}
