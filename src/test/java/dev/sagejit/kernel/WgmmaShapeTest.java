package dev.sagejit.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** The wgmma shapes' operand types and immediates (PTX: scale-a, scale-b, then the transpose flags). */
class WgmmaShapeTest {
    @Test
    void sixteenBitShapesCarryTheirTransposeFlags() {
        var ss = WgmmaShape.sixteenBit("s", "both from shared memory", 64, "bf16", false, false);
        assertEquals(", 1, 1, 0, 0", ss.immSuffix(), "A and B K-major");
        assertEquals(16, ss.k());
        assertEquals("f32", ss.dtype());
        var rsMn = WgmmaShape.sixteenBit("pv", "A from registers", 128, "f16", true, true);
        assertEquals(", 1, 1, 1", rsMn.immSuffix(), "no A flag from registers; B N-major");
        assertEquals(", 1, 1, 0", WgmmaShape.sixteenBit("pv", "", 128, "f16", true, false).immSuffix());
        var int8 = WgmmaShape.int8("qk", "", 64, false);
        assertEquals(32, int8.k());
        assertEquals("", int8.immSuffix());
        assertEquals("r", int8.model().get("accConstraint"));
    }
}
