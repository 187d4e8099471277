package dev.sagejit.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sagejit.api.SageException;
import org.junit.jupiter.api.Test;

class LaunchGeometryTest {

    @Test
    void acceptsLimits() {
        var g = new LaunchGeometry(Integer.MAX_VALUE, 65535, 65535, 1024, 1, 1, 227 * 1024);
        assertEquals(1024, g.threadsPerBlock());
        assertEquals((long) Integer.MAX_VALUE * 65535 * 65535, g.blocks());
        assertEquals(new LaunchGeometry(4, 1, 1, 32, 1, 1, 0), LaunchGeometry.linear(4, 32, 0));
    }

    @Test
    void coverRoundsUp() {
        assertEquals(3, LaunchGeometry.cover(257, 128).gridX());
        assertEquals(1, LaunchGeometry.cover(1, 128).gridX());
        assertThrows(SageException.InvalidInput.class, () -> LaunchGeometry.cover(0, 128));
    }

    @Test
    void rejectsOutOfRange() {
        assertRejected("gridY", () -> new LaunchGeometry(1, 65536, 1, 32, 1, 1, 0));
        assertRejected("gridZ", () -> new LaunchGeometry(1, 1, 65536, 32, 1, 1, 0));
        assertRejected("gridX", () -> new LaunchGeometry(0, 1, 1, 32, 1, 1, 0));
        assertRejected("blockX", () -> new LaunchGeometry(1, 1, 1, 1025, 1, 1, 0));
        assertRejected("1024 threads", () -> new LaunchGeometry(1, 1, 1, 512, 4, 1, 0));
        assertRejected("blockZ", () -> new LaunchGeometry(1, 1, 1, 1, 1, 65, 0));
        assertRejected("blockY", () -> new LaunchGeometry(1, 1, 1, 32, 0, 1, 0));
        assertRejected("shared memory", () -> new LaunchGeometry(1, 1, 1, 32, 1, 1, -1));
    }

    private static void assertRejected(String mention, org.junit.jupiter.api.function.Executable e) {
        var ex = assertThrows(SageException.InvalidInput.class, e);
        assertTrue(ex.getMessage().contains(mention), ex.getMessage());
    }
}
