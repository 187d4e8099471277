package dev.sagejit.spec;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class Exp2PolyTest {
    @Test
    void staysWithinItsBoundAcrossP8Range() {
        double worst = 0;
        for (float x = -40f; x <= 9f; x += 0.00137f) {
            double exact = Math.pow(2.0, x);
            worst = Math.max(worst, Math.abs(Int8Fp8Layout.exp2Poly(x) - exact) / exact);
        }
        assertTrue(worst < 8e-5, "max relative error " + worst);
    }

    @Test
    void edgeValues() {
        assertTrue(Int8Fp8Layout.exp2Poly(Float.NEGATIVE_INFINITY) < 1e-37f && Int8Fp8Layout.exp2Poly(Float.NEGATIVE_INFINITY) > 0f, "-inf gives (about) 2^-125");
        assertTrue(Int8Fp8Layout.exp2Poly(-1000f) < 1e-37f);
        assertTrue(Float.isNaN(Int8Fp8Layout.exp2Poly(Float.NaN)));
        assertEquals(448f, Int8Fp8Layout.exp2Poly((float) Int8Fp8Layout.LOG2_FP8_MAX), 448f * 8e-5f);
    }

    @Test
    void theLastTileOfEveryPeriodTakesThePolynomial() {
        int period = 8 * Int8Fp8Layout.EXP2_POLY_PERIOD;
        int poly = 0;
        for (int j = 0; j < 128; j++) {
            if (Int8Fp8Layout.polyExp2Key(j)) {
                poly++;
                assertTrue(j % period >= period - 8, "key " + j);
            }
        }
        assertEquals(128 / Int8Fp8Layout.EXP2_POLY_PERIOD, poly);
        assertFalse(Int8Fp8Layout.polyExp2Key(0));
    }
}
