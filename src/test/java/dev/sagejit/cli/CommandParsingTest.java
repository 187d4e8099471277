package dev.sagejit.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sagejit.api.Layout;
import dev.sagejit.api.Precision;
import dev.sagejit.spec.Arch;
import dev.sagejit.util.Knobs;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** Option parsing of every command, without running any of them. */
class CommandParsingTest {
    @TempDir
    Path tmp;

    private CommandLine cli() {
        var cl = new CommandLine(new Main(Knobs.from(Map.of(), new Properties()).withCacheDir(tmp)));
        cl.setCaseInsensitiveEnumValuesAllowed(true);
        return cl;
    }

    private <T> T sub(CommandLine.ParseResult r, Class<T> type) {
        return type.cast(r.subcommand().commandSpec().userObject());
    }

    @Test
    void compileSingleSpec() {
        var r = cli().parseArgs("compile", "--precision", "fp16", "--head-dim", "64", "--causal", "--lse",
                "--tiles", "m128n64w4s2", "--arch", "sm_90a,sm_120a", "--backend", "all", "--ptx", "--jobs", "3",
                "--emit-dir", "out");
        var c = sub(r, CompileCommand.class);
        assertEquals(Precision.FP16, c.precision);
        assertEquals(64, c.headDim);
        assertTrue(c.causal && c.lse && c.ptx);
        assertEquals("m128n64w4s2", c.tiles);
        assertEquals(List.of(Arch.SM90A, Arch.SM120A), c.archs);
        assertEquals(NvrtcChoice.ALL, c.backend);
        assertEquals(3, c.jobs);
        assertEquals(Path.of("out"), c.emitDir);
    }

    @Test
    void compileDefaults() {
        var c = sub(cli().parseArgs("compile", "--all"), CompileCommand.class);
        assertTrue(c.all);
        assertFalse(c.allTiles);
        assertEquals(List.of(Arch.SM90A), c.archs);
        assertEquals(NvrtcChoice.AUTO, c.backend);
        assertEquals(Precision.BF16, c.precision);
        assertTrue(c.jobs >= 1);
    }

    @Test
    void badValuesAreUsageErrors() {
        assertThrows(CommandLine.ParameterException.class, () -> cli().parseArgs("compile", "--arch", "sm_99"));
        assertThrows(CommandLine.ParameterException.class, () -> cli().parseArgs("compile", "--tiles", "big"));
        assertThrows(CommandLine.ParameterException.class, () -> cli().parseArgs("run", "--shape", "1x1x8x64",
                "--precision", "int4"));
        assertThrows(CommandLine.ParameterException.class, () -> cli().parseArgs("run"));
        assertThrows(CommandLine.ParameterException.class, () -> cli().parseArgs("run", "--shape", "1x1x8x64",
                "--q", "q.npy", "--k", "k.npy", "--v", "v.npy"));
    }

    @Test
    void runWithShape() {
        var c = sub(cli().parseArgs("run", "--shape", "2x8x2x128x256x64", "--inputs", "peaky", "--seed", "7",
                "--precision", "fp16", "--causal", "--scale", "0.5", "--lse", "--tiles", "m64n64w4s2", "--layout",
                "bshd", "--check-rows", "32", "--tolerance", "0.02", "--time", "--out-o", "o.npy", "--out-lse",
                "lse.npy"), RunCommand.class);
        assertEquals("2x8x2x128x256x64", c.source.shape);
        assertNull(c.source.files);
        assertEquals("peaky", c.family);
        assertEquals(7, c.seed);
        assertEquals(Precision.FP16, c.precision);
        assertEquals(Layout.BSHD, c.layout);
        assertEquals(0.5, c.scale);
        assertEquals(32, c.checkRows);
        assertEquals(0.02, c.tolerance);
        assertTrue(c.causal && c.lse && c.time);
        assertEquals(Path.of("lse.npy"), c.outLse);
    }

    @Test
    void runWithFiles() {
        var c = sub(cli().parseArgs("run", "--q", "q.npy", "--k", "k.npy", "--v", "v.npy"), RunCommand.class);
        assertNull(c.source.shape);
        assertEquals(Path.of("k.npy"), c.source.files.k);
        assertEquals(Layout.BHSD, c.layout);
        assertNull(c.checkRows);
        assertNull(c.source.files.dO);
        assertFalse(c.backward);
        var b = sub(cli().parseArgs("run", "--q", "q.npy", "--k", "k.npy", "--v", "v.npy", "--do", "do.npy",
                "--backward"), RunCommand.class);
        assertEquals(Path.of("do.npy"), b.source.files.dO);
        assertTrue(b.backward);
    }

    @Test
    void bench() {
        var c = sub(cli().parseArgs("bench", "--shapes", "4x32x4096x128,1x8x2x1024x64", "--causal", "1",
                "--precision", "fp16", "--tiles", "all", "--run", "r1", "--commit", "abc", "--out", "x.jsonl",
                "--min-ms", "50"), BenchCommand.class);
        assertEquals(List.of("4x32x4096x128", "1x8x2x1024x64"), c.grid.shapes);
        assertEquals("1", c.grid.causal);
        assertEquals(List.of(Precision.FP16), c.precisions);
        assertEquals("all", c.tiles);
        assertEquals("r1", c.stamp.run);
        assertEquals("abc", c.stamp.commit);
        assertEquals(Path.of("x.jsonl"), c.outFile);
        assertEquals(50.0, c.minMs);
        var d = sub(cli().parseArgs("bench"), BenchCommand.class);
        assertEquals(List.of(Precision.BF16, Precision.FP16), d.precisions);
        assertEquals("both", d.grid.causal);
        assertNull(d.stamp.commit);
    }

    @Test
    void infoAndCache() {
        assertEquals("info", cli().parseArgs("info").subcommand().commandSpec().name());
        var r = cli().parseArgs("cache", "clear");
        assertEquals("clear", r.subcommand().subcommand().commandSpec().name());
    }

    @Test
    void unknownCommandExitsTwo() {
        var r = Cli.run(Knobs.from(Map.of(), new Properties()).withCacheDir(tmp), "frobnicate");
        assertEquals(2, r.code());
        var none = Cli.run(Knobs.from(Map.of(), new Properties()).withCacheDir(tmp));
        assertEquals(2, none.code());
    }
}
