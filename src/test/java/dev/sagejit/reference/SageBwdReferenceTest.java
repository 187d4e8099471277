package dev.sagejit.reference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sagejit.api.Layout;
import java.util.Locale;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.api.Test;

/**
 * The FP64 gradients (against finite differences and the forward reference) and the SageBwd
 * emulation (exact without quantization; within issue 5's bars with it; the Table 1c ablation).
 */
class SageBwdReferenceTest {
    private record Case(AttentionProblem p, HostTensor q, HostTensor k, HostTensor v, HostTensor dO) {
    }

    private static Case inputs(String family, AttentionProblem p, long seed) {
        var in = Inputs.generate(family, p, Layout.BHSD, seed);
        var dO = Inputs.gradient(p, Layout.BHSD, seed + 1);
        return new Case(p, in.q(), in.k(), in.v(), dO);
    }

    /** L = sum(O * dO) in FP64 (the loss whose gradients the backward computes). */
    private static double loss(Case c, HostTensor q, HostTensor k, HostTensor v) {
        double[] o = CpuAttention.forward(c.p(), q, k, v).o();
        double sum = 0;
        for (int n = 0; n < o.length; n++) {
            sum += o[n] * c.dO().data()[n];
        }
        return sum;
    }

    @ParameterizedTest(name = "causal={0}")
    @MethodSource("masks")
    void fp64GradientsMatchFiniteDifferences(boolean causal) {
        var p = new AttentionProblem(1, 4, 2, 9, 13, 16, causal);
        Case c = inputs(Inputs.GAUSSIAN, p, 5);
        var g = CpuAttentionBackward.compute(p, c.q(), c.k(), c.v(), c.dO());
        var fwd = CpuAttention.forward(p, c.q(), c.k(), c.v());
        assertTrue(Metrics.of(g.o(), fwd.o()).maxAbs() < 1e-12, "O equals the forward reference's");
        var rnd = new Random(11);
        float h = 1f / 512;
        HostTensor[] inputs = {c.q(), c.k(), c.v()};
        double[][] grads = {g.dq(), g.dk(), g.dv()};
        for (int t = 0; t < 3; t++) {
            for (int trial = 0; trial < 6; trial++) {
                int n = rnd.nextInt(inputs[t].data().length);
                HostTensor plus = copy(inputs[t]), minus = copy(inputs[t]);
                plus.data()[n] += h;
                minus.data()[n] -= h;
                double lp = t == 0 ? loss(c, plus, c.k(), c.v()) : t == 1 ? loss(c, c.q(), plus, c.v())
                        : loss(c, c.q(), c.k(), plus);
                double lm = t == 0 ? loss(c, minus, c.k(), c.v()) : t == 1 ? loss(c, c.q(), minus, c.v())
                        : loss(c, c.q(), c.k(), minus);
                double numeric = (lp - lm) / (2 * h);
                assertEquals(numeric, grads[t][n], 2e-4 + 2e-3 * Math.abs(numeric),
                        "dL/d" + "QKV".charAt(t) + "[" + n + "]");
            }
        }
    }

    static Stream<Boolean> masks() {
        return Stream.of(false, true);
    }

    private static HostTensor copy(HostTensor t) {
        return new HostTensor(t.data().clone(), t.batch(), t.heads(), t.seq(), t.headDim(), t.layout());
    }

    private record Errors(Metrics.Errors o, Metrics.Errors dq, Metrics.Errors dk, Metrics.Errors dv) {
        String summary() {
            return String.format(Locale.ROOT, "O %s | dQ %s | dK %s | dV %s", o.summary(), dq.summary(), dk.summary(),
                    dv.summary());
        }
    }

    private static Errors errors(Case c, SageBwdReference.Options options) {
        var ref = CpuAttentionBackward.compute(c.p(), c.q(), c.k(), c.v(), c.dO());
        var out = SageBwdReference.compute(c.p(), c.q(), c.k(), c.v(), c.dO(), options);
        var e = new Errors(Metrics.of(out.o(), ref.o()), Metrics.of(out.dq(), ref.dq()), Metrics.of(out.dk(), ref.dk()),
                Metrics.of(out.dv(), ref.dv()));
        var lse = Metrics.of(out.lse(), ref.lse());
        System.out.printf(Locale.ROOT, "SageBwd %-16s %-36s %s: %s | LSE maxAbs %.2e%n", "", c.p(), options,
                e.summary(), lse.maxAbs());
        return e;
    }

