package dev.sagejit.runtime;

/**
 * A scratch buffer twice the size of the device's L2 cache; writing all of it evicts whatever a
 * benchmark left in L2, so the next launch reads its inputs from device memory.
 */
public final class L2Flush implements AutoCloseable {
    /** Used when the driver reports no L2 size. */
    private static final long FALLBACK_BYTES = 128L << 20;

    private final DeviceBuffer scratch;
    private byte next;

    public L2Flush(Device device) {
        this(device, device.l2Bytes() > 0 ? 2 * device.l2Bytes() : FALLBACK_BYTES);
    }

    /** A flush that writes {@code bytes} (> 0) each time, e.g. triton.testing.do_bench's 256 MiB. */
    public L2Flush(Device device, long bytes) {
        if (bytes <= 0) {
            throw new IllegalArgumentException("an L2 flush needs a positive size, got " + bytes);
        }
        this.scratch = device.allocate(bytes);
        this.scratch.zero();
    }

    /** Bytes written per flush. */
    public long bytes() {
        return scratch.bytes();
    }

    /** Enqueues a memset of the whole scratch buffer on {@code stream}. */
    public void flush(Stream stream) {
        scratch.fillAsync(next++, stream);
    }

    /** Memsets the whole scratch buffer on the default stream. */
    public void flush() {
        scratch.fill(next++);
    }

    @Override
    public void close() {
        scratch.close();
    }
}
