package dev.sagejit.bench;

import dev.sagejit.api.AttentionOptions;
import dev.sagejit.api.DType;
import dev.sagejit.api.DeviceTensor;
import dev.sagejit.api.Layout;
import dev.sagejit.api.SageAttention;
import dev.sagejit.api.SageException;
import dev.sagejit.kernel.FwdProblem;
import dev.sagejit.reference.AttentionProblem;
import dev.sagejit.reference.CpuAttentionBackward;
import dev.sagejit.reference.HostTensor;
import dev.sagejit.reference.Metrics;
import dev.sagejit.runtime.Device;
import dev.sagejit.runtime.DeviceBuffer;
import dev.sagejit.util.Half;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * sagejit's 16-bit training step on the GPU (the forward with its LSE, then
 * {@link dev.sagejit.kernel.FlashBackward}) against the FP64 gradients of {@link CpuAttentionBackward}
 * on the same (already rounded) inputs: what {@code sagejit run --backward} reports. dK and dV sum
 * over every query row, so the reference is always complete (no sampled rows).
 */
public final class GradientCheck {
    /**
     * Multiply-adds of the FP64 reference above which the check is refused: about a minute and a half
     * on two cores (B1 H4 N1024 D128 takes 3.8e9, about 1.3 s there).
     */
    public static final double MAX_REFERENCE_MACS = 3e11;

    /** What the GPU computed, as FP32 values in BHSD order: O, LSE [B, Hq, Nq] (natural log), dQ, dK, dV. */
    public record Outputs(float[] o, float[] lse, float[] dq, float[] dk, float[] dv) {
        /** Outputs from arrays in {@code layout} order (as copied back from the GPU); the LSE has no layout. */
        public static Outputs fromLayout(AttentionProblem p, Layout layout, float[] o, float[] lse, float[] dq,
                float[] dk, float[] dv) {
            return new Outputs(bhsd(o, p.hq(), p.nq(), p, layout), lse, bhsd(dq, p.hq(), p.nq(), p, layout),
                    bhsd(dk, p.hkv(), p.nk(), p, layout), bhsd(dv, p.hkv(), p.nk(), p, layout));
        }

        private static float[] bhsd(float[] x, int heads, int seq, AttentionProblem p, Layout layout) {
            return new HostTensor(x, p.batch(), heads, seq, p.headDim(), layout).toLayout(Layout.BHSD).data();
        }
    }

    /** Errors of each output against FP64. */
    public record Errors(Metrics.Errors o, Metrics.Errors lse, Metrics.Errors dq, Metrics.Errors dk,
            Metrics.Errors dv) {
        /** Whether every error is finite, O's rel L2 at most {@code oTolerance} and each gradient's at most {@code gradTolerance}. */
        public boolean passes(double oTolerance, double gradTolerance) {
            return o.finite() && o.relL2() <= oTolerance && gradients().stream()
                    .allMatch(e -> e.finite() && e.relL2() <= gradTolerance);
        }

        public List<Metrics.Errors> gradients() {
            return List.of(dq, dk, dv);
        }
    }

    private GradientCheck() {
    }

    /** Multiply-adds of the FP64 forward and backward of {@code p} (7 per query row, key and channel). */
    public static double referenceMacs(AttentionProblem p) {
        return 7.0 * p.batch() * p.hq() * (double) p.nq() * p.nk() * p.headDim();
    }

    /**
     * The FP64 gradients of {@code p} on the CPU.
     *
     * @throws SageException.InvalidInput when they would cost more than {@link #MAX_REFERENCE_MACS}
     */
    public static CpuAttentionBackward.Gradients reference(AttentionProblem p, HostTensor q, HostTensor k, HostTensor v,
            HostTensor dO) {
        requireAffordable(p);
        return CpuAttentionBackward.compute(p, q, k, v, dO);
    }

