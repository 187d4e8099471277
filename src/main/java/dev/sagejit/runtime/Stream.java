package dev.sagejit.runtime;

import java.util.concurrent.atomic.AtomicBoolean;
import jcuda.driver.CUstream;
import jcuda.driver.JCudaDriver;

/**
 * A CUDA stream of one device. Created streams synchronise with the legacy default stream, so
 * synchronous copies (which run on the default stream) wait for kernels queued here.
 */
public final class Stream implements AutoCloseable {
    private final Device device;
    private final CUstream handle;
    private final boolean owned;
    private final AtomicBoolean closed = new AtomicBoolean();

    Stream(Device device, CUstream handle, boolean owned) {
        this.device = device;
        this.handle = handle;
        this.owned = owned;
    }

    /** The JCuda handle (a null stream for the default stream); JCuda types stay inside this package. */
    CUstream handle() {
        if (closed.get()) {
            throw new IllegalStateException("stream closed");
        }
        return handle;
    }

    public Device device() {
        return device;
    }

    /** True when both are the same queue of work: the same created stream, or both the default stream. */
    public boolean sameQueue(Stream other) {
        return other != null && device == other.device && (owned ? handle == other.handle : !other.owned);
    }

    /** True for {@link Device#defaultStream()}. */
    public boolean isDefault() {
        return !owned;
    }

    /** Waits until all work queued on this stream has finished; surfaces asynchronous kernel faults. */
    public void synchronize() {
        device.makeCurrent();
        Cu.check(JCudaDriver.cuStreamSynchronize(handle()),
                "cuStreamSynchronize(" + (owned ? "stream" : "default stream") + ", device " + device.ordinal() + ")");
    }

    /** Destroys a created stream once (queued work still completes); the default stream is left alone. */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true) || !owned || !device.isOpen()) {
            return;
        }
        device.makeCurrent();
        Cu.check(JCudaDriver.cuStreamDestroy(handle), "cuStreamDestroy(device " + device.ordinal() + ")");
    }
}
