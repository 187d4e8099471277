package dev.sagejit.kernel;

import dev.sagejit.api.AttentionOptions;
import dev.sagejit.api.DeviceTensor;
import dev.sagejit.api.SageException.InvalidInput;
import dev.sagejit.runtime.DeviceBuffer;
import dev.sagejit.runtime.KernelArgs;
import dev.sagejit.runtime.LaunchGeometry;
import dev.sagejit.runtime.LoadedKernel;
import dev.sagejit.runtime.Stream;
import dev.sagejit.spec.Arch;

/**
 * The 16-bit attention backward ({@link FlashBwdPlan}): dQ, dK and dV of a forward call from Q, K,
 * V, its O and LSE, and dO. Causal masks and GQA as in the forward (dK and dV sum over the query
 * heads of a group). Needs FP32 scratch of B x H_q x N_q x (D + 1) values ({@link Workspace}).
 */
public final class FlashBackward {
    private final KernelLoader loader;

    FlashBackward(KernelLoader loader) {
        this.loader = loader;
    }

    /** FP32 scratch of the backward: D per query row and the dQ accumulator; grown on demand, reused. */
    public static final class Workspace implements AutoCloseable {
        private final dev.sagejit.runtime.Device device;
        private DeviceBuffer delta;
        private DeviceBuffer dqAcc;

        public Workspace(dev.sagejit.runtime.Device device) {
            this.device = device;
        }

        void ensure(long rows, int headDim) {
            if (delta == null || delta.bytes() < 4 * rows) {
                close(delta);
                delta = device.allocate(Math.max(16, 4 * rows));
            }
            if (dqAcc == null || dqAcc.bytes() < 4 * rows * headDim) {
                close(dqAcc);
                dqAcc = device.allocate(Math.max(16, 4 * rows * headDim));
            }
        }

        private static void close(DeviceBuffer b) {
            if (b != null) {
                b.close();
            }
        }

        @Override
        public void close() {
            close(delta);
            close(dqAcc);
            delta = dqAcc = null;
        }
    }

    /**
     * Writes dQ (shaped like Q), dK and dV (shaped like K) and waits for the GPU; its scratch is
     * allocated and freed within the call.
     *
     * @param options    precision BF16 or FP16 (every tensor's type), causal mask and softmax scale of
     *                   the forward call
     * @param lseAddress the forward's FP32 LSE [B, H_q, N_q] (natural log)
     */
    public void backward(AttentionOptions options, DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor o,
            DeviceTensor dO, long lseAddress, DeviceTensor dq, DeviceTensor dk, DeviceTensor dv, Arch arch,
            Stream stream) {
        try (var ws = new Workspace(loader.device())) {
            enqueue(options, q, k, v, o, dO, lseAddress, dq, dk, dv, arch, stream, ws);
            stream.synchronize();
        }
    }

    /**
     * {@link #backward} without waiting, on the caller's workspace: calls that share a workspace must
     * run on one stream, one after another (benchmarks time this).
     */
    public void enqueue(AttentionOptions options, DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor o,
            DeviceTensor dO, long lseAddress, DeviceTensor dq, DeviceTensor dk, DeviceTensor dv, Arch arch,
            Stream stream, Workspace ws) {
        if (!options.precision().sixteenBit()) {
            throw new InvalidInput("the 16-bit backward runs bf16 or fp16, not " + options.precision().id()
                    + " (sagebwd's 8-bit backward runs through SageAttention.forwardForTraining)");
        }
        var fwd = checkGradients(options, q, k, v, o, dO, dq, dk, dv, lseAddress);
        var plan = new FlashBwdPlan(arch, options.precision().inputType(), q.headDim(), options.causal());
        int b = q.batch(), hq = q.heads(), nq = q.seq(), nk = k.seq(), d = q.headDim();
        double scale = options.effectiveScale(d);
        ws.ensure((long) b * hq * nq, d);
        DeviceBuffer delta = ws.delta, dqAcc = ws.dqAcc;
        prep(plan, o, dO, delta, dqAcc, stream);
        if (nk > 0) {
            var args = KernelArgs.builder().ptr(q.address()).ptr(k.address()).ptr(v.address()).ptr(dO.address())
                    .ptr(lseAddress).ptr(delta.address()).ptr(dqAcc.address()).ptr(dk.address()).ptr(dv.address());
            for (DeviceTensor t : new DeviceTensor[] {q, k, v, dO, dk, dv}) {
                args.i64(t.batchStride()).i64(t.headStride()).i64(t.seqStride());
            }
            args.i32(nq).i32(nk).i32(hq).i32(fwd.group()).f32((float) scale).f32(options.scaleLog2(d));
            LoadedKernel main = kernel(plan, plan.entry());
            main.launch(new LaunchGeometry((nk + FlashBwdPlan.BLOCK - 1) / FlashBwdPlan.BLOCK, k.heads(), b,
                    FlashBwdPlan.THREADS, 1, 1, plan.sharedBytes()), stream, args.build());
        }
        convertDq(plan, dqAcc, dq, scale, stream);
    }

