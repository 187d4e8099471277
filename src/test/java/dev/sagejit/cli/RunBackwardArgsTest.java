package dev.sagejit.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sagejit.runtime.CudaDriver;
import dev.sagejit.interop.Npy;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code run --backward}: what it refuses before opening a GPU, and its .npy dO input. */
class RunBackwardArgsTest {
    @TempDir
    Path tmp;

    private Path q;
    private Path k;
    private Path v;

    /** Q [1, 2, 16, 8] and K, V [1, 2, 24, 8] as peers.py saves them (float32, BHSD). */
    @BeforeEach
    void inputs() throws IOException {
        q = npy("q.npy", 1, 2, 16, 8);
        k = npy("k.npy", 1, 2, 24, 8);
        v = npy("v.npy", 1, 2, 24, 8);
    }

    private Path npy(String name, long... shape) throws IOException {
        float[] x = new float[(int) Arrays.stream(shape).reduce(1, (a, b) -> a * b)];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) Math.sin(i);
        }
        Path f = tmp.resolve(name);
        Npy.writeFloats(f, shape, x);
        return f;
    }

    private Cli.Result run(String... args) {
        return Cli.run(Cli.knobs(tmp.resolve("cache")), Stream.concat(Stream.of("run"), Arrays.stream(args))
                .toArray(String[]::new));
    }

    private List<String> files(String... more) {
        return Stream.concat(Stream.of("--q", q.toString(), "--k", k.toString(), "--v", v.toString()),
                Arrays.stream(more)).toList();
    }

    private void refused(String expected, String... args) {
        var r = run(args);
        assertEquals(2, r.code(), r.out() + r.err());
        assertTrue(r.err().contains(expected), r.err());
        assertTrue(!r.err().contains("no GPU"), "refused before the GPU is looked for: " + r.err());
    }

    @Test
    void filesNeedAGradient() {
        refused("needs --do", files("--backward").toArray(String[]::new));
    }

    @Test
    void aGradientNeedsBackward() {
        refused("add --backward or drop --do", files("--do", q.toString()).toArray(String[]::new));
    }

    @Test
    void aGradientNotShapedLikeQIsRefused() {
        refused("dO must be shaped like Q, [1, 2, 16, 8]", files("--backward", "--do", k.toString())
                .toArray(String[]::new));
    }

    @Test
    void onlyTrainablePrecisionsAndCompleteReferences() {
        refused("--backward runs bf16, fp16, sagebwd or sagebwd-fp16, not int8-fp8", "--backward", "--shape", "1x2x64x64", "--precision",
                "int8-fp8");
        refused("--check-rows does not apply to --backward", "--backward", "--shape", "1x2x64x64", "--check-rows", "8");
        refused("sagejit bench --direction bwd", "--backward", "--shape", "1x2x64x64", "--time");
        refused("check a smaller problem", "--backward", "--shape", "4x32x4096x128");
    }

    @Test
    void withoutAGpuAValidRequestGetsAsFarAsOpeningIt() {
        Assumptions.assumeFalse(CudaDriver.available(), "this machine has a GPU");
        for (var args : List.of(files("--backward", "--do", q.toString(), "--precision", "fp16", "--causal"),
                List.of("--backward", "--shape", "1x2x64x64", "--precision", "auto"))) {
            var r = run(args.toArray(String[]::new));
            assertEquals(2, r.code(), r.out() + r.err());
            assertTrue(r.err().contains("no GPU"), r.err());
        }
    }
}
