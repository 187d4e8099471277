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
}
