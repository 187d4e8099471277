package dev.sagejit.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import org.junit.jupiter.api.Test;

/** Host memory inputs are checked before anything reaches a GPU. */
class HostSegmentsTest {
    private static final HostShape SHAPE = new HostShape(Layout.BHSD, 1, 4, 2, 10, 12, 64);

    @Test
    void shapeCountsElements() {
        assertEquals(4L * 10 * 64, SHAPE.qElements());
        assertEquals(2L * 12 * 64, SHAPE.kvElements());
        assertEquals(40, SHAPE.lseEntries());
        var e = assertThrows(SageException.InvalidInput.class, () -> new HostShape(Layout.BSHD, 1, 0, 1, 1, 1, 64));
        assertTrue(e.getMessage().contains("Hq=0"), e.getMessage());
    }

    @Test
    void segmentsOfTheRightSizeAreAccepted() {
        try (var arena = Arena.ofConfined()) {
            var q = arena.allocate(2 * SHAPE.qElements());
            var kv = arena.allocate(2 * SHAPE.kvElements());
            var in = new HostSegments(SHAPE, q, kv, kv, MemorySegment.ofArray(new short[(int) SHAPE.qElements()]));
            assertEquals(SHAPE, in.shape());
        }
    }

    @Test
    void wrongSizesNullsAndReadOnlyOutputsAreRefusedWithTheExpectedSize() {
        var q = MemorySegment.ofArray(new short[(int) SHAPE.qElements()]);
        var kv = MemorySegment.ofArray(new short[(int) SHAPE.kvElements()]);
        var e = assertThrows(SageException.InvalidInput.class,
                () -> new HostSegments(SHAPE, q, MemorySegment.ofArray(new short[7]), kv, q));
        assertTrue(e.getMessage().contains("k has 14 bytes, expected " + 2 * SHAPE.kvElements()), e.getMessage());
        assertThrows(SageException.InvalidInput.class, () -> new HostSegments(SHAPE, q, kv, null, q));
        e = assertThrows(SageException.InvalidInput.class, () -> new HostSegments(SHAPE, q, kv, kv, q.asReadOnly()));
        assertTrue(e.getMessage().contains("read-only"), e.getMessage());
    }

    @Test
    void nioBuffersUseTheirRemainingBytes() {
        var q = ByteBuffer.allocateDirect((int) (2 * SHAPE.qElements()) + 6).position(6);
        var kv = ByteBuffer.allocate((int) (2 * SHAPE.kvElements()));
        var o = ByteBuffer.allocate((int) (2 * SHAPE.qElements()));
        var in = HostSegments.of(SHAPE, q, kv, kv, o);
        assertEquals(2 * SHAPE.qElements(), in.q().byteSize());
        assertThrows(SageException.InvalidInput.class, () -> HostSegments.of(SHAPE, q, kv, kv, o.asReadOnlyBuffer()));
        assertThrows(SageException.InvalidInput.class, () -> HostSegments.of(SHAPE, q, kv, kv, null));
    }
}
