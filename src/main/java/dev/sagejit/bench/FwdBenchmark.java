package dev.sagejit.bench;

import dev.sagejit.api.AttentionOptions;
import dev.sagejit.api.DeviceTensor;
import dev.sagejit.api.SageAttention;
import dev.sagejit.kernel.FlashBackward;
import dev.sagejit.kernel.FlashBwdPlan;
import dev.sagejit.kernel.FwdProblem;
import dev.sagejit.kernel.KernelLoader;
import dev.sagejit.kernel.SageBwd;
import dev.sagejit.kernel.SageBwdPlan;
import dev.sagejit.kernel.SageInternals;
import dev.sagejit.runtime.Device;
import dev.sagejit.runtime.DeviceBuffer;
import dev.sagejit.runtime.EventTimer;
import dev.sagejit.runtime.L2Flush;
import dev.sagejit.runtime.Stream;
import dev.sagejit.runtime.StreamGap;
import dev.sagejit.util.Half;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Times the forward kernel with CUDA events on rotated input sets (together larger than the L2
 * cache, so each launch reads from HBM as in a real model), after a warm-up. Inputs are N(0,1),
 * never zeros.
 */
public final class FwdBenchmark {
    /** Input sets must together exceed this many bytes (3x the H200's 60 MB L2). */
    static final long ROTATION_BYTES = 3L * 60 * 1024 * 1024;
    static final int MAX_SETS = 8;
    /** Timed launches at least (long kernels stop here once minTotalMs is reached). */
    static final int MIN_ITERATIONS = 5;

    /** One measurement and the kernel it measured. */
    public record Measurement(BenchCase bench, String config, Scope scope, EventTimer.Timing timing, double tops,
            int registers, int spillBytes, TimingProtocol protocol) {
    }

    /** What a timing covers (shared/RESULTS.md {@code scope} and {@code direction}). */
    public enum Scope {
        /** The attention kernel alone (int8-fp8: on operands quantized beforehand). */
        KERNEL("kernel", "fwd", 1.0),
        /** From 16-bit inputs: quantization and smoothing included. */
        END_TO_END("end-to-end", "fwd", 1.0),
        /** The training forward (O and the LSE the backward needs; SageBwd: its quantizers included). */
        TRAINING_FORWARD("kernel", "fwd", 1.0),
        /** The backward pass (dQ, dK, dV from Q, K, V, O, LSE and dO; 2.5x the forward's FLOPs). */
        BACKWARD("kernel", "bwd", Scope.BACKWARD_FLOPS),
        /** A training step: the training forward, then the backward. */
        TRAINING_STEP("kernel", "fwdbwd", 1.0 + Scope.BACKWARD_FLOPS);

        /** FLOPs of the backward relative to the forward's (shared/SPEC.md section 5). */
        private static final double BACKWARD_FLOPS = 2.5;

        private final String id;
        private final String direction;
        private final double flopFactor;

        Scope(String id, String direction, double flopFactor) {
            this.id = id;
            this.direction = direction;
            this.flopFactor = flopFactor;
        }

        public String id() {
            return id;
        }

        /** The results line's direction: fwd, bwd or fwdbwd. */
        public String direction() {
            return direction;
        }

        /** FLOPs relative to the forward's (shared/SPEC.md section 5: the backward counts 2.5x). */
        public double flopFactor() {
            return flopFactor;
        }

        /** Whether this times the training path (forward with LSE and/or backward). */
        public boolean training() {
            return this == TRAINING_FORWARD || this == BACKWARD || this == TRAINING_STEP;
        }

        /** The scopes worth timing for a precision: both for int8-fp8, where they differ; else kernel. */
        public static java.util.List<Scope> forPrecision(dev.sagejit.api.Precision p) {
            return p.quantized() ? java.util.List.of(KERNEL, END_TO_END) : java.util.List.of(KERNEL);
        }
    }

