package dev.sagejit.kernel;

import dev.sagejit.runtime.Device;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** Which workspace a lease gets: reuse on one stream, a new one while another is held, waiting at the cap. */
@Tag("gpu")
class WorkspacePoolGpuTest {
    private static Device device;

    /** A workspace that counts its closes. */
    private static final class Scratch implements AutoCloseable {
        final AtomicInteger closes = new AtomicInteger();

        @Override
        public void close() {
            closes.incrementAndGet();
        }
    }

    @BeforeAll
    static void open() {
        device = Device.open(0);
    }

    @AfterAll
    static void close() {
        device.close();
    }

    @Test
    void oneStreamReusesOneWorkspace() {
        try (var pool = new WorkspacePool<>(device, 4, Scratch::new)) {
            Scratch first;
            try (var lease = pool.lease(device.defaultStream())) {
                first = lease.workspace();
            }
            for (int i = 0; i < 10; i++) {
                try (var lease = pool.lease(device.defaultStream())) {
                    assertSame(first, lease.workspace());
                }
            }
            assertEquals(1, pool.size());
        }
    }

    @Test
    void leasesHeldAtOnceGetDifferentWorkspacesAndAllAreClosedOnce() {
        Scratch a;
        Scratch b;
        try (var pool = new WorkspacePool<>(device, 4, Scratch::new); var s1 = device.createStream();
                var s2 = device.createStream()) {
            try (var l1 = pool.lease(s1); var l2 = pool.lease(s2)) {
                a = l1.workspace();
                b = l2.workspace();
                assertNotSame(a, b);
            }
            try (var l2 = pool.lease(s2)) {
                assertSame(b, l2.workspace(), "the workspace last used on s2");
            }
            assertEquals(2, pool.size());
        }
        assertEquals(1, a.closes.get());
        assertEquals(1, b.closes.get());
    }

    @Test
    void atTheCapALeaseWaitsForARelease() throws Exception {
        try (var pool = new WorkspacePool<>(device, 1, Scratch::new); var pool2 = Executors.newSingleThreadExecutor();
                var s1 = device.createStream(); var s2 = device.createStream()) {
            var held = pool.lease(s1);
            var got = new CountDownLatch(1);
            var other = pool2.submit(() -> {
                device.makeCurrent();
                try (var lease = pool.lease(s2)) {
                    got.countDown();
                    return lease.workspace();
                }
            });
            assertFalse(got.await(300, TimeUnit.MILLISECONDS), "the second lease must wait while the only workspace is held");
            Scratch only = held.workspace();
            held.close();
            assertSame(only, other.get(10, TimeUnit.SECONDS));
            assertEquals(1, pool.size());
        }
    }

    @Test
    void aClosedPoolRefusesLeases() {
        var pool = new WorkspacePool<>(device, 2, Scratch::new);
        pool.close();
        var e = assertThrows(IllegalStateException.class, () -> pool.lease(device.defaultStream()));
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
    }
}
