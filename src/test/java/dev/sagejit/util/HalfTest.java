package dev.sagejit.util;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.sagejit.api.DType;
import org.junit.jupiter.api.Test;

class HalfTest {

    private static short bf16(int floatBits) {
        return Half.floatToBf16(Float.intBitsToFloat(floatBits));
    }

    @Test
    void bf16KnownPatterns() {
        assertEquals((short) 0x3F80, Half.floatToBf16(1.0f));
        assertEquals((short) 0xC020, Half.floatToBf16(-2.5f));
        assertEquals((short) 0x0000, Half.floatToBf16(0.0f));
        assertEquals((short) 0x8000, Half.floatToBf16(-0.0f));
        assertEquals((short) 0x7F80, Half.floatToBf16(Float.POSITIVE_INFINITY));
        assertEquals((short) 0xFF80, Half.floatToBf16(Float.NEGATIVE_INFINITY));
        assertEquals((short) 0x7F80, Half.floatToBf16(Float.MAX_VALUE)); // rounds up past the largest bf16
    }

    @Test
    void bf16RoundsToNearestEven() {
        assertEquals((short) 0x3F80, bf16(0x3F808000)); // tie, even stays
        assertEquals((short) 0x3F82, bf16(0x3F818000)); // tie, odd rounds up to even
        assertEquals((short) 0x3F81, bf16(0x3F808001)); // just above the tie
        assertEquals((short) 0x3F80, bf16(0x3F807FFF)); // just below the tie
        assertEquals((short) 0x0002, bf16(0x00018000)); // subnormal tie, odd rounds up
        assertEquals((short) 0x0000, bf16(0x00008000));
    }

    @Test
    void bf16NanStaysQuietNan() {
        for (int bits : new int[] {0x7F800001, 0x7FC00000, 0xFF800001, 0x7FFFFFFF, 0x7F80FFFF}) {
            short h = bf16(bits);
            assertTrue(Float.isNaN(Half.bf16ToFloat(h)), Integer.toHexString(bits));
            assertEquals(0x0040, h & 0x0040, "quiet bit");
            assertEquals(bits >>> 31, (h & 0xFFFF) >>> 15, "sign");
        }
    }

    @Test
    void fp16KnownPatterns() {
        assertEquals((short) 0x3C00, Half.floatToFp16(1.0f));
        assertEquals((short) 0xC100, Half.floatToFp16(-2.5f));
        assertEquals((short) 0x7BFF, Half.floatToFp16(65504f));
        assertEquals((short) 0x7BFF, Half.floatToFp16(65519f));
        assertEquals((short) 0x7C00, Half.floatToFp16(65520f)); // tie at the top rounds to infinity
        assertEquals((short) 0xFC00, Half.floatToFp16(-1e6f));
        assertEquals((short) 0x0001, Half.floatToFp16(0x1p-24f)); // smallest subnormal
        assertEquals((short) 0x0000, Half.floatToFp16(0x1p-25f)); // tie to even zero
        assertEquals((short) 0x0001, Half.floatToFp16(0x1.8p-25f));
        assertEquals((short) 0x0002, Half.floatToFp16(0x1.8p-24f)); // tie 1.5 ulp -> 2
        assertEquals((short) 0x0400, Half.floatToFp16(0x1p-14f)); // smallest normal
        assertEquals(0x1p-24f, Half.fp16ToFloat((short) 0x0001));
        assertEquals(65504f, Half.fp16ToFloat((short) 0x7BFF));
        assertTrue(Float.isNaN(Half.fp16ToFloat(Half.floatToFp16(Float.NaN))));
    }

    @Test
    void everyBitPatternRoundTrips() {
        for (int i = 0; i < 65536; i++) {
            short bits = (short) i;
            float b = Half.bf16ToFloat(bits);
            float f = Half.fp16ToFloat(bits);
            if (Float.isNaN(b)) {
                assertTrue(Float.isNaN(Half.bf16ToFloat(Half.floatToBf16(b))));
            } else {
                if (Half.floatToBf16(b) != bits) {
                    fail("bf16 0x" + Integer.toHexString(i));
                }
            }
            if (Float.isNaN(f)) {
                assertTrue(Float.isNaN(Half.fp16ToFloat(Half.floatToFp16(f))));
            } else {
                if (Half.floatToFp16(f) != bits) {
                    fail("fp16 0x" + Integer.toHexString(i));
                }
            }
        }
    }

    @Test
    void arrayVersionsMatchScalars() {
        float[] x = {1.0f, -2.5f, 3.14159f, 1e-7f, 70000f, Float.NaN};
        for (DType t : new DType[] {DType.BF16, DType.FP16}) {
            short[] bits = Half.toBits(x, t);
            float[] back = Half.fromBits(bits, t);
            for (int i = 0; i < x.length; i++) {
                assertEquals(Half.toBits(x[i], t), bits[i]);
                assertEquals(Half.fromBits(bits[i], t), back[i]);
            }
            assertArrayEquals(back, Half.round(x, t));
        }
        assertThrows(IllegalArgumentException.class, () -> Half.toBits(x, DType.FP32));
        assertArrayEquals(x, Half.round(x, DType.FP32));
    }
}
