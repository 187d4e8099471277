package dev.sagejit.api;

import dev.sagejit.codegen.TemplateRenderer;
import dev.sagejit.compile.KernelCache;
import dev.sagejit.compile.KernelCompiler;
import dev.sagejit.compile.NvrtcBackends;
import dev.sagejit.kernel.FlashBackward;
import dev.sagejit.kernel.FwdLauncher;
import dev.sagejit.kernel.FwdProblem;
import dev.sagejit.kernel.KernelLoader;
import dev.sagejit.kernel.SageBwd;
import dev.sagejit.kernel.SageInternals;
import dev.sagejit.runtime.CudaDriver;
import dev.sagejit.runtime.Device;
import dev.sagejit.runtime.DeviceBuffer;
import dev.sagejit.runtime.Stream;
import dev.sagejit.spec.Arch;
import dev.sagejit.tune.DeviceFingerprint;
import dev.sagejit.tune.TuningDatabase;
import dev.sagejit.util.Half;
import dev.sagejit.util.Knobs;

/**
 * The entry point: attention on one GPU, with kernels generated, compiled and cached on first use.
 * One instance may be shared by many threads.
 *
 * <pre>{@code
 * try (var sage = SageAttention.open()) {
 *     var opts = AttentionOptions.builder().precision(Precision.BF16).causal(true).build();
 *     sage.forward(opts, q, k, v, o, 0L, null);   // DeviceTensor views of your buffers
 * }
 * }</pre>
 *
 * <p>Tools inside sagejit (the CLI, benchmarks, the tuner) reach the launcher, the target arch and
 * {@code open} with explicit settings through {@code dev.sagejit.kernel.SageInternals}, which is
 * not exported.
 */
public final class SageAttention implements AutoCloseable {
    static {
        SageInternals.install(new SageInternals.Access() {
            @Override
            public SageAttention open(Knobs knobs) {
                return SageAttention.open(knobs);
            }

            @Override
            public FwdLauncher launcher(SageAttention sage) {
                return sage.launcher;
            }
        });
    }

    private final Device device;
    private final KernelLoader loader;
    private final FwdLauncher launcher;

    private SageAttention(Device device, KernelLoader loader, TuningDatabase tuning) {
        this.device = device;
        this.loader = loader;
        this.launcher = new FwdLauncher(loader, tuning);
    }

    /**
     * Opens the GPU and NVRTC named by the system properties and environment ({@code SAGEJIT_DEVICE},
     * {@code SAGEJIT_NVRTC}, {@code SAGEJIT_CACHE_DIR}, ...; see the README).
     *
     * @throws SageException.Unsupported when there is no GPU, no driver or no NVRTC, saying what to
     *                                   install
     */
    public static SageAttention open() {
        return open(Knobs.fromEnvironment());
    }

    /** Opens the GPU {@code knobs.deviceOrdinal()} and the NVRTC that best serves it. */
    private static SageAttention open(Knobs knobs) {
        if (!CudaDriver.available()) {
            throw new SageException.Unsupported("no GPU: " + CudaDriver.unavailableReason()
                    + ". sagejit runs attention on NVIDIA GPUs (sm_80 or newer); the FP64 CPU reference in"
                    + " dev.sagejit.reference works without one");
        }
        Device device = Device.open(knobs.deviceOrdinal());
        try {
            Arch arch = Arch.forDevice(device.major(), device.minor());
            var nvrtc = NvrtcBackends.preferred(knobs, arch);
            var compiler = new KernelCompiler(knobs, nvrtc, new KernelCache(knobs));
            // Tuned tile configs for this GPU and software (sagejit tune writes them); defaults otherwise.
            var fingerprint = DeviceFingerprint.current(device.name(), arch.id(), device.smCount(),
                    device.driverVersion(), nvrtc.version());
            return new SageAttention(device, new KernelLoader(device, compiler, new TemplateRenderer()),
                    new TuningDatabase(knobs, fingerprint));
        } catch (RuntimeException e) {
            device.close();
            throw e;
        }
    }

    /** The GPU this instance runs on (to allocate buffers and create streams on). */
    public Device device() {
        return device;
    }