    @Test
    void withoutQuantizationTheEmulationIsFp32Arithmetic() {
        var p = new AttentionProblem(1, 4, 2, 200, 333, 64, true);
        Case c = inputs(Inputs.K_CHANNEL_OFFSET, p, 21);
        var opts = SageBwdReference.Options.DEFAULT.withQuantize(false);
        Errors e = errors(c, opts);
        // K smoothing is on: in exact math it changes no gradient, so only FP32 rounding is left.
        for (var m : new Metrics.Errors[] {e.o(), e.dq(), e.dk(), e.dv()}) {
            assertTrue(m.relL2() < 2e-5, e.summary());
        }
        var out = SageBwdReference.compute(p, c.q(), c.k(), c.v(), c.dO(), opts);
        var ref = CpuAttentionBackward.compute(p, c.q(), c.k(), c.v(), c.dO());
        assertTrue(Metrics.of(out.lse(), ref.lse()).maxAbs() < 1e-4, "the LSE gets the smoothing shift back");
    }

    static Stream<Arguments> barCases() {
        return Stream.of(Arguments.of(Inputs.GAUSSIAN, new AttentionProblem(1, 2, 2, 1024, 1024, 128, false)),
                Arguments.of(Inputs.K_CHANNEL_OFFSET, new AttentionProblem(1, 2, 2, 1024, 1024, 128, false)),
                Arguments.of(Inputs.GAUSSIAN, new AttentionProblem(1, 4, 2, 300, 500, 64, true)),
                Arguments.of(Inputs.K_CHANNEL_OFFSET, new AttentionProblem(1, 4, 1, 256, 256, 64, true)));
    }

    /**
     * Issue 5's bars against FP64: cosine >= 0.998 and relative L1 <= 0.06 for dQ, dK and dV on
     * Gaussian and channel-offset inputs. Calibration (an independent NumPy emulation, N 1024 D 128,
     * Gaussian, 64 x 64 tiles): dQ 0.9988 / 0.049, dK 0.9988 / 0.049, dV 0.9992 / 0.041, O 0.9998 / 0.019.
     */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("barCases")
    void gradientsMeetTheBars(String family, AttentionProblem p) {
        Errors e = errors(inputs(family, p, 2024), SageBwdReference.Options.DEFAULT);
        for (var m : new Metrics.Errors[] {e.dq(), e.dk(), e.dv()}) {
            assertTrue(m.cosine() >= 0.998 && m.relL1() <= 0.06, family + " " + p + ": " + e.summary());
        }
        assertTrue(e.o().cosine() >= 0.999 && e.o().relL1() <= 0.04, e.summary());
    }

    /**
     * The paper's Table 1c: dO V^T in INT8 costs dQ (and dK) accuracy that the 16-bit product keeps. On
     * Gaussian inputs the cost is small (measured dQ relative L1 0.0473 against 0.0455); the paper's
     * real layers lose more (dQ cosine 0.9747 against 0.9977).
     */
    @Test
    void int8DoVIsWorseForDq() {
        Case c = inputs(Inputs.GAUSSIAN, new AttentionProblem(1, 2, 2, 512, 512, 128, false), 7);
        Errors fp16 = errors(c, SageBwdReference.Options.DEFAULT);
        Errors int8 = errors(c, SageBwdReference.Options.DEFAULT.withInt8DoV(true));
        assertTrue(int8.dq().relL1() > fp16.dq().relL1(), int8.summary() + " vs " + fp16.summary());
        assertTrue(int8.dk().relL1() > fp16.dk().relL1(), int8.summary() + " vs " + fp16.summary());
        assertTrue(int8.dq().cosine() < fp16.dq().cosine(), int8.summary() + " vs " + fp16.summary());
    }

    /**
     * Heavy-tailed inputs (Student-t, no bar in issue 5): large score gaps make whole key blocks
     * negligible (their P~ scale underflows to 0), which must not turn into NaN; and one outlier sets
     * the INT8 scale of a whole 64-row block, so the spec's per-block granularity loses much of dQ
     * there (measured O cosine 0.983, dQ 0.69, dK 0.95 at N 512 D 128 causal).
     */
    @Test
    void heavyTailsStayFinite() {
        Errors e = errors(inputs(Inputs.HEAVY_TAIL, new AttentionProblem(1, 2, 2, 512, 512, 128, true), 13),
                SageBwdReference.Options.DEFAULT);
        for (var m : new Metrics.Errors[] {e.o(), e.dq(), e.dk(), e.dv()}) {
            assertTrue(m.finite(), e.summary());
        }
        assertTrue(e.o().cosine() >= 0.95, e.summary());
    }

    /** Without K smoothing, a channel offset in K inflates K's INT8 scales and the errors of dQ. */
    @Test
    void kSmoothingHelpsOnChannelOffsets() {
        Case c = inputs(Inputs.K_CHANNEL_OFFSET, new AttentionProblem(1, 2, 2, 512, 512, 128, false), 9);
        Errors smooth = errors(c, SageBwdReference.Options.DEFAULT);
        Errors raw = errors(c, SageBwdReference.Options.DEFAULT.withSmoothK(false));
        assertTrue(raw.dq().relL1() > 1.2 * smooth.dq().relL1(), raw.summary() + " vs " + smooth.summary());
    }
}
