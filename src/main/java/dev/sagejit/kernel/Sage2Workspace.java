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

    private final CarvedAllocation regions;

    Sage2Workspace(Device device) {
        this.regions = new CarvedAllocation(device);
    }

    /** The regions for a problem, growing the backing allocation if it is too small. */
    Views views(FwdProblem p) {
        DeviceBuffer[] v = regions.views(Sizes.of(p).all());
        return new Views(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]);
    }

    @Override
    public void close() {
        regions.close();
    }
}
