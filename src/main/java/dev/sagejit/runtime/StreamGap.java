package dev.sagejit.runtime;

import jcuda.driver.CUhostFn;
import jcuda.driver.JCudaDriver;

/**
 * An idle gap in a stream: a host function that holds the stream for a given time, during which the GPU runs
 * nothing of this stream. A benchmark puts one before each timed launch to reproduce a peer harness that
 * idles the GPU between its calls (benchmarks/peers.py --sleep-every 1 spins one GPU thread for about 100 us
 * before each): under a power cap such gaps let the clock rise for the calls that follow them, so two
 * harnesses compare only when both have them or neither does.
 */
public final class StreamGap {
    private final long nanos;
    private final CUhostFn spin;

    /** A gap of {@code micros} microseconds (> 0). */
    public StreamGap(double micros) {
        if (!(micros > 0) || micros > 1e6) {
            throw new IllegalArgumentException("a stream gap needs 0 < micros <= 1e6, got " + micros);
        }
        this.nanos = (long) (micros * 1e3);
        // Busy-waits on the driver's callback thread: a sleep would round up to the OS timer's tick.
        this.spin = userData -> {
            long end = System.nanoTime() + nanos;
            while (System.nanoTime() < end) {
                Thread.onSpinWait();
            }
        };
    }

    /** Microseconds the gap holds the stream. */
    public double micros() {
        return nanos / 1e3;
    }

    /** Enqueues the gap on {@code stream}: work queued after it starts once the gap has passed. */
    public void enqueue(Stream stream) {
        stream.device().makeCurrent();
        Cu.check(JCudaDriver.cuLaunchHostFunc(stream.handle(), spin, null), "cuLaunchHostFunc(gap)");
    }
}
