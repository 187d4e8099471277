package dev.sagejit.reference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class AttentionProblemTest {

    @Test
    void validatesWithMessagesThatNameTheProblem() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new AttentionProblem(1, 6, 4, 8, 8, 64, false));
        assertTrue(e.getMessage().contains("multiple"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new AttentionProblem(1, 4, 4, 0, 8, 64, false));
        assertTrue(e.getMessage().startsWith("nq"), e.getMessage());
        assertThrows(IllegalArgumentException.class,
                () -> new AttentionProblem(1, 4, 4, 8, 8, 64, false, Double.POSITIVE_INFINITY));
        assertThrows(IllegalArgumentException.class, () -> new AttentionProblem(0, 4, 4, 8, 8, 64, false));
    }

    @Test
    void scaleFlopsAndHeads() {
        AttentionProblem p = new AttentionProblem(2, 32, 8, 1024, 2048, 128, false);
        assertEquals(1 / Math.sqrt(128), p.effectiveScale(), 0);
        assertEquals(0.5, new AttentionProblem(1, 1, 1, 1, 1, 128, false, 0.5).effectiveScale());
        assertEquals(4.0 * 2 * 32 * 1024 * 2048 * 128, p.flops());
        AttentionProblem c = new AttentionProblem(2, 32, 8, 1024, 2048, 128, true);
        assertEquals(p.flops() / 2, c.flops());
        assertEquals(4, p.groupSize());
        assertEquals(0, p.kvHead(3));
        assertEquals(1, p.kvHead(4));
        assertEquals(7, p.kvHead(31));
        assertThrows(IndexOutOfBoundsException.class, () -> p.kvHead(32));
    }

    @Test
    void visibleKeysAreBottomRightAligned() {
        AttentionProblem longerKeys = new AttentionProblem(1, 1, 1, 3, 5, 8, true);
        assertEquals(3, longerKeys.visibleKeys(0));
        assertEquals(5, longerKeys.visibleKeys(2));
        AttentionProblem longerQueries = new AttentionProblem(1, 1, 1, 5, 3, 8, true);
        assertEquals(0, longerQueries.visibleKeys(0));
        assertEquals(0, longerQueries.visibleKeys(1));
        assertEquals(1, longerQueries.visibleKeys(2));
        assertEquals(3, longerQueries.visibleKeys(4));
        assertEquals(3, new AttentionProblem(1, 1, 1, 5, 3, 8, false).visibleKeys(0));
    }
}
