package dev.sagejit.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sagejit.api.SageException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** The runtime on a real GPU: memory, a hand-written PTX kernel, timing and out-of-memory. */
@Tag("gpu")
class GpuRuntimeTest {
    /** y[i] += 1.0f for i < n; PTX for sm_80 so the driver JIT-compiles it for any newer GPU. */
    static final String ADD_ONE_PTX = """
            .version 8.0
            .target sm_80
            .address_size 64

            .visible .entry add_one(
                .param .u64 add_one_data,
                .param .u32 add_one_n
            )
            {
                .reg .pred  %p<2>;
                .reg .b32   %r<6>;
                .reg .f32   %f<3>;
                .reg .b64   %rd<5>;

                ld.param.u64        %rd1, [add_one_data];
                ld.param.u32        %r2, [add_one_n];
                mov.u32             %r3, %ctaid.x;
                mov.u32             %r4, %ntid.x;
                mov.u32             %r5, %tid.x;
                mad.lo.s32          %r1, %r3, %r4, %r5;
                setp.ge.u32         %p1, %r1, %r2;
                @%p1 bra            DONE;
                cvta.to.global.u64  %rd2, %rd1;
                mul.wide.u32        %rd3, %r1, 4;
                add.s64             %rd4, %rd2, %rd3;
                ld.global.f32       %f1, [%rd4];
                add.f32             %f2, %f1, 0f3F800000;
                st.global.f32       [%rd4], %f2;
            DONE:
                ret;
            }
            """;

    static Device device;

    @BeforeAll
    static void open() {
        assertTrue(CudaDriver.available(), CudaDriver.unavailableReason());
        device = Device.open(0);
        System.out.println(device + ", driver " + device.driverVersion() + ", L2 " + device.l2Bytes()
                + " B, smem opt-in " + device.maxSharedPerBlockOptin() + " B, free " + device.freeMemory());
    }

    @AfterAll
    static void close() {
        if (device != null) {
            device.close();
            device.close();
        }
    }

    @Test
    void deviceFacts() {
        assertTrue(device.major() >= 8, "compute capability " + device.major());
        assertTrue(device.smCount() > 0 && device.totalMemory() > 0 && device.l2Bytes() > 0);
        assertTrue(device.maxSharedPerBlockOptin() >= 48 * 1024);
        assertTrue(device.freeMemory() > 0 && device.freeMemory() <= device.totalMemory());
        assertTrue(CudaDriver.deviceCount() >= 1 && CudaDriver.driverVersion() >= 12000);
        assertTrue(!device.name().isBlank());
    }

