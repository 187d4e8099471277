package dev.sagejit.kernel;

import dev.sagejit.api.DType;
import dev.sagejit.api.DeviceTensor;
import dev.sagejit.reference.HostTensor;
import dev.sagejit.runtime.Device;
import dev.sagejit.runtime.DeviceBuffer;
import dev.sagejit.util.Half;

/** Host tensors to the GPU and quantizer outputs back, for the GPU tests. */
final class DeviceCopies {
    private DeviceCopies() {
    }

    /** A device copy of x's values in dtype t (x should already be rounded to t). */
    static DeviceBuffer upload(Device device, HostTensor x, DType t) {
        DeviceBuffer b = device.allocate(Math.max(16, 2L * x.data().length));
        b.copyFromHost(Half.toBits(x.data(), t));
        return b;
    }

    /** The device tensor of an upload, in x's layout. */
    static DeviceTensor tensor(DeviceBuffer b, DType t, HostTensor like) {
        return DeviceTensor.contiguous(b.address(), t, like.layout(), like.batch(), like.heads(), like.seq(),
                like.headDim());
    }

    static byte[] bytes(DeviceBuffer b, int n) {
        byte[] out = new byte[n];
        b.copyToHost(out, 0, n, 0);
        return out;
    }

    static float[] floats(DeviceBuffer b, int n) {
        float[] out = new float[n];
        b.copyToHost(out, 0, n, 0);
        return out;
    }
}