    /**
     * Attention on device tensors: writes O (and LSE when {@code options.lse()}) and returns without
     * waiting for the GPU. Everything is validated before anything is launched.
     *
     * @param lseAddress FP32 [B, H_q, N_q] buffer, or 0 when no LSE is wanted
     * @param stream     the stream to launch on, or null for the default stream
     */
    public void forward(AttentionOptions options, DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor o,
            long lseAddress, Stream stream) {
        if (options.precision().sageBwd()) {
            throw new SageException.Unsupported(options.precision().id() + " is a training mode: call"
                    + " forwardForTraining (its forward keeps the INT8 operands for the backward); for inference"
                    + " use int8-fp8, or auto");
        }
        var problem = new FwdProblem(options, q, k, v, o, lseAddress); // the launcher resolves AUTO
        device.makeCurrent();
        requireAllocated(problem);
        launcher.launch(problem, stream == null ? device.defaultStream() : stream);
    }

    /** Every tensor of a problem lies in live device memory (after the shape checks, before any launch). */
    private void requireAllocated(FwdProblem p) {
        if (p.batch() == 0 || p.q().seq() == 0) {
            return; // nothing is read or written
        }
        device.requireAllocated(p.q().address(), p.q().extentBytes(), "q");
        device.requireAllocated(p.o().address(), p.o().extentBytes(), "o");
        if (p.k().seq() > 0) {
            device.requireAllocated(p.k().address(), p.k().extentBytes(), "k");
            device.requireAllocated(p.v().address(), p.v().extentBytes(), "v");
        }
        if (p.lseAddress() != 0L) {
            device.requireAllocated(p.lseAddress(), FwdProblem.lseBytes(p.q()), "the LSE buffer");
        }
    }

    /**
     * The forward of a training step: writes O like {@link #forward} and returns what the backward
     * needs (the LSE on the GPU, views of Q, K, V, O); see {@link TrainingContext#backward}. Runs on
     * {@code stream} (null: the default stream) without waiting.
     *
     * <p>BF16 and FP16 run FlashAttention-2's forward and backward; {@link Precision#SAGEBWD} (and its
     * FP16 twin) run SageBwd, six of the seven matmuls in INT8 (docs/sagebwd.md). {@link Precision#AUTO}
     * picks the tensors' 16-bit mode.
     *
     * @throws SageException.Unsupported for the inference-only precisions (int8-fp8, nvfp4)
     */
    public TrainingContext forwardForTraining(AttentionOptions options, DeviceTensor q, DeviceTensor k,
            DeviceTensor v, DeviceTensor o, Stream stream) {
        if (options.precision() == Precision.AUTO && q != null) {
            // The 16-bit mode of the tensors: 8-bit training (sagebwd) is asked for by name.
            options = options.withPrecision(Precision.sixteenBitFor(q.dtype()));
        }
        if (!options.precision().trainable()) {
            throw new SageException.Unsupported("training attention runs bf16, fp16, sagebwd or sagebwd-fp16, not "
                    + options.precision().id() + " (its forward has no backward)");
        }
        var withLse = options.withLse(true);
        Stream s = stream == null ? device.defaultStream() : stream;
        DeviceBuffer lse = device.allocate(Math.max(16, FwdProblem.lseBytes(q)));
        AutoCloseable scratch = null;
        try {
            TrainingContext.BackwardStep step;
            Arch arch = launcher.arch();
            if (withLse.precision().sageBwd()) {
                var problem = new FwdProblem(withLse, q, k, v, o, lse.address());
                device.makeCurrent();
                requireAllocated(problem);
                var sageBwd = launcher.sageBwd();
                var ws = new SageBwd.Workspace(device);
                scratch = ws;
                sageBwd.forward(withLse, q, k, v, o, lse.address(), arch, s, ws);
                step = new TrainingContext.BackwardStep((dO, dq, dk, dv) -> sageBwd.backward(withLse, q, k, v, o, dO, dq, dk, dv,
                        arch, s, ws), ws);
            } else {
                forward(withLse, q, k, v, o, lse.address(), s);
                var backward = launcher.flashBackward();
                var ws = new FlashBackward.Workspace(device);
                scratch = ws;
                step = new TrainingContext.BackwardStep((dO, dq, dk, dv) -> backward.enqueue(withLse, q, k, v, o, dO, lse.address(),
                        dq, dk, dv, arch, s, ws), ws);
            }
            return new TrainingContext(lse, step, device, s);
        } catch (RuntimeException e) {
            closeQuietly(scratch);
            lse.close();
            throw e;
        }
    }