    /**
     * Timed warm-up of every case unless a caller says otherwise (sagejit bench --warmup-ms, and
     * benchmarks/peers.py --warmup-time for SDPA's cases, whose default PythonToolsTest holds equal): the
     * H200's SM clock dips for 100-300 ms after idle (docs/perf-notes-int8fp8.md, session 11).
     */
    public static final double DEFAULT_WARMUP_MS = 300;

    private static final String END_TO_END_ID = Scope.END_TO_END.id();
    private final SageAttention sage;
    private final TimingProtocol protocol;

    /** A benchmark with no timed warm-up beyond the launch counts its callers give. */
    public FwdBenchmark(SageAttention sage) {
        this(sage, TimingProtocol.backToBack(0));
    }

    /**
     * A benchmark that times every case under {@code protocol}: its warm-up so every case is timed at the
     * GPU's steady clock ({@link EventTimer#timeUntil(Stream, Runnable, int, double, double, int, int)}), its
     * cool-down so every case starts from a rested GPU, and what runs before each timed launch.
     */
    public FwdBenchmark(SageAttention sage, TimingProtocol protocol) {
        this.sage = sage;
        this.protocol = java.util.Objects.requireNonNull(protocol, "protocol");
    }

    /** A timer that enqueues the protocol's gap or cache clear before each timed launch (close it after). */
    private static final class Timer implements AutoCloseable {
        final EventTimer timer;
        private final L2Flush flush;

        Timer(Device device, TimingProtocol protocol) {
            if (protocol.flushBytes() > 0) {
                flush = new L2Flush(device, protocol.flushBytes());
                timer = new EventTimer(device, flush::flush);
            } else {
                flush = null;
                StreamGap gap = protocol.gapUs() > 0 ? new StreamGap(protocol.gapUs()) : null;
                timer = new EventTimer(device, gap == null ? null : gap::enqueue);
            }
        }

        @Override
        public void close() {
            if (flush != null) {
                flush.close();
            }
        }
    }

    /**
     * Times {@code call} under the protocol: the cool-down (callers synchronize first), then the warm-up and
     * at least {@code minTotalMs} of timed launches, with the protocol's gap or cache clear before each.
     */
    private EventTimer.Timing time(Device device, Stream stream, Runnable call, int warmup, double minTotalMs) {
        coolDown();
        try (var timer = new Timer(device, protocol)) {
            return timer.timer.timeUntil(stream, call, warmup, protocol.warmupMs(), minTotalMs, MIN_ITERATIONS, 2000);
        }
    }

    /** Idles for the cool-down (the GPU has finished its queued work: callers synchronize first). */
    private void coolDown() {
        if (protocol.cooldownMs() > 0) {
            try {
                Thread.sleep((long) protocol.cooldownMs());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while cooling down before a timed case", e);
            }
        }
    }

    /** Times one case with the given tile config key (null: the default choice). */
    public Measurement measure(BenchCase c, String tiles, int warmup, double minTotalMs) {
        return measure(c, tiles, Scope.KERNEL, warmup, minTotalMs);
    }

