package dev.sagejit.runtime;

import dev.sagejit.api.SageException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Consumer;
import jcuda.driver.CUevent;
import jcuda.driver.JCudaDriver;

/**
 * Times GPU work with a pair of CUDA events around each iteration, so every sample is device time of
 * one launch and host overhead between launches is not counted. The timer does nothing about caches:
 * callers that care rotate their inputs between iterations or flush L2 inside the timed runnable
 * ({@link L2Flush}, whose cost is then included) before reading these numbers as cold-cache times.
 * The runnable must enqueue its work on the stream passed in.
 */
public final class EventTimer {
    /**
     * Statistics of the per-iteration times, in milliseconds.
     *
     * @param medianMs median
     * @param p20Ms    20th percentile (linear interpolation between ranks)
     * @param p80Ms    80th percentile
     * @param minMs    fastest iteration
     * @param iters    number of timed iterations
     */
    public record Timing(double medianMs, double p20Ms, double p80Ms, double minMs, int iters) {

        /** Statistics of the given samples (not modified). */
        public static Timing of(double[] samplesMs) {
            if (samplesMs.length == 0) {
                throw new SageException.InvalidInput("no timing samples");
            }
            double[] s = samplesMs.clone();
            Arrays.sort(s);
            return new Timing(quantile(s, 0.5), quantile(s, 0.2), quantile(s, 0.8), s[0], s.length);
        }

        private static double quantile(double[] sorted, double q) {
            double pos = q * (sorted.length - 1);
            int lo = (int) Math.floor(pos);
            int hi = Math.min(lo + 1, sorted.length - 1);
            return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
        }
    }

    private final Device device;
    private final Consumer<Stream> beforeEach;

    public EventTimer(Device device) {
        this(device, null);
    }

    /**
     * A timer that enqueues {@code beforeEach} (null: nothing) on the stream before each timed iteration's start
     * event, outside the timed span: an idle gap ({@link StreamGap#enqueue}) or a cache clear ({@link
     * L2Flush#flush(Stream)}), as the harness being matched has between its calls (warm-up launches run without).
     */
    public EventTimer(Device device, Consumer<Stream> beforeEach) {
        this.device = java.util.Objects.requireNonNull(device, "device");
        this.beforeEach = beforeEach;
    }

    /** Runs {@code launch} warmup times untimed, then {@code iters} times, each between two events. */
    public Timing time(Stream stream, Runnable launch, int warmup, int iters) {
        if (warmup < 0 || iters < 1) {
            throw new SageException.InvalidInput("need warmup >= 0 and iters >= 1, got " + warmup + " and " + iters);
        }
        warm(stream, launch, warmup);
        try (Events events = new Events()) {
            return Timing.of(events.run(stream, launch, iters));
        }
    }

    /**
     * Runs {@code launch} warmup times, then times it in batches until at least {@code minIters}
     * iterations and {@code minTotalMs} of measured time are reached, or {@code maxIters} iterations.
     */
    public Timing timeUntil(Stream stream, Runnable launch, int warmup, double minTotalMs, int minIters, int maxIters) {
        return timeUntil(stream, launch, warmup, 0, minTotalMs, minIters, maxIters);
    }

    /**
     * As {@link #timeUntil(Stream, Runnable, int, double, int, int)}, with at least {@code warmupMs}
     * milliseconds of untimed launches after the {@code warmup} ones. The SM clock dips by up to 15% for a
     * few hundred milliseconds after the GPU leaves idle (power management: an H200 at 1680-1800 MHz
     * instead of 1980, benchmarks/results/2026-12-01-h200-clocks.csv), so samples taken right after
     * an idle gap measure the clock, not the kernel.
     */
    public Timing timeUntil(Stream stream, Runnable launch, int warmup, double warmupMs, double minTotalMs, int minIters,
            int maxIters) {
        if (warmup < 0 || !(warmupMs >= 0) || minIters < 1 || maxIters < minIters || !(minTotalMs >= 0)) {
            throw new SageException.InvalidInput("need warmup >= 0, warmupMs >= 0, 1 <= minIters <= maxIters and"
                    + " minTotalMs >= 0; got " + warmup + ", " + warmupMs + ", " + minIters + ", " + maxIters + ", "
                    + minTotalMs);
        }
        warm(stream, launch, warmup);
        warmFor(stream, launch, warmupMs);
        List<Double> all = new ArrayList<>();
        double total = 0;
        try (Events events = new Events()) {
            int batch = minIters;
            while (true) {
                for (double ms : events.run(stream, launch, batch)) {
                    all.add(ms);
                    total += ms;
                }
                if ((all.size() >= minIters && total >= minTotalMs) || all.size() >= maxIters) {
                    break;
                }
                double mean = total / all.size();
                long wanted = mean > 0 ? (long) Math.ceil((minTotalMs - total) / mean) : minIters;
                batch = (int) Math.max(1, Math.min(Math.max(wanted, 1), (long) maxIters - all.size()));
                batch = Math.min(batch, 1000);
            }
        }
        return Timing.of(all.stream().mapToDouble(Double::doubleValue).toArray());
    }

    /** Launches in small synchronized batches until {@code ms} milliseconds of wall time have passed. */
    private void warmFor(Stream stream, Runnable launch, double ms) {
        long end = System.nanoTime() + (long) (ms * 1e6);
        while (System.nanoTime() < end) {
            for (int i = 0; i < WARM_BATCH; i++) {
                launch.run();
            }
            stream.synchronize();
        }
    }

    /** Launches queued between the time checks of {@link #warmFor}. */
    private static final int WARM_BATCH = 4;

    private void warm(Stream stream, Runnable launch, int warmup) {
        device.makeCurrent();
        for (int i = 0; i < warmup; i++) {
            launch.run();
        }
        stream.synchronize();
    }

    /** A growing pool of event pairs, destroyed together. */
    private final class Events implements AutoCloseable {
        private final List<CUevent> starts = new ArrayList<>();
        private final List<CUevent> ends = new ArrayList<>();

        double[] run(Stream stream, Runnable launch, int iters) {
            device.makeCurrent();
            while (starts.size() < iters) {
                starts.add(create());
                ends.add(create());
            }
            for (int i = 0; i < iters; i++) {
                if (beforeEach != null) {
                    beforeEach.accept(stream);
                }
                Cu.check(JCudaDriver.cuEventRecord(starts.get(i), stream.handle()), "cuEventRecord(start " + i + ")");
                launch.run();
                device.makeCurrent();
                Cu.check(JCudaDriver.cuEventRecord(ends.get(i), stream.handle()), "cuEventRecord(end " + i + ")");
            }
            Cu.check(JCudaDriver.cuEventSynchronize(ends.get(iters - 1)), "cuEventSynchronize(end " + (iters - 1) + ")");
            double[] ms = new double[iters];
            float[] elapsed = {0};
            for (int i = 0; i < iters; i++) {
                Cu.check(JCudaDriver.cuEventElapsedTime(elapsed, starts.get(i), ends.get(i)), "cuEventElapsedTime(" + i + ")");
                ms[i] = elapsed[0];
            }
            return ms;
        }

        private CUevent create() {
            CUevent e = new CUevent();
            Cu.check(JCudaDriver.cuEventCreate(e, 0), "cuEventCreate");
            return e;
        }

        @Override
        public void close() {
            if (!device.isOpen()) {
                return;
            }
            device.makeCurrent();
            for (CUevent e : starts) {
                JCudaDriver.cuEventDestroy(e);
            }
            for (CUevent e : ends) {
                JCudaDriver.cuEventDestroy(e);
            }
        }
    }
}
