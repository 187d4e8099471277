package dev.sagejit.kernel;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sagejit.api.AttentionOptions;
import dev.sagejit.api.DType;
import dev.sagejit.api.Layout;
import dev.sagejit.api.Precision;
import dev.sagejit.bench.Accuracy;
import dev.sagejit.reference.AttentionProblem;
import dev.sagejit.reference.CpuAttentionBackward;
import dev.sagejit.reference.HostTensor;
import dev.sagejit.reference.Inputs;
import dev.sagejit.reference.Metrics;
import dev.sagejit.runtime.DeviceBuffer;
import java.util.Locale;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The 16-bit backward on the GPU against FP64 gradients: sagejit's forward gives O and the LSE,
 * the backward dQ, dK and dV, compared with {@link CpuAttentionBackward} on the same (rounded) inputs.
 */
@Tag("gpu")
class FlashBackwardGpuTest extends dev.sagejit.testing.GpuSession {
    record Case(String name, Precision precision, AttentionProblem p, Layout layout) {
        @Override
        public String toString() {
            return name;
        }
    }

    static Stream<Arguments> cases() {
        return Stream.of(
                new Case("bf16 d128 gqa ragged", Precision.BF16, new AttentionProblem(1, 4, 2, 200, 333, 128, false),
                        Layout.BHSD),
                new Case("bf16 d128 causal", Precision.BF16, new AttentionProblem(1, 2, 2, 256, 256, 128, true),
                        Layout.BHSD),
                new Case("fp16 d64 causal gqa bshd", Precision.FP16, new AttentionProblem(2, 2, 1, 130, 190, 64, true),
                        Layout.BSHD),
                new Case("bf16 d64 causal nq > nk", Precision.BF16, new AttentionProblem(1, 2, 2, 300, 100, 64, true),
                        Layout.BHSD))
                .map(Arguments::of);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void gradientsMatchFp64(Case c) {
        var p = c.p();
        DType t = c.precision().inputType();
        var raw = Inputs.generate(Inputs.GAUSSIAN, p, c.layout(), 41);
        HostTensor q = raw.q().roundTo(t), k = raw.k().roundTo(t), v = raw.v().roundTo(t);
        HostTensor dO = Inputs.gradient(p, c.layout(), 42).roundTo(t);
        var dev = sage.device();
        var opts = AttentionOptions.builder().precision(c.precision()).causal(p.causal()).lse(true).build();
        try (DeviceBuffer dq = DeviceCopies.upload(dev, q, t); DeviceBuffer dk = DeviceCopies.upload(dev, k, t);
                DeviceBuffer dv = DeviceCopies.upload(dev, v, t); DeviceBuffer dgo = DeviceCopies.upload(dev, dO, t);
                DeviceBuffer dout = dev.allocate(2L * q.data().length);
                DeviceBuffer dlse = dev.allocate(4L * p.batch() * p.hq() * p.nq());
                DeviceBuffer gq = dev.allocate(2L * q.data().length); DeviceBuffer gk = dev.allocate(2L * k.data().length);
                DeviceBuffer gv = dev.allocate(2L * v.data().length)) {
            var tq = DeviceCopies.tensor(dq, t, q);
            var tk = DeviceCopies.tensor(dk, t, k);
            var tv = DeviceCopies.tensor(dv, t, v);
            var to = DeviceCopies.tensor(dout, t, q);
            sage.forward(opts, tq, tk, tv, to, dlse.address(), null);
            SageInternals.launcher(sage).flashBackward().backward(opts, tq, tk, tv, to, DeviceCopies.tensor(dgo, t, dO), dlse.address(),
                    DeviceCopies.tensor(gq, t, q), DeviceCopies.tensor(gk, t, k), DeviceCopies.tensor(gv, t, v),
                    SageInternals.arch(sage), dev.defaultStream());
            var ref = CpuAttentionBackward.compute(p, q, k, v, dO);
            var eq = Metrics.of(download(gq, t, q), ref.dq());
            var ek = Metrics.of(download(gk, t, k), ref.dk());
            var ev = Metrics.of(download(gv, t, v), ref.dv());
            System.out.printf(Locale.ROOT, "backward %s: dQ %s | dK %s | dV %s%n", c, eq.summary(), ek.summary(),
                    ev.summary());
            double tol = Accuracy.backwardTolerance(c.precision());
            for (var e : new Metrics.Errors[] {eq, ek, ev}) {
                assertTrue(e.finite() && e.relL2() <= tol && e.cosine() >= 0.999, c + ": dQ " + eq.summary() + " | dK "
                        + ek.summary() + " | dV " + ev.summary());
            }
        }
    }

    /** The training API: forwardForTraining keeps the LSE, its context's backward gives the same gradients. */
    @org.junit.jupiter.api.Test
    void trainingContextRunsTheBackward() {
        var p = new AttentionProblem(1, 4, 2, 150, 220, 64, true);
        DType t = DType.BF16;
        var raw = Inputs.generate(Inputs.GAUSSIAN, p, Layout.BHSD, 43);
        HostTensor q = raw.q().roundTo(t), k = raw.k().roundTo(t), v = raw.v().roundTo(t);
        HostTensor dO = Inputs.gradient(p, Layout.BHSD, 44).roundTo(t);
        var dev = sage.device();
        var opts = AttentionOptions.builder().precision(Precision.BF16).causal(true).build();
        try (DeviceBuffer dq = DeviceCopies.upload(dev, q, t); DeviceBuffer dk = DeviceCopies.upload(dev, k, t);
                DeviceBuffer dv = DeviceCopies.upload(dev, v, t); DeviceBuffer dgo = DeviceCopies.upload(dev, dO, t);
                DeviceBuffer dout = dev.allocate(2L * q.data().length);
                DeviceBuffer gq = dev.allocate(2L * q.data().length); DeviceBuffer gk = dev.allocate(2L * k.data().length);
                DeviceBuffer gv = dev.allocate(2L * v.data().length)) {
            try (var ctx = sage.forwardForTraining(opts, DeviceCopies.tensor(dq, t, q), DeviceCopies.tensor(dk, t, k),
                    DeviceCopies.tensor(dv, t, v), DeviceCopies.tensor(dout, t, q), null)) {
                ctx.backward(DeviceCopies.tensor(dgo, t, dO), DeviceCopies.tensor(gq, t, q), DeviceCopies.tensor(gk, t, k),
                        DeviceCopies.tensor(gv, t, v));
            }
            var ref = CpuAttentionBackward.compute(p, q, k, v, dO);
            for (var e : new Metrics.Errors[] {Metrics.of(download(gq, t, q), ref.dq()),
                    Metrics.of(download(gk, t, k), ref.dk()), Metrics.of(download(gv, t, v), ref.dv())}) {
                assertTrue(e.finite() && e.relL2() <= Accuracy.backwardTolerance(Precision.BF16)
                        && e.cosine() >= 0.999, e.summary());
            }
        }
    }

    /** A 16-bit gradient copied back, as FP32 values in BHSD order (the reference's). */
    private static float[] download(DeviceBuffer b, DType t, HostTensor like) {
        short[] bits = new short[like.data().length];
        b.copyToHost(bits);
        return HostTensor.fromBits(bits, t, like.batch(), like.heads(), like.seq(), like.headDim(), like.layout())
                .toLayout(Layout.BHSD).data();
    }
}
