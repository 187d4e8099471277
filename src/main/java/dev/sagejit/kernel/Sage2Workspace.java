package dev.sagejit.kernel;

import dev.sagejit.runtime.Device;
import dev.sagejit.runtime.DeviceBuffer;
import dev.sagejit.spec.Int8Fp8Layout;

/**
 * Device buffers of the quantized operands and scales of one int8-fp8 call (layouts in
 * docs/int8-fp8-quantization.md). Grown on demand and reused, so steady-state calls allocate
 * nothing. Calls lease one from {@link Sage2Launcher}'s pool, which keeps calls on different
 * streams apart.
 */
final class Sage2Workspace implements AutoCloseable {
    /** Sizes in bytes of each region for one problem. */
    record Sizes(long q8, long qScale, long qShift, long k8, long kScale, long kSum, long vMax, long v8t,
            long vScale) {
        static Sizes of(FwdProblem p) {
            int d = p.q().headDim();
            long bh = (long) p.batch() * p.heads();
            long bhk = (long) p.batch() * p.k().heads();
            int nq = p.q().seq();
            int nk = p.k().seq();
            return new Sizes(bh * nq * d, bh * Int8Fp8Layout.qGroups(nq) * 4L, bh * nq * 4L, bhk * nk * d,
                    bhk * Int8Fp8Layout.kGroups(nk) * 4L, bhk * d * 4L, bhk * d * 4L,
                    bhk * d * Int8Fp8Layout.nkPad(nk), bhk * d * 4L);
        }

        long[] all() {
            return new long[] {q8, qScale, qShift, k8, kScale, kSum, vMax, v8t, vScale};
        }
    }

    /** Views of the regions for one problem, each 256-byte aligned. */
    record Views(DeviceBuffer q8, DeviceBuffer qScale, DeviceBuffer qShift, DeviceBuffer k8, DeviceBuffer kScale,
            DeviceBuffer kSum, DeviceBuffer vMax, DeviceBuffer v8t, DeviceBuffer vScale) {
    }

    private static final long ALIGN = 256;
    private final Device device;
    private DeviceBuffer buffer;

    Sage2Workspace(Device device) {
        this.device = device;
    }

    /** The regions for a problem, growing the backing allocation if it is too small. */
    synchronized Views views(FwdProblem p) {
        long[] sizes = Sizes.of(p).all();
        long total = 0;
        for (long s : sizes) {
            total += align(Math.max(s, 1));
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
            long len = align(Math.max(sizes[i], 1));
            v[i] = buffer.view(off, len);
            off += len;
        }
        return new Views(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]);
    }

    private static long align(long n) {
        return (n + ALIGN - 1) / ALIGN * ALIGN;
    }

    @Override
    public synchronized void close() {
        if (buffer != null) {
            buffer.close();
            buffer = null;
        }
    }
}
