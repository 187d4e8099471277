package dev.sagejit.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Precision names as the CLI and results files use them, and which family each mode belongs to. */
class PrecisionTest {
    @Test
    void parsesIdsAndEnumNames() {
        for (Precision p : Precision.values()) {
            assertEquals(p, Precision.parse(p.id()));
            assertEquals(p, Precision.parse(p.name().toLowerCase(java.util.Locale.ROOT)));
        }
        var e = assertThrows(IllegalArgumentException.class, () -> Precision.parse("fp4"));
        assertTrue(e.getMessage().contains("nvfp4-emulated"), e.getMessage());
    }

    @Test
    void familiesDoNotOverlap() {
        assertTrue(Precision.NVFP4.nvfp4() && Precision.NVFP4_EMULATED.nvfp4());
        assertFalse(Precision.NVFP4.quantized(), "quantized() is the int8-fp8 kernel family only");
        assertTrue(Precision.INT8_FP8.quantized() && !Precision.INT8_FP8.nvfp4());
        assertFalse(Precision.BF16.quantized() || Precision.BF16.nvfp4());
        assertEquals("nvfp4emulated", Precision.NVFP4_EMULATED.keyId());
    }

    @Test
    void autoPicksTheFastestAccurateModeOfTheGpu() {
        var sm90 = dev.sagejit.spec.Arch.SM90A;
        assertEquals(Precision.INT8_FP8, sm90.resolve(Precision.AUTO, DType.BF16));
        assertEquals(Precision.INT8_FP8_FP16, sm90.resolve(Precision.AUTO, DType.FP16));
        assertEquals(Precision.INT8_FP8, dev.sagejit.spec.Arch.SM120A.resolve(Precision.AUTO, DType.BF16),
                "NVFP4 is never chosen automatically (lower accuracy)");
        assertEquals(Precision.BF16, dev.sagejit.spec.Arch.SM80.resolve(Precision.AUTO, DType.BF16), "no FP8 MMA");
        assertEquals(Precision.FP16, dev.sagejit.spec.Arch.SM80.resolve(Precision.AUTO, DType.FP16));
        assertEquals(Precision.FP16, sm90.resolve(Precision.FP16, DType.BF16), "a concrete mode stays itself");
        assertEquals(Precision.AUTO, Precision.parse("auto"));
    }

    @Test
    void autoResolvesInsideTheProblem() {
        var t = dev.sagejit.api.DeviceTensor.contiguous(0x7f0000000000L, DType.FP16, Layout.BHSD, 1, 2, 64, 64);
        var p = new dev.sagejit.kernel.FwdProblem(AttentionOptions.builder().precision(Precision.AUTO).build(), t, t, t,
                t, 0L);
        assertEquals(Precision.INT8_FP8_FP16, p.resolved(dev.sagejit.spec.Arch.SM90A).options().precision());
    }
}