    /** Times one case and scope with the given tile config key (null: the default choice). */
    public Measurement measure(BenchCase c, String tiles, Scope scope, int warmup, double minTotalMs) {
        if (scope.training()) {
            return measureTraining(c, scope, warmup, minTotalMs);
        }
        var t = c.precision().inputType();
        long qBytes = (long) c.batch() * c.heads() * c.nq() * c.headDim() * t.bytes();
        long kvBytes = (long) c.batch() * c.kvHeads() * c.nk() * c.headDim() * t.bytes();
        long setBytes = 2 * qBytes + 2 * kvBytes;
        int sets = (int) Math.min(MAX_SETS, Math.max(1, (ROTATION_BYTES + setBytes - 1) / setBytes));
        var device = sage.device();
        var buffers = new ArrayList<DeviceBuffer>();
        try {
            short[] qHost = randomBits(qBytes / t.bytes(), t, 1);
            short[] kvHost = randomBits(kvBytes / t.bytes(), t, 2);
            var problems = new ArrayList<FwdProblem>();
            var opts = AttentionOptions.builder().precision(c.precision()).causal(c.causal()).tiles(tiles).build();
            for (int s = 0; s < sets; s++) {
                DeviceBuffer q = alloc(buffers, qBytes), k = alloc(buffers, kvBytes), v = alloc(buffers, kvBytes),
                        o = alloc(buffers, qBytes);
                q.copyFromHost(qHost);
                k.copyFromHost(kvHost);
                v.copyFromHost(kvHost);
                problems.add(new FwdProblem(opts,
                        DeviceTensor.contiguous(q.address(), t, c.layout(), c.batch(), c.heads(), c.nq(), c.headDim()),
                        DeviceTensor.contiguous(k.address(), t, c.layout(), c.batch(), c.kvHeads(), c.nk(), c.headDim()),
                        DeviceTensor.contiguous(v.address(), t, c.layout(), c.batch(), c.kvHeads(), c.nk(), c.headDim()),
                        DeviceTensor.contiguous(o.address(), t, c.layout(), c.batch(), c.heads(), c.nq(), c.headDim()),
                        0L));
            }
            var launcher = SageInternals.launcher(sage);
            Stream stream = device.defaultStream();
            KernelLoader.Ready ready = launcher.launch(problems.get(0), stream);
            device.synchronize();
            int[] next = {0};
            // Kernel-only int8-fp8 timing re-reads the operands quantized just above (they exceed the L2).
            Runnable call = scope == Scope.KERNEL
                    ? () -> launcher.launchKernelOnly(problems.get(next[0]++ % problems.size()), stream)
                    : () -> launcher.launch(problems.get(next[0]++ % problems.size()), stream);
            EventTimer.Timing timing = time(device, stream, call, warmup, minTotalMs);
            double tops = c.flops() / (timing.medianMs() * 1e-3) / 1e12;
            var report = ready.compiled().report();
            return new Measurement(c, ready.plan().tiles().key(), scope, timing, tops, report.registers(),
                    report.spillStoreBytes() + report.spillLoadBytes(), protocol);
        } finally {
            buffers.forEach(DeviceBuffer::close);
        }
    }