    /**
     * Validates a backward call before anything is launched: the forward's tensors and LSE like a
     * forward call's, dO and dQ shaped like Q, dK and dV like K. Returns the forward's problem.
     */
    static FwdProblem checkGradients(AttentionOptions options, DeviceTensor q, DeviceTensor k, DeviceTensor v,
            DeviceTensor o, DeviceTensor dO, DeviceTensor dq, DeviceTensor dk, DeviceTensor dv, long lseAddress) {
        var lseOn = options.withLse(true);
        var fwd = new FwdProblem(lseOn, q, k, v, o, lseAddress);
        new FwdProblem(lseOn, dO, dk, dv, dq, lseAddress); // dO, dQ like Q; dK, dV like K: same checks
        if (dO.heads() != q.heads() || dO.seq() != q.seq() || dk.heads() != k.heads() || dk.seq() != k.seq()
                || dO.batch() != q.batch()) {
            throw new InvalidInput("dO and dQ must be shaped like Q, dK and dV like K");
        }
        return fwd;
    }

    /** D = rowsum(dO * O) per query row into {@code delta}, and the FP32 dQ accumulator zeroed. */
    void prep(FlashBwdPlan plan, DeviceTensor o, DeviceTensor dO, DeviceBuffer delta, DeviceBuffer dqAcc,
            Stream stream) {
        int nq = o.seq();
        if (nq == 0) {
            return;
        }
        kernel(plan, plan.prepEntry()).launch(new LaunchGeometry((nq + FlashBwdPlan.PREP_ROWS - 1)
                / FlashBwdPlan.PREP_ROWS, o.heads(), o.batch(), FlashBwdPlan.THREADS, 1, 1, 0), stream,
                KernelArgs.builder().ptr(o.address()).ptr(dO.address()).ptr(delta.address()).ptr(dqAcc.address())
                        .i64(o.batchStride()).i64(o.headStride()).i64(o.seqStride())
                        .i64(dO.batchStride()).i64(dO.headStride()).i64(dO.seqStride()).i32(nq).build());
    }

    /** dQ = scale * the FP32 accumulator, in dQ's type and layout. */
    void convertDq(FlashBwdPlan plan, DeviceBuffer dqAcc, DeviceTensor dq, double scale, Stream stream) {
        int nq = dq.seq();
        if (nq == 0) {
            return;
        }
        long perThread = (long) nq * dq.headDim() / FlashBwdPlan.DQ_ELEMS;
        kernel(plan, plan.dqEntry()).launch(new LaunchGeometry((int) ((perThread + FlashBwdPlan.THREADS - 1)
                / FlashBwdPlan.THREADS), dq.heads(), dq.batch(), FlashBwdPlan.THREADS, 1, 1, 0), stream,
                KernelArgs.builder().ptr(dqAcc.address()).ptr(dq.address()).i64(dq.batchStride())
                        .i64(dq.headStride()).i64(dq.seqStride()).i32(nq).f32((float) scale).build());
    }

    private LoadedKernel kernel(FlashBwdPlan plan, String entry) {
        return loader.auxKernel(plan.key(), () -> KernelLoader.source(loader.renderer(), plan), plan.arch(), entry);
    }
}