    /** Refuses problems whose FP64 gradients would take minutes of CPU, before any GPU work. */
    public static void requireAffordable(AttentionProblem p) {
        double macs = referenceMacs(p);
        if (macs > MAX_REFERENCE_MACS) {
            throw new SageException.InvalidInput(String.format(Locale.ROOT, "the FP64 gradients of %s need %.1e"
                    + " multiply-adds on the CPU (at most %.0e, about a minute and a half on two cores); dK and dV sum"
                    + " over every query row, so rows cannot be sampled: check a smaller problem, e.g. 1x4x1024x128",
                    p, macs, MAX_REFERENCE_MACS));
        }
    }

    /**
     * Runs one training step on the GPU (the public {@link SageAttention#forwardForTraining} and
     * {@link dev.sagejit.api.TrainingContext#backward}) and copies every output back; the inputs must
     * already be rounded to {@code options}' 16-bit type and share one layout.
     */
    public static Outputs run(SageAttention sage, AttentionOptions options, AttentionProblem p, HostTensor q,
            HostTensor k, HostTensor v, HostTensor dO) {
        DType t = options.precision().inputType();
        Device dev = sage.device();
        var owned = new ArrayList<DeviceBuffer>();
        try {
            DeviceBuffer bq = upload(dev, owned, q, t), bk = upload(dev, owned, k, t), bv = upload(dev, owned, v, t),
                    bdo = upload(dev, owned, dO, t), bo = allocate(dev, owned, q, t), bdq = allocate(dev, owned, q, t),
                    bdk = allocate(dev, owned, k, t), bdv = allocate(dev, owned, v, t);
            var tq = tensor(bq, q, t);
            float[] lseHost = new float[Math.toIntExact(FwdProblem.lseBytes(tq) / Float.BYTES)];
            try (var step = sage.forwardForTraining(options, tq, tensor(bk, k, t), tensor(bv, v, t), tensor(bo, q, t),
                    dev.defaultStream())) {
                step.backward(tensor(bdo, dO, t), tensor(bdq, q, t), tensor(bdk, k, t), tensor(bdv, v, t));
                dev.defaultStream().synchronize();
                DeviceBuffer.wrap(dev, step.lseAddress(), (long) Float.BYTES * lseHost.length).copyToHost(lseHost);
            }
            return Outputs.fromLayout(p, q.layout(), download(bo, q, t), lseHost, download(bdq, q, t),
                    download(bdk, k, t), download(bdv, v, t));
        } finally {
            owned.forEach(DeviceBuffer::close);
        }
    }

    /** The errors of {@code out} against the FP64 reference (every element). */
    public static Errors compare(Outputs out, CpuAttentionBackward.Gradients ref) {
        return new Errors(Metrics.of(out.o(), ref.o()), Metrics.of(out.lse(), ref.lse()), Metrics.of(out.dq(), ref.dq()),
                Metrics.of(out.dk(), ref.dk()), Metrics.of(out.dv(), ref.dv()));
    }

    /** A device buffer for a 16-bit copy of {@code like}, closed with the others of the call. */
    private static DeviceBuffer allocate(Device dev, List<DeviceBuffer> owned, HostTensor like, DType t) {
        DeviceBuffer b = dev.allocate(Math.max(16, (long) t.bytes() * like.data().length));
        owned.add(b);
        return b;
    }

    private static DeviceBuffer upload(Device dev, List<DeviceBuffer> owned, HostTensor x, DType t) {
        DeviceBuffer b = allocate(dev, owned, x, t);
        b.copyFromHost(Half.toBits(x.data(), t));
        return b;
    }

    private static DeviceTensor tensor(DeviceBuffer b, HostTensor like, DType t) {
        return DeviceTensor.contiguous(b.address(), t, like.layout(), like.batch(), like.heads(), like.seq(),
                like.headDim());
    }

    private static float[] download(DeviceBuffer b, HostTensor like, DType t) {
        short[] bits = new short[like.data().length];
        b.copyToHost(bits);
        return Half.fromBits(bits, t);
    }
}
