package dev.sagejit.api;

import dev.sagejit.runtime.Device;
import dev.sagejit.runtime.DeviceBuffer;
import dev.sagejit.runtime.Stream;
import java.util.Objects;

/**
 * What a training forward keeps for its backward: the caller's Q, K, V and O (views, not copies),
 * the FP32 LSE and the backward's scratch on the GPU (for SageBwd also the INT8 operands of the
 * forward). {@link #backward} may run any number of times (e.g. for several dO); {@link #close}
 * frees the device memory after the stream is done.
 *
 * <pre>{@code
 * try (TrainingContext ctx = sage.forwardForTraining(opts, q, k, v, o, stream)) {
 *     ... loss and dO ...
 *     ctx.backward(dO, dq, dk, dv);   // DeviceTensor views, shaped like Q (dO, dQ) and K (dK, dV)
 * }
 * }</pre>
 */
public final class TrainingContext implements AutoCloseable {
    /** The mode's backward over the forward's tensors and scratch. */
    @FunctionalInterface
    interface Gradients {
        void enqueue(DeviceTensor dO, DeviceTensor dq, DeviceTensor dk, DeviceTensor dv);
    }

    /** A backward and the scratch it owns. */
    record BackwardStep(Gradients gradients, AutoCloseable scratch) {
    }

    private final DeviceBuffer lse;
    private final BackwardStep step;
    private final Device device;
    private final Stream stream;
    private boolean closed;

    TrainingContext(DeviceBuffer lse, BackwardStep step, Device device, Stream stream) {
        this.lse = lse;
        this.step = step;
        this.device = device;
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
        step.gradients().enqueue(dO, dq, dk, dv);
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
            try {
                step.scratch().close();
            } catch (Exception e) {
                throw new IllegalStateException("freeing the training scratch failed", e);
            } finally {
                lse.close();
            }
        }
    }
}
