package dev.sagejit.kernel;

import dev.sagejit.runtime.Device;
import dev.sagejit.runtime.DeviceBuffer;

/**
 * One device allocation carved into 256-byte aligned regions: the workspaces of the quantized modes
 * (their operands, scales and scratch) in a single cuMemAlloc, grown on demand and reused, so
 * steady-state calls allocate nothing.
 */
final class CarvedAllocation implements AutoCloseable {
    private static final long ALIGN = 256;
    private final Device device;
    private DeviceBuffer buffer;

    CarvedAllocation(Device device) {
        this.device = device;
    }

    /**
     * Views of {@code sizes} bytes each (at least one byte, every one 256-byte aligned), in order. When
     * the allocation is too small it is replaced once the device is idle (earlier views die with it).
     */
    synchronized DeviceBuffer[] views(long... sizes) {
        long total = 0;
        for (long s : sizes) {
            total += align(s);
        }
        if (buffer == null || buffer.bytes() < total) {
            if (buffer != null) {
                device.synchronize();
                buffer.close();
            }
            buffer = device.allocate(total);
        }
        DeviceBuffer[] v = new DeviceBuffer[sizes.length];
        long off = 0;
        for (int i = 0; i < sizes.length; i++) {
            v[i] = buffer.view(off, align(sizes[i]));
            off += align(sizes[i]);
        }
        return v;
    }

    private static long align(long n) {
        return (Math.max(n, 1) + ALIGN - 1) / ALIGN * ALIGN;
    }

    @Override
    public synchronized void close() {
        if (buffer != null) {
            buffer.close();
            buffer = null;
        }
    }
}
