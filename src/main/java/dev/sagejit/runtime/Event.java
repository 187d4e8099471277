package dev.sagejit.runtime;

import jcuda.driver.CUevent;
import jcuda.driver.CUresult;
import jcuda.driver.JCudaDriver;

/**
 * A CUDA event without timing (cheapest kind), used to order work between streams and to ask
 * whether work queued before it has finished.
 */
public final class Event implements AutoCloseable {
    private final Device device;
    private final CUevent handle = new CUevent();
    private boolean recorded;
    private boolean closed;

    public Event(Device device) {
        this.device = device;
        device.makeCurrent();
        Cu.check(JCudaDriver.cuEventCreate(handle, jcuda.driver.CUevent_flags.CU_EVENT_DISABLE_TIMING),
                "cuEventCreate(device " + device.ordinal() + ")");
    }

    /** Marks the point after everything queued on {@code stream} so far. */
    public synchronized void record(Stream stream) {
        device.makeCurrent();
        Cu.check(JCudaDriver.cuEventRecord(handle, stream.handle()), "cuEventRecord");
        recorded = true;
    }

    /** True when the work before the last {@link #record} has finished (or nothing was recorded). */
    public synchronized boolean isComplete() {
        if (!recorded) {
            return true;
        }
        device.makeCurrent();
        int r = JCudaDriver.cuEventQuery(handle);
        if (r == CUresult.CUDA_ERROR_NOT_READY) {
            return false;
        }
        Cu.check(r, "cuEventQuery");
        return true;
    }

    /** Makes work queued on {@code stream} from now on wait for this event, without blocking the host. */
    public synchronized void makeWait(Stream stream) {
        if (recorded) {
            device.makeCurrent();
            Cu.check(JCudaDriver.cuStreamWaitEvent(stream.handle(), handle, 0), "cuStreamWaitEvent");
        }
    }

    /** Blocks the host until the work before the last {@link #record} has finished (nothing once the device is closed). */
    public synchronized void synchronize() {
        if (recorded && !closed && device.isOpen()) {
            device.makeCurrent();
            Cu.check(JCudaDriver.cuEventSynchronize(handle), "cuEventSynchronize");
        }
    }

    @Override
    public synchronized void close() {
        if (closed || !device.isOpen()) {
            return;
        }
        closed = true;
        device.makeCurrent();
        JCudaDriver.cuEventDestroy(handle);
    }
}