    @Test
    void copiesRoundTrip() {
        int n = 1000;
        float[] host = new float[n];
        for (int i = 0; i < n; i++) {
            host[i] = i * 0.5f - 3;
        }
        try (DeviceBuffer buf = device.allocate(4L * n)) {
            buf.copyFromHost(host);
            float[] back = new float[n];
            buf.copyToHost(back);
            assertArrayEquals(host, back);
            // offsets: element 10..19 of a fresh array from device bytes 40..
            float[] part = new float[30];
            buf.copyToHost(part, 5, 10, 40);
            assertEquals(host[10], part[5]);
            assertEquals(host[19], part[14]);
            assertEquals(0f, part[15]);
            // byte, short, int arrays
            buf.copyFromHost(new int[] {7, -8}, 0, 2, 8);
            int[] ints = new int[2];
            buf.copyToHost(ints, 0, 2, 8);
            assertArrayEquals(new int[] {7, -8}, ints);
            buf.copyFromHost(new short[] {1, 2, 3});
            short[] shorts = new short[3];
            buf.copyToHost(shorts);
            assertArrayEquals(new short[] {1, 2, 3}, shorts);
            // segments and buffers, native and heap
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment seg = arena.allocate(64);
                for (int i = 0; i < 16; i++) {
                    seg.setAtIndex(ValueLayout.JAVA_FLOAT, i, i);
                }
                buf.copyFromHost(seg, 100 * 4);
                MemorySegment heap = MemorySegment.ofArray(new float[16]);
                buf.copyToHost(heap, 100 * 4);
                assertEquals(15f, heap.getAtIndex(ValueLayout.JAVA_FLOAT, 15));
                try (Stream s = device.createStream()) {
                    MemorySegment out = arena.allocate(64);
                    buf.copyToHostAsync(out, 100 * 4, s);
                    s.synchronize();
                    assertEquals(seg.asByteBuffer(), out.asByteBuffer());
                }
            }
            ByteBuffer direct = ByteBuffer.allocateDirect(16).order(ByteOrder.nativeOrder());
            direct.putFloat(0, 42f).position(4);
            buf.copyFromHost(direct, 0); // copies bytes 4..16 only
            ByteBuffer heapBuf = ByteBuffer.allocate(20).order(ByteOrder.nativeOrder());
            heapBuf.position(4);
            buf.copyToHost(heapBuf, 0);
            assertEquals(4, heapBuf.position());
            assertEquals(0f, heapBuf.getFloat(4));
            buf.zero();
            float[] zeros = new float[n];
            buf.copyToHost(zeros);
            assertArrayEquals(new float[n], zeros);
            var e = assertThrows(SageException.InvalidInput.class, () -> buf.copyToHost(new float[n + 1]));
            assertTrue(e.getMessage().contains(Long.toString(4L * n)), e.getMessage());
        }
    }

    @Test
    void ptxKernelAddsOne() {
        int n = 1 << 20;
        float[] host = new float[n];
        for (int i = 0; i < n; i++) {
            host[i] = i % 977;
        }
        try (DeviceBuffer buf = device.allocate(4L * n);
                LoadedModule module = device.load(ADD_ONE_PTX.getBytes(StandardCharsets.US_ASCII));
                Stream stream = device.createStream()) {
            LoadedKernel kernel = module.function("add_one");
            assertTrue(kernel.maxThreadsPerBlock() >= 256 && kernel.numRegs() > 0, kernel.toString());
            buf.copyFromHost(host);
            LaunchGeometry g = LaunchGeometry.cover(n, 256);
            KernelArgs args = KernelArgs.builder().ptr(buf).i32(n).build();
            kernel.launch(g, stream, args);
            stream.synchronize();
            float[] out = new float[n];
            buf.copyToHost(out);
            for (int i = 0; i < n; i++) {
                if (out[i] != host[i] + 1f) {
                    throw new AssertionError("element " + i + ": " + out[i] + " != " + (host[i] + 1f));
                }
            }
            // a view at an offset: only the second half moves again
            try (DeviceBuffer half = buf.view(4L * (n / 2), 4L * (n / 2))) {
                kernel.launch(g, null, KernelArgs.builder().ptr(half).i32(n / 2).build());
                device.synchronize();
            }
            buf.copyToHost(out);
            assertEquals(host[0] + 1f, out[0]);
            assertEquals(host[n - 1] + 2f, out[n - 1]);

            EventTimer.Timing t = new EventTimer(device).time(stream, () -> kernel.launch(g, stream, args), 5, 50);
            assertEquals(50, t.iters());
            assertTrue(t.minMs() > 0 && t.minMs() <= t.medianMs() && t.p20Ms() <= t.p80Ms(), t.toString());
            assertTrue(t.medianMs() < 100, t.toString());
            EventTimer.Timing u = new EventTimer(device).timeUntil(stream, () -> kernel.launch(g, stream, args),
                    2, 5.0, 10, 10_000);
            assertTrue(u.iters() >= 10, u.toString());
            // the timed warm-up launches for at least its milliseconds before any sample
            int[] launches = {0};
            long start = System.nanoTime();
            EventTimer.Timing w = new EventTimer(device).timeUntil(stream, () -> {
                launches[0]++;
                kernel.launch(g, stream, args);
            }, 1, 50.0, 0.0, 3, 3);
            assertEquals(3, w.iters());
            assertTrue((System.nanoTime() - start) / 1e6 >= 50.0, "warm-up shorter than 50 ms");
            assertTrue(launches[0] > 4, "warm-up launched " + launches[0] + " times");
            System.out.println("add_one over 4 MiB: " + t + " / " + u);
            // a gap before each timed launch idles the stream for its time, outside the events
            start = System.nanoTime();
            EventTimer.Timing gapped = new EventTimer(device, new StreamGap(3000)::enqueue).time(stream,
                    () -> kernel.launch(g, stream, args), 0, 8);
            double wallMs = (System.nanoTime() - start) / 1e6;
            assertTrue(wallMs >= 8 * 3.0, "8 gaps of 3 ms took " + wallMs + " ms");
            assertTrue(gapped.medianMs() < 1.5, "the gap leaked into the events: " + gapped);
            assertThrows(IllegalArgumentException.class, () -> new StreamGap(0));

            try (L2Flush flush = new L2Flush(device)) {
                assertEquals(2L * device.l2Bytes(), flush.bytes());
                flush.flush(stream);
                stream.synchronize();
            }
            var tooMuch = assertThrows(SageException.OutOfResources.class,
                    () -> kernel.setMaxDynamicSharedMemory(device.maxSharedPerBlockOptin() + 1));
            assertTrue(tooMuch.getMessage().contains("required"), tooMuch.getMessage());
        }
    }

    @Test
    void missingKernelNamesTheCall() {
        try (LoadedModule module = device.load(ADD_ONE_PTX.getBytes(StandardCharsets.US_ASCII))) {
            var e = assertThrows(SageException.Launch.class, () -> module.function("no_such_kernel"));
            assertTrue(e.getMessage().contains("cuModuleGetFunction(no_such_kernel"), e.getMessage());
        }
    }

    @Test
    void outOfMemoryLeavesDeviceUsable() {
        var e = assertThrows(SageException.OutOfResources.class, () -> device.allocate(1L << 40));
        assertTrue(e.getMessage().contains(Long.toString(1L << 40)), e.getMessage());
        try (DeviceBuffer ok = device.allocate(1 << 20)) {
            ok.fill((byte) 1);
            byte[] back = new byte[16];
            ok.copyToHost(back);
            assertEquals(1, back[15]);
        }
        device.synchronize();
    }

    @Test
    void useAfterFreeIsRefused() {
        DeviceBuffer b = device.allocate(64);
        b.close();
        b.close();
        var e = assertThrows(IllegalStateException.class, b::address);
        assertEquals("buffer freed", e.getMessage());
    }
}
