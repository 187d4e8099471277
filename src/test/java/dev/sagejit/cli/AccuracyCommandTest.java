package dev.sagejit.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sagejit.util.JsonLines;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code sagejit accuracy}: the CPU study prints a row per variant, the directions, and RESULTS.md lines. */
class AccuracyCommandTest {
    @TempDir
    Path dir;

    @Test
    void printsEveryVariantTheDirectionsAndWritesAccuracyLines() throws Exception {
        Path out = dir.resolve("acc.jsonl");
        var r = Cli.run(Cli.knobs(dir), "accuracy", "--shapes", "1x2x1x192x160x64", "--inputs",
                "gaussian,k-channel-offset", "--causal", "1", "--out", out.toString(), "--commit", "test");
        assertEquals(0, r.code(), r.out() + r.err());
        for (String variant : new String[] {"bf16-output", "int8-fp8", "nvfp4 ", "nvfp4:direct-P", "nvfp4:no-smooth-K",
                "nvfp4:no-smooth-Q", "nvfp4:mxfp4"}) {
            assertTrue(r.out().contains(variant), variant + " in " + r.out());
        }
        // K smoothing is what saves NVFP4 on keys with channel offsets (the paper's Table 1b direction).
        assertTrue(r.out().lines().anyMatch(l -> l.contains("k-channel-offset") && l.contains("K smoothing helps: yes")),
                r.out());
        var lines = JsonLines.read(out);
        assertEquals(2 * 7 * 5, lines.size(), "2 families x 7 variants x 5 metrics");
        var first = lines.get(0);
        assertEquals("sagejit-emulation", first.get("impl"));
        assertEquals("O", first.get("tensor"));
        assertEquals("fp64-cpu", first.get("reference"));
        assertTrue(lines.stream().anyMatch(l -> "mxfp4".equals(l.get("ablation")) && "rel_l1".equals(l.get("metric"))));
    }

    @Test
    void backwardStudyReportsGradientsAgainstTheBarAndWritesBwdLines() throws Exception {
        Path out = dir.resolve("bwd.jsonl");
        var r = Cli.run(Cli.knobs(dir), "accuracy", "--backward", "--shapes", "1x2x1x256x200x64", "--inputs",
                "gaussian,peaky", "--causal", "1", "--out", out.toString(), "--commit", "test");
        assertEquals(0, r.code(), r.out() + r.err());
        assertTrue(r.out().lines().anyMatch(l -> l.startsWith("gaussian") && l.contains("sagebwd-int8 ")
                && l.endsWith("PASS")), r.out());
        assertTrue(r.out().lines().anyMatch(l -> l.startsWith("peaky") && l.endsWith("(no bar)")), r.out());
        assertTrue(r.out().contains("sagebwd-int8:int8-dOV") && r.out().contains("sagebwd-int8:no-smooth-K"), r.out());
        var lines = JsonLines.read(out);
        assertEquals(2 * 3 * 4 * 5, lines.size(), "2 families x 3 variants x 4 tensors x 5 metrics");
        assertTrue(lines.stream().anyMatch(l -> "dQ".equals(l.get("tensor")) && "bwd".equals(l.get("direction"))));
        assertTrue(lines.stream().anyMatch(l -> "O".equals(l.get("tensor")) && "fwd".equals(l.get("direction"))));
    }
}
