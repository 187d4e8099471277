package dev.sagejit.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sagejit.api.DType;
import dev.sagejit.api.Layout;
import dev.sagejit.api.SageException;
import dev.sagejit.reference.AttentionProblem;
import dev.sagejit.reference.CpuAttentionBackward;
import dev.sagejit.reference.HostTensor;
import dev.sagejit.reference.Inputs;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The FP64 side of {@code run --backward} without a GPU: layouts, errors, the size guard and the result lines. */
class GradientCheckTest {
    private static final AttentionProblem P = new AttentionProblem(1, 4, 2, 48, 64, 32, true);

    /** FP64 values as float32 in {@code layout} order, as a GPU would hand them back. */
    private static float[] inLayout(double[] bhsd, int heads, int seq, Layout layout) {
        float[] f = new float[bhsd.length];
        for (int i = 0; i < f.length; i++) {
            f[i] = (float) bhsd[i];
        }
        return new HostTensor(f, P.batch(), heads, seq, P.headDim(), Layout.BHSD).toLayout(layout).data();
    }

    private static CpuAttentionBackward.Gradients reference(Layout layout) {
        var in = Inputs.generate(Inputs.GAUSSIAN, P, layout, 3);
        var t = DType.BF16;
        return GradientCheck.reference(P, in.q().roundTo(t), in.k().roundTo(t), in.v().roundTo(t),
                Inputs.gradient(P, layout, 4).roundTo(t));
    }

    private static GradientCheck.Outputs outputs(CpuAttentionBackward.Gradients ref, Layout layout) {
        float[] lse = new float[ref.lse().length];
        for (int i = 0; i < lse.length; i++) {
            lse[i] = (float) ref.lse()[i];
        }
        return GradientCheck.Outputs.fromLayout(P, layout, inLayout(ref.o(), P.hq(), P.nq(), layout), lse,
                inLayout(ref.dq(), P.hq(), P.nq(), layout), inLayout(ref.dk(), P.hkv(), P.nk(), layout),
                inLayout(ref.dv(), P.hkv(), P.nk(), layout));
    }

    @Test
    void outputsInEitherLayoutAreComparedInTheReferenceOrder() {
        var ref = reference(Layout.BSHD);
        for (Layout layout : Layout.values()) {
            var e = GradientCheck.compare(outputs(ref, layout), ref);
            for (var m : List.of(e.o(), e.lse(), e.dq(), e.dk(), e.dv())) {
                assertTrue(m.finite() && m.relL2() < 1e-6 && m.cosine() > 0.999999, layout + ": " + m.summary());
            }
            assertTrue(e.passes(1e-6, 1e-6), layout.toString());
        }
    }

    @Test
    void gradientsInTheWrongOrderFail() {
        var ref = reference(Layout.BHSD);
        var right = outputs(ref, Layout.BSHD);
        // BSHD arrays taken for BHSD ones: the reference order is not restored
        var wrong = GradientCheck.Outputs.fromLayout(P, Layout.BHSD, inLayout(ref.o(), P.hq(), P.nq(), Layout.BSHD),
                right.lse(), inLayout(ref.dq(), P.hq(), P.nq(), Layout.BSHD),
                inLayout(ref.dk(), P.hkv(), P.nk(), Layout.BSHD), inLayout(ref.dv(), P.hkv(), P.nk(), Layout.BSHD));
        var e = GradientCheck.compare(wrong, ref);
        assertTrue(e.dq().relL2() > 0.5 && e.dk().relL2() > 0.5, e.dq().summary());
        assertFalse(e.passes(1e-2, 3e-2));
    }

    @Test
    void aBarelyMissedToleranceFailsAndNanFails() {
        var ref = reference(Layout.BHSD);
        var good = outputs(ref, Layout.BHSD);
        var e = GradientCheck.compare(good, ref);
        assertTrue(e.passes(1e-2, 3e-2));
        float[] dv = good.dv().clone();
        dv[5] = Float.NaN;
        var nan = GradientCheck.compare(new GradientCheck.Outputs(good.o(), good.lse(), good.dq(), good.dk(), dv), ref);
        assertFalse(nan.passes(1e-2, 3e-2));
        float[] dq = good.dq().clone();
        for (int i = 0; i < dq.length; i++) {
            dq[i] *= 1.05f; // 5% off: above BF16's 3% bar
        }
        var off = GradientCheck.compare(new GradientCheck.Outputs(good.o(), good.lse(), dq, good.dk(), good.dv()), ref);
        assertEquals(0.05, off.dq().relL2(), 1e-6);
        assertFalse(off.passes(1e-2, Accuracy.backwardTolerance(dev.sagejit.api.Precision.BF16)));
        assertTrue(off.passes(1e-2, 0.06));
    }

    @Test
    void referencesThatWouldTakeMinutesAreRefusedWithASmallerShapeSuggested() {
        assertEquals(7.0 * 4 * 1024 * 1024 * 128, GradientCheck.referenceMacs(AttentionProblem.parse("1x4x1024x128",
                false, Double.NaN)));
        GradientCheck.requireAffordable(AttentionProblem.parse("1x4x1024x128", true, Double.NaN));
        var big = AttentionProblem.parse("4x32x4096x128", false, Double.NaN);
        var e = assertThrows(SageException.InvalidInput.class, () -> GradientCheck.requireAffordable(big));
        assertTrue(e.getMessage().contains("1x4x1024x128") && e.getMessage().contains("cannot be sampled"),
                e.getMessage());
    }

    @Test
    void resultLinesNameTheTensorAndDirection() {
        var ref = reference(Layout.BHSD);
        var e = GradientCheck.compare(outputs(ref, Layout.BHSD), ref);
        var lines = AccuracyLines.gradients("r", "NVIDIA H200", "abc", "sagejit", "bf16", P, "gaussian", e.o(), e.dq(),
                e.dk(), e.dv(), Map.of("rows_checked", "all"));
        assertEquals(20, lines.size());
        for (var line : lines) {
            boolean o = line.get("tensor").equals("O");
            assertEquals(o ? "fwd" : "bwd", line.get("direction"));
            assertEquals("fp64-cpu", line.get("reference"));
            assertEquals("all", line.get("rows_checked"));
        }
        assertEquals(List.of("O", "dQ", "dK", "dV"), lines.stream().map(l -> (String) l.get("tensor")).distinct()
                .toList());
        assertEquals(List.of("cosine", "rel_l1", "rel_l2", "rmse", "max_abs"), lines.subList(0, 5).stream()
                .map(l -> (String) l.get("metric")).toList());
    }
}
