package dev.sagejit.compile;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Parses program logs captured from NVRTC 12.9 and 13.0 (--ptxas-options=-v). */
class PtxasReportTest {
    /** NVRTC 13.0, Kernels.spiller() for sm_120a with --maxrregcount=32. */
    static final String SPILLING_13_0 = """
            ptxas info    : Overriding maximum register limit 256 for 'spiller' with  32 of maxrregcount option
            ptxas info    : 0 bytes gmem
            ptxas info    : Compiling entry function 'spiller' for 'sm_120a'
            ptxas info    : Function properties for spiller
            ptxas         .     544 bytes stack frame, 652 bytes spill stores, 684 bytes spill loads
            ptxas info    : Used 32 registers, used 1 barriers, 544 bytes cumulative stack size, 16384 bytes smem
            ptxas info    : Compile time = 24.710 ms
            """;

    /** NVRTC 12.9, two kernels in one program, the second spilling (sm_90a, --maxrregcount=32). */
    static final String TWO_KERNELS_12_9 = """
            ptxas info    : Overriding maximum register limit 256 for 'k2' with  32 of maxrregcount option
            ptxas info    : Overriding maximum register limit 256 for 'k' with  32 of maxrregcount option
            ptxas info    : 0 bytes gmem
            ptxas info    : Compiling entry function 'k2' for 'sm_90a'
            ptxas info    : Function properties for k2
            ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
            ptxas info    : Used 8 registers, used 0 barriers
            ptxas info    : Compile time = 1.935 ms
            ptxas info    : Compiling entry function 'k' for 'sm_90a'
            ptxas info    : Function properties for k
            ptxas         .     400 bytes stack frame, 828 bytes spill stores, 896 bytes spill loads
            ptxas info    : Used 32 registers, used 1 barriers, 400 bytes cumulative stack size, 16384 bytes smem
            ptxas info    : Compile time = 39.727 ms
            """;

    /** Older ptxas (11.x) style, which also printed constant bank 0. */
    static final String OLD_STYLE = """
            ptxas info    : 0 bytes gmem
            ptxas info    : Compiling entry function 'attn' for 'sm_80'
            ptxas info    : Function properties for attn
                0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
            ptxas info    : Used 96 registers, 32768 bytes smem, 380 bytes cmem[0]
            """;

    @Test
    void parsesSpillingKernel() {
        var r = PtxasReport.parse(SPILLING_13_0, "spiller");
        assertEquals(new PtxasReport(32, 652, 684, 16384, 544, 0), r);
        assertTrue(r.spills());
        assertEquals("32 regs, 652 spill, 16384 B smem", r.summary());
    }

    @Test
    void picksTheSectionOfTheEntry() {
        assertEquals(new PtxasReport(8, 0, 0, 0, 0, 0), PtxasReport.parse(TWO_KERNELS_12_9, "k2"));
        assertEquals(new PtxasReport(32, 828, 896, 16384, 400, 0), PtxasReport.parse(TWO_KERNELS_12_9, "k"));
    }

    @Test
    void unknownEntryFallsBackToFirstSection() {
        assertEquals(8, PtxasReport.parse(TWO_KERNELS_12_9, "_Z6mangledv").registers());
    }

    @Test
    void readsConstantBankWhenPrinted() {
        var r = PtxasReport.parse(OLD_STYLE, "attn");
        assertEquals(new PtxasReport(96, 0, 0, 32768, 0, 380), r);
        assertFalse(r.spills());
        assertEquals("96 regs, 0 spill, 32768 B smem", r.summary());
    }

    @Test
    void logWithoutReportIsNone() {
        assertEquals(PtxasReport.NONE, PtxasReport.parse("", "k"));
        assertEquals(PtxasReport.NONE, PtxasReport.parse(null, "k"));
        assertEquals(PtxasReport.NONE, PtxasReport.parse("warning: something unrelated\n", "k"));
    }
}
