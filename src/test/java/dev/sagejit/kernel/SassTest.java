package dev.sagejit.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sagejit.api.Precision;
import dev.sagejit.codegen.TemplateRenderer;
import dev.sagejit.compile.CompileOptions;
import dev.sagejit.compile.Disassembler;
import dev.sagejit.compile.KernelCache;
import dev.sagejit.compile.KernelCompiler;
import dev.sagejit.compile.NvrtcBackends;
import dev.sagejit.spec.Arch;
import dev.sagejit.spec.Direction;
import dev.sagejit.spec.KernelSpec;
import dev.sagejit.util.Knobs;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The instructions the default sm_90a kernels compile to, read from their SASS with NVIDIA's
 * cuobjdump (no GPU): the int8-fp8 kernel's Q K^T and P V run on wgmma (IGMMA, QGMMA) and never on
 * the older IMMA/HMMA paths; the BF16 kernel's on HGMMA. Skipped without NVRTC and cuobjdump, unless
 * {@code -Dsagejit.test.require-nvrtc=true} (scripts/test.sh provisions both).
 */
class SassTest {
    @TempDir
    Path cache;

    private Map<String, Integer> opcodesOf(Precision precision, int headDim, boolean causal) {
        var tools = SassTools.require(cache, Arch.SM90A);
        Knobs knobs = tools.knobs();
        var spec = new KernelSpec(Direction.FWD, Arch.SM90A, precision, headDim, causal, false);
        var plan = FwdKernelPlan.ofDefault(spec);
        var compiler = new KernelCompiler(knobs, NvrtcBackends.preferred(knobs, Arch.SM90A), new KernelCache(knobs));
        var compiled = compiler.compile(KernelLoader.source(new TemplateRenderer(), plan), CompileOptions.cubin(Arch.SM90A));
        return Disassembler.opcodes(tools.disassembler().sass(compiled.image()));
    }

    @Test
    void int8Fp8KernelsRunBothProductsOnWgmma() {
        for (int d : new int[] {64, 128}) {
            for (boolean causal : new boolean[] {false, true}) {
                var ops = opcodesOf(Precision.INT8_FP8, d, causal);
                String what = "int8-fp8 d" + d + (causal ? " causal" : "") + ": " + ops;
                assertTrue(ops.getOrDefault("IGMMA", 0) >= d / 32, "Q K^T on IGMMA, " + what);
                assertTrue(ops.getOrDefault("QGMMA", 0) >= 4, "P V on QGMMA, " + what);
                assertEquals(0, ops.getOrDefault("IMMA", 0) + ops.getOrDefault("HMMA", 0) + ops.getOrDefault("QMMA", 0),
                        "no mma.sync paths, " + what);
            }
        }
    }

    @Test
    void bf16KernelRunsOnHgmma() {
        var ops = opcodesOf(Precision.BF16, 128, false);
        assertTrue(ops.getOrDefault("HGMMA", 0) >= 8, ops.toString());
        assertEquals(0, ops.getOrDefault("HMMA", 0), ops.toString());
    }
}
