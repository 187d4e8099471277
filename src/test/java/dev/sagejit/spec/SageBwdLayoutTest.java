package dev.sagejit.spec;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Arrays;
import org.junit.jupiter.api.Test;

/** The token orders of SageBwd's transposed INT8 copies against the MMA fragment maps they serve. */
class SageBwdLayoutTest {
    @Test
    void ordersArePermutationsOfEverySixteenTokens() {
        for (var order : SageBwdLayout.Order.values()) {
            int[] seen = new int[2 * SageBwdLayout.PERM_PERIOD];
            for (int p = 0; p < seen.length; p++) {
                seen[order.token(p)]++;
                assertEquals(p / SageBwdLayout.PERM_PERIOD, order.token(p) / SageBwdLayout.PERM_PERIOD,
                        order + " moves a token out of its 16");
            }
            int[] ones = new int[seen.length];
            Arrays.fill(ones, 1);
            assertArrayEquals(ones, seen, order + " is not a permutation");
        }
    }

    /**
     * COLUMNS: an m16n8k32 A register of lane t holds k = 4t..4t+3, packed from the accumulator columns
     * {2t, 2t+1} of n8 tile 0 and {2t, 2t+1} of tile 1 (the int8-fp8 V^T order).
     */
    @Test
    void columnsOrderMatchesTheAccumulatorToAFragmentPacking() {
        for (int t = 0; t < 4; t++) {
            int[] want = {2 * t, 2 * t + 1, 8 + 2 * t, 9 + 2 * t};
            for (int i = 0; i < 4; i++) {
                assertEquals(want[i], SageBwdLayout.Order.COLUMNS.token(4 * t + i));
            }
        }
        for (int p = 0; p < 64; p++) {
            assertEquals(Int8Fp8Layout.vToken(p), SageBwdLayout.Order.COLUMNS.token(p));
        }
    }

    /** ROWS: dS^T's rows g and g + 8 (keys) are stored side by side, at positions 2g and 2g + 1. */
    @Test
    void rowsOrderPairsKeysGAndGPlusEight() {
        for (int g = 0; g < 8; g++) {
            assertEquals(g, SageBwdLayout.Order.ROWS.token(2 * g));
            assertEquals(g + 8, SageBwdLayout.Order.ROWS.token(2 * g + 1));
        }
    }

    @Test
    void blocksAndPadding() {
        assertEquals(0, SageBwdLayout.blocks(0));
        assertEquals(1, SageBwdLayout.blocks(1));
        assertEquals(2, SageBwdLayout.blocks(65));
        assertEquals(128, SageBwdLayout.padded(100));
        assertEquals(64, SageBwdLayout.padded(64));
    }
}
