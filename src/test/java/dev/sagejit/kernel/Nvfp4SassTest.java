package dev.sagejit.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sagejit.api.DType;
import dev.sagejit.codegen.TemplateRenderer;
import dev.sagejit.compile.CompileOptions;
import dev.sagejit.compile.Disassembler;
import dev.sagejit.compile.KernelCache;
import dev.sagejit.compile.KernelCompiler;
import dev.sagejit.compile.NvrtcBackends;
import dev.sagejit.spec.Arch;
import dev.sagejit.util.Knobs;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The NVFP4 attention kernel for sm_120a compiles through every NVRTC that targets sm_120a, and its
 * Q K^T and P V steps are the block-scaled FP4 MMA in SASS (OMMA with scale factors), with no
 * spills. No GPU needed (none of sm_120a is available to run it).
 */
class Nvfp4SassTest {
    @TempDir
    Path cache;

    @Test
    void everyVariantCompilesForSm120aToBlockScaledFp4Mma() throws Exception {
        var tools = SassTools.require(cache, Arch.SM120A);
        Knobs knobs = tools.knobs();
        var nvrtcs = NvrtcBackends.available(knobs).stream().filter(n -> n.supports(Arch.SM120A)).toList();
        var renderer = new TemplateRenderer();
        int variants = 0;
        for (var nvrtc : nvrtcs) {
            var compiler = new KernelCompiler(knobs, nvrtc, new KernelCache(knobs));
            for (var out : new DType[] {DType.BF16, DType.FP16}) {
                for (int d : new int[] {64, 128}) {
                    for (boolean causal : new boolean[] {false, true}) {
                        for (boolean lse : new boolean[] {false, true}) {
                            var plan = new Nvfp4FwdPlan(Arch.SM120A, out, d, causal, lse);
                            var compiled = compiler.compile(KernelLoader.source(renderer, plan),
                                    CompileOptions.cubin(Arch.SM120A));
                            String sass = tools.disassembler().sass(compiled.image());
                            var ops = Disassembler.opcodes(sass);
                            String what = plan.key() + " via " + nvrtc + ": " + ops;
                            // Q K^T: d/64 k-steps x 8 n-tiles; P V: d/8 n-tiles (unrolled once per loop).
                            long scaled = sass.lines().filter(l -> l.contains("OMMA") && l.contains(".SF")).count();
                            assertTrue(scaled >= d / 64 * 8 + d / 8, "block-scaled FP4 MMAs: " + scaled + ", " + what);
                            assertEquals(0, ops.getOrDefault("HMMA", 0) + ops.getOrDefault("IMMA", 0), what);
                            assertEquals(0, compiled.report().spillStoreBytes() + compiled.report().spillLoadBytes(),
                                    "no spills, " + what);
                            if (variants == 0) {
                                Files.writeString(Path.of("target", "nvfp4-sm120a-sample.sass.txt"), sass);
                            }
                            variants++;
                        }
                    }
                }
            }
        }
        assertEquals(16 * nvrtcs.size(), variants);
    }

    @Test
    void theEmulatedKernelCompilesForSm90aTo16BitMmas() {
        var tools = SassTools.require(cache, Arch.SM90A);
        Knobs knobs = tools.knobs();
        var plan = new Nvfp4FwdPlan(Arch.SM90A, DType.BF16, 128, true, true);
        assertTrue(plan.emulated());
        var compiler = new KernelCompiler(knobs, NvrtcBackends.preferred(knobs, Arch.SM90A), new KernelCache(knobs));
        var compiled = compiler.compile(KernelLoader.source(new TemplateRenderer(), plan), CompileOptions.cubin(Arch.SM90A));
        var ops = Disassembler.opcodes(tools.disassembler().sass(compiled.image()));
        // Each FP4 MMA becomes four m16n8k16 MMAs: (d/64 x 8 for Q K^T + d/8 for P V) x 4.
        assertTrue(ops.getOrDefault("HMMA", 0) >= 4 * (128 / 64 * 8 + 128 / 8), ops.toString());
        assertEquals(0, ops.getOrDefault("OMMA", 0), ops.toString());
    }
}