    /**
     * Times a training scope on one set of inputs larger than the L2: the training forward (writing O
     * and the LSE), the backward of one such forward, or both in turn. 16-bit modes run the forward
     * kernel and {@link dev.sagejit.kernel.FlashBackward}; SageBwd runs its quantizers and kernels on one
     * reused workspace (what {@code forwardForTraining} and {@code TrainingContext.backward} launch).
     */
    private Measurement measureTraining(BenchCase c, Scope scope, int warmup, double minTotalMs) {
        var t = c.precision().inputType();
        long qBytes = (long) c.batch() * c.heads() * c.nq() * c.headDim() * t.bytes();
        long kvBytes = (long) c.batch() * c.kvHeads() * c.nk() * c.headDim() * t.bytes();
        var device = sage.device();
        var buffers = new ArrayList<DeviceBuffer>();
        try (var flashWs = new FlashBackward.Workspace(device); var sageWs = new SageBwd.Workspace(device)) {
            short[] qHost = randomBits(qBytes / t.bytes(), t, 1);
            short[] kvHost = randomBits(kvBytes / t.bytes(), t, 2);
            DeviceBuffer q = alloc(buffers, qBytes), k = alloc(buffers, kvBytes), v = alloc(buffers, kvBytes),
                    o = alloc(buffers, qBytes), dO = alloc(buffers, qBytes), dq = alloc(buffers, qBytes),
                    dk = alloc(buffers, kvBytes), dv = alloc(buffers, kvBytes);
            q.copyFromHost(qHost);
            k.copyFromHost(kvHost);
            v.copyFromHost(kvHost);
            dO.copyFromHost(qHost);
            java.util.function.BiFunction<DeviceBuffer, Boolean, DeviceTensor> tensor = (b, isQ) ->
                    DeviceTensor.contiguous(b.address(), t, c.layout(), c.batch(), isQ ? c.heads() : c.kvHeads(),
                            isQ ? c.nq() : c.nk(), c.headDim());
            DeviceTensor tq = tensor.apply(q, true), tk = tensor.apply(k, false), tv = tensor.apply(v, false),
                    to = tensor.apply(o, true), tdo = tensor.apply(dO, true), tdq = tensor.apply(dq, true),
                    tdk = tensor.apply(dk, false), tdv = tensor.apply(dv, false);
            DeviceBuffer lse = alloc(buffers, Math.max(16, FwdProblem.lseBytes(tq)));
            var opts = AttentionOptions.builder().precision(c.precision()).causal(c.causal()).lse(true).build();
            Stream stream = device.defaultStream();
            var launcher = SageInternals.launcher(sage);
            var arch = SageInternals.arch(sage);
            Runnable forward;
            Runnable backward;
            String config;
            if (c.precision().sageBwd()) {
                SageBwd sb = launcher.sageBwd();
                forward = () -> sb.forward(opts, tq, tk, tv, to, lse.address(), arch, stream, sageWs);
                backward = () -> sb.backward(opts, tq, tk, tv, to, tdo, tdq, tdk, tdv, arch, stream, sageWs);
                config = new SageBwdPlan(arch, t, c.headDim(), c.causal()).config();
            } else {
                FlashBackward fb = launcher.flashBackward();
                forward = () -> sage.forward(opts, tq, tk, tv, to, lse.address(), stream);
                backward = () -> fb.enqueue(opts, tq, tk, tv, to, tdo, lse.address(), tdq, tdk, tdv, arch, stream,
                        flashWs);
                config = scope == Scope.BACKWARD ? FlashBwdPlan.CONFIG : "default+" + FlashBwdPlan.CONFIG;
            }
            forward.run();
            Runnable call = switch (scope) {
                case TRAINING_FORWARD -> forward;
                case BACKWARD -> backward;
                case TRAINING_STEP -> () -> {
                    forward.run();
                    backward.run();
                };
                default -> throw new IllegalArgumentException(scope + " is not a training scope");
            };
            call.run();
            device.synchronize();
            EventTimer.Timing timing = time(device, stream, call, warmup, minTotalMs);
            double tops = scope.flopFactor() * c.flops() / (timing.medianMs() * 1e-3) / 1e12;
            return new Measurement(c, config, scope, timing, tops, -1, -1, protocol);
        } finally {
            buffers.forEach(DeviceBuffer::close);
        }
    }

    private DeviceBuffer alloc(List<DeviceBuffer> owned, long bytes) {
        DeviceBuffer b = sage.device().allocate(bytes);
        owned.add(b);
        return b;
    }

    /** Distinct N(0,1) values per benchmark tensor; longer tensors repeat them (timing does not depend on it). */
    static final int RANDOM_PERIOD = 1 << 22;

    private static short[] randomBits(long n, dev.sagejit.api.DType t, long seed) {
        if (n > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("benchmark tensor of " + n + " elements is too large for one host array");
        }
        float[] x = new float[(int) Math.min(n, RANDOM_PERIOD)];
        var rng = new SplittableRandom(seed);
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) rng.nextGaussian();
        }
        short[] period = Half.toBits(x, t);
        short[] out = new short[(int) n];
        for (int i = 0; i < out.length; i += period.length) {
            System.arraycopy(period, 0, out, i, Math.min(period.length, out.length - i));
        }
        return out;
    }

    /** The JSON Lines record of a measurement, in the format of shared/RESULTS.md. */
    public static Map<String, Object> toResultLine(Measurement m, String run, String gpu, String commit) {
        var c = m.bench();
        var line = c.resultKeys(run, gpu, commit, m.config());
        // SageBwd's timings always include its quantizers.
        line.put("scope", c.precision().sageBwd() ? END_TO_END_ID : m.scope().id());
        line.put("direction", m.scope().direction());
        line.put("median_ms", m.timing().medianMs());
        line.put("p20_ms", m.timing().p20Ms());
        line.put("p80_ms", m.timing().p80Ms());
        line.put("tops", m.tops());
        m.protocol().addTo(line);
        if (m.registers() >= 0) {
            line.put("registers", m.registers());
            line.put("spill_bytes", m.spillBytes());
        }
        return line;
    }
}
