package dev.sagejit.compile;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sagejit.api.SageException;
import dev.sagejit.spec.Arch;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.Arrays;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/** Real NVRTC compiles through every binding: JCuda on .so.12, FFM on .so.13 and on .so.12. */
class NvrtcBackendTest {
    private static final byte[] ELF_MAGIC = {0x7f, 'E', 'L', 'F'};

    @ParameterizedTest(name = "{0} {1}")
    @CsvSource({"jcuda12, sm_90a", "jcuda12, sm_120a", "ffm13, sm_90a", "ffm13, sm_120a", "ffm12, sm_90a",
            "ffm12, sm_120a"})
    void compilesInlinePtxKernelToCubin(String binding, String archName) {
        Nvrtc nvrtc = TestNvrtcs.named(binding);
        Arch arch = Arch.parse(archName);
        assertTrue(nvrtc.supports(arch), nvrtc + " should support " + arch.name() + ": " + nvrtc.supportedArchs());

        CompiledKernel k = nvrtc.compile(Kernels.mmaProbe("mma_probe_" + arch.id()), CompileOptions.cubin(arch));

        assertArrayEquals(ELF_MAGIC, Arrays.copyOf(k.image(), 4), "CUBIN must be an ELF image");
        assertTrue(k.report().registers() > 0, "ptxas report parsed from:\n" + k.log());
        assertFalse(k.report().spills(), k.report().summary());
        assertTrue(k.log().contains("mma_probe"), k.log());
        assertEquals(binding.startsWith("jcuda") ? "jcuda" : "ffm", nvrtc.backend());
        assertEquals(binding.endsWith("13") ? "13" : "12", nvrtc.version().split("\\.")[0]);
        assertFalse(k.fromCache());
        assertEquals("mma_probe", k.entry());
    }

    @ParameterizedTest
    @ValueSource(strings = {"jcuda12", "ffm13"})
    void compilesPtxForTheVirtualArch(String binding) {
        Nvrtc nvrtc = TestNvrtcs.named(binding);
        CompiledKernel k = nvrtc.compile(Kernels.mmaProbe("mma_probe_ptx"), CompileOptions.ptx(Arch.SM90A));
        String ptx = new String(k.image(), StandardCharsets.UTF_8);
        assertTrue(ptx.contains(".target sm_90a"), ptx.substring(0, Math.min(400, ptx.length())));
        assertTrue(ptx.contains("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32"));
        assertFalse(ptx.contains("\0"), "PTX must not carry NVRTC's trailing NUL");
        assertEquals(PtxasReport.NONE, k.report());
    }

    @ParameterizedTest
    @ValueSource(strings = {"jcuda12", "ffm13"})
    void reportsSpillsUnderARegisterCap(String binding) {
        Nvrtc nvrtc = TestNvrtcs.named(binding);
        var opts = CompileOptions.cubin(Arch.SM90A).withFlags("--maxrregcount=32");
        CompiledKernel k = nvrtc.compile(Kernels.spiller(), opts);
        assertTrue(k.report().spills(), k.log());
        assertEquals(32, k.report().registers(), k.log());
        assertEquals(16384, k.report().sharedBytes(), k.log());
        assertTrue(k.report().stackFrameBytes() > 0, k.log());
    }

    @ParameterizedTest
    @ValueSource(strings = {"jcuda12", "ffm13"})
    void brokenKernelRaisesCompileWithLogOptionsAndDump(String binding) throws Exception {
        Nvrtc nvrtc = TestNvrtcs.named(binding);
        var opts = CompileOptions.cubin(Arch.SM90A);
        var e = assertThrows(SageException.Compile.class, () -> nvrtc.compile(Kernels.broken(), opts));
        assertTrue(e.log().contains("not_declared_anywhere"), e.log());
        assertEquals(opts.nvrtcArgs(), e.options());
        assertTrue(Files.isRegularFile(e.dumpedSource()), "dumped source " + e.dumpedSource());
        assertEquals(Kernels.broken().code(), Files.readString(e.dumpedSource()));
        assertTrue(e.getMessage().contains(e.dumpedSource().toString()));
    }

    @ParameterizedTest
    @ValueSource(strings = {"jcuda12", "ffm13"})
    void listsSupportedArchs(String binding) {
        Nvrtc nvrtc = TestNvrtcs.named(binding);
        assertTrue(nvrtc.supportedArchs().containsAll(Arch.ALL), nvrtc.supportedArchs().toString());
    }

    @ParameterizedTest
    @ValueSource(strings = {"jcuda12", "ffm13"})
    void compilesFromManyThreadsAtOnce(String binding) throws Exception {
        Nvrtc nvrtc = TestNvrtcs.named(binding);
        try (var pool = java.util.concurrent.Executors.newFixedThreadPool(4)) {
            var futures = new java.util.ArrayList<java.util.concurrent.Future<CompiledKernel>>();
            for (int i = 0; i < 6; i++) {
                int n = i;
                futures.add(pool.submit(() -> nvrtc.compile(Kernels.mmaProbe("t" + n), CompileOptions.cubin(Arch.SM90A))));
            }
            for (var f : futures) {
                assertArrayEquals(ELF_MAGIC, Arrays.copyOf(f.get().image(), 4));
            }
        }
    }
}
