package dev.sagejit.reference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Checks shared by the emulations' tests of rows that see no key. */
final class MaskedRowAsserts {
    private MaskedRowAsserts() {
    }

    /**
     * In a [heads, nq, d] output (batch 1), rows before {@code firstSeeing} see no key: O = 0 and
     * LSE = -inf; the other rows have a finite LSE.
     */
    static void assertRowsWithoutKeys(Sage2Reference.Output out, int heads, int nq, int d, int firstSeeing) {
        for (int h = 0; h < heads; h++) {
            for (int i = 0; i < nq; i++) {
                float lse = out.lse()[h * nq + i];
                if (i < firstSeeing) {
                    assertEquals(Float.NEGATIVE_INFINITY, lse);
                    for (int c = 0; c < d; c++) {
                        assertEquals(0f, out.o()[(h * nq + i) * d + c]);
                    }
                } else {
                    assertTrue(Float.isFinite(lse));
                }
            }
        }
    }
}