    private static void closeQuietly(AutoCloseable c) {
        if (c != null) {
            try {
                c.close();
            } catch (Exception suppressed) {
                // the original failure is what the caller needs
            }
        }
    }

    /**
     * The concrete precision {@code p} runs as on this GPU with {@code input} tensors: {@code p}
     * itself, or for {@link Precision#AUTO} int8-fp8 (BF16 or FP16 flavour) where the GPU has INT8 and
     * FP8 tensor cores, else BF16 or FP16.
     */
    public Precision resolve(Precision p, DType input) {
        return launcher.arch().resolve(p, input);
    }

    /** Attention on host arrays: copies in, runs, copies out, waits. */
    public HostResult forward(AttentionOptions options, HostQkv in) {
        DType t = options.precision().inputType();
        short[] bits = new short[Math.toIntExact(in.shape().qElements())];
        float[] lse = forwardHost(options, in.shape(), (dq, dk, dv) -> {
            dq.copyFromHost(Half.toBits(in.q(), t));
            dk.copyFromHost(Half.toBits(in.k(), t));
            dv.copyFromHost(Half.toBits(in.v(), t));
        }, dout -> dout.copyToHost(bits));
        return new HostResult(Half.fromBits(bits, t), lse);
    }

    /**
     * Attention on host memory of the precision's 16-bit input type (BF16 for bf16 and the quantized
     * modes that read BF16, FP16 for fp16 and int8-fp8-fp16): copies in, runs, writes O into
     * {@code in.o()}, waits.
     *
     * @return the FP32 log-sum-exp [B, H_q, N_q] when {@code options.lse()}, else null
     */
    public float[] forward(AttentionOptions options, HostSegments in) {
        return forwardHost(options, in.shape(), (dq, dk, dv) -> {
            dq.copyFromHost(in.q());
            dk.copyFromHost(in.k());
            dv.copyFromHost(in.v());
        }, dout -> dout.copyToHost(in.o()));
    }

    private interface Upload {
        void to(DeviceBuffer q, DeviceBuffer k, DeviceBuffer v);
    }

    /** Host inputs through temporary device buffers: upload, forward, wait, download O; returns the LSE or null. */
    private float[] forwardHost(AttentionOptions options, HostShape s, Upload upload,
            java.util.function.Consumer<DeviceBuffer> downloadO) {
        DType t = options.precision().inputType();
        try (DeviceBuffer dq = device.allocate(Math.max(16, s.qElements() * t.bytes()));
                DeviceBuffer dk = device.allocate(Math.max(16, s.kvElements() * t.bytes()));
                DeviceBuffer dv = device.allocate(Math.max(16, s.kvElements() * t.bytes()));
                DeviceBuffer dout = device.allocate(Math.max(16, s.qElements() * t.bytes()));
                DeviceBuffer dl = device.allocate(Math.max(16, 4L * s.lseEntries()))) {
            upload.to(dq, dk, dv);
            Layout l = s.layout();
            var q = DeviceTensor.contiguous(dq.address(), t, l, s.batch(), s.heads(), s.nq(), s.headDim());
            var k = DeviceTensor.contiguous(dk.address(), t, l, s.batch(), s.kvHeads(), s.nk(), s.headDim());
            var v = DeviceTensor.contiguous(dv.address(), t, l, s.batch(), s.kvHeads(), s.nk(), s.headDim());
            var o = DeviceTensor.contiguous(dout.address(), t, l, s.batch(), s.heads(), s.nq(), s.headDim());
            forward(options, q, k, v, o, options.lse() ? dl.address() : 0L, null);
            device.synchronize();
            downloadO.accept(dout);
            if (!options.lse()) {
                return null;
            }
            float[] lse = new float[Math.toIntExact(s.lseEntries())];
            dl.copyToHost(lse);
            return lse;
        }
    }

    @Override
    public void close() {
        launcher.close();
        loader.close();
        device.close();
    }
}
