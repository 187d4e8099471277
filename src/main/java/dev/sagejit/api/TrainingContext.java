package dev.sagejit.api;

import dev.sagejit.kernel.FlashBackward;
import dev.sagejit.runtime.Device;
import dev.sagejit.runtime.DeviceBuffer;
import dev.sagejit.runtime.Stream;
import dev.sagejit.spec.Arch;
import java.util.Objects;

/**
 * What a training forward keeps for its backward: the caller's Q, K, V and O (views, not copies) and
 * the FP32 LSE and backward scratch it owns on the GPU. {@link #backward} may run any number of
 * times (e.g. for several dO); {@link #close} frees the device memory after the stream is done.
 * BF16 and FP16 only for now (SageBwd's 8-bit backward is not built yet).
 *
 * <pre>{@code
 * try (TrainingContext ctx = sage.forwardForTraining(opts, q, k, v, o, stream)) {
 *     ... loss and dO ...
 *     ctx.backward(dO, dq, dk, dv);   // DeviceTensor views, shaped like Q (dO, dQ) and K (dK, dV)
 * }
 * }</pre>
 */
public final class TrainingContext implements AutoCloseable {
    private final AttentionOptions options;
    private final DeviceTensor q;
    private final DeviceTensor k;
    private final DeviceTensor v;
    private final DeviceTensor o;
    private final DeviceBuffer lse;
    private final FlashBackward backward;
    private final FlashBackward.Workspace workspace;
    private final Device device;
    private final Arch arch;
    private final Stream stream;
    private boolean closed;

    TrainingContext(AttentionOptions options, DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor o,
            DeviceBuffer lse, FlashBackward backward, Device device, Arch arch, Stream stream) {
        this.options = options;
        this.q = q;
        this.k = k;
        this.v = v;
        this.o = o;
        this.lse = lse;
        this.backward = backward;
        this.workspace = new FlashBackward.Workspace(device);
        this.device = device;
        this.arch = arch;
        this.stream = stream;
    }

    /** The forward's log-sum-exp, FP32 [B, H_q, N_q] on the GPU (natural log). */
    public long lseAddress() {
        return lse.address();
    }

    /**
     * Enqueues the backward on the forward's stream: writes dQ (shaped like Q), dK and dV (shaped like
     * K) from dO (shaped like O). Nothing is copied to the host.
     */
    public synchronized void backward(DeviceTensor dO, DeviceTensor dq, DeviceTensor dk, DeviceTensor dv) {
        if (closed) {
            throw new IllegalStateException("this training context is closed; run the forward again");
        }
        var grads = new java.util.LinkedHashMap<String, DeviceTensor>();
        grads.put("dO", Objects.requireNonNull(dO, "dO"));
        grads.put("dq", Objects.requireNonNull(dq, "dq"));
        grads.put("dk", Objects.requireNonNull(dk, "dk"));
        grads.put("dv", Objects.requireNonNull(dv, "dv"));
        grads.forEach((name, t) -> device.requireAllocated(t.address(), t.extentBytes(), name));
        backward.enqueue(options, q, k, v, o, dO, lse.address(), dq, dk, dv, arch, stream, workspace);
    }

    /** Waits for the stream, then frees the LSE and the backward's scratch. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            stream.synchronize();
        } finally {
            workspace.close();
            lse.close();
        }
    }
}
