package dev.sagejit.reference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sagejit.api.Layout;
import org.junit.jupiter.api.Test;

class MetricsTest {

    @Test
    void identicalVectorsHaveNoError() {
        double[] r = {1, -2, 3};
        Metrics.Errors e = Metrics.of(r.clone(), r);
        assertEquals(1.0, e.cosine(), 1e-15);
        assertEquals(0.0, e.relL1());
        assertEquals(0.0, e.rmse());
        assertEquals(0.0, e.maxAbs());
        assertEquals(0.0, e.relL2());
        assertTrue(e.finite());
    }

    @Test
    void simpleVector() {
        double[] r = {1, 2, 3};
        Metrics.Errors e = Metrics.of(new float[] {1, 2, 4}, r);
        assertEquals(17 / (Math.sqrt(21) * Math.sqrt(14)), e.cosine(), 1e-15);
        assertEquals(1.0 / 6, e.relL1(), 1e-15);
        assertEquals(Math.sqrt(1.0 / 3), e.rmse(), 1e-15);
        assertEquals(1.0, e.maxAbs());
        assertEquals(1 / Math.sqrt(14), e.relL2(), 1e-15);
        assertTrue(e.summary().startsWith("cos=0.99"), e.summary());
        assertEquals(-1.0, Metrics.of(new double[] {-1, -2, -3}, r).cosine(), 1e-15);
    }

    @Test
    void subsetOfIndices() {
        double[] r = {1, 2, 3, 4};
        Metrics.Errors e = Metrics.of(new double[] {100, 2, 3, 5}, r, new int[] {1, 2});
        assertEquals(0.0, e.maxAbs());
        assertEquals(1.0, Metrics.of(new double[] {100, 2, 3, 5}, r, new int[] {3}).maxAbs());
    }

    @Test
    void nanMakesEverythingNan() {
        Metrics.Errors e = Metrics.of(new float[] {1, Float.NaN}, new double[] {1, 2});
        assertTrue(Double.isNaN(e.cosine()));
        assertTrue(Double.isNaN(e.relL1()));
        assertFalse(e.finite());
        assertThrows(IllegalArgumentException.class, () -> Metrics.of(new float[1], new double[2]));
    }

    @Test
    void matchingInfinitiesAndZeros() {
        Metrics.Errors lse = Metrics.of(new float[] {Float.NEGATIVE_INFINITY, 2},
                new double[] {Double.NEGATIVE_INFINITY, 2});
        assertTrue(lse.finite());
        assertEquals(0.0, lse.maxAbs());
        Metrics.Errors wrong = Metrics.of(new float[] {0, 2}, new double[] {Double.NEGATIVE_INFINITY, 2});
        assertFalse(wrong.finite());
        Metrics.Errors zeros = Metrics.of(new double[2], new double[2]);
        assertEquals(1.0, zeros.cosine());
        assertEquals(0.0, zeros.relL1());
        assertEquals(Double.POSITIVE_INFINITY, Metrics.of(new double[] {1}, new double[] {0}).relL1());
    }

    @Test
    void outputOfAnyLayoutAgainstReference() {
        AttentionProblem p = new AttentionProblem(1, 2, 1, 9, 9, 8, true);
        Inputs.Qkv in = Inputs.generate(Inputs.GAUSSIAN, p, Layout.BSHD, 2);
        CpuAttention.Result ref = CpuAttention.forward(p, in.q(), in.k(), in.v());
        HostTensor o = HostTensor.zeros(1, 2, 9, 8, Layout.BHSD);
        for (int i = 0; i < ref.o().length; i++) {
            o.data()[i] = (float) ref.o()[i];
        }
        Metrics.Errors e = Metrics.output(o.toLayout(Layout.BSHD), ref, p);
        assertTrue(e.cosine() > 0.9999999 && e.maxAbs() < 1e-6, e.summary());
        float[] lse = new float[ref.lse().length];
        for (int i = 0; i < lse.length; i++) {
            lse[i] = (float) ref.lse()[i];
        }
        assertTrue(Metrics.lse(lse, ref, p).relL1() < 1e-7);
        CpuAttention.Result rows = CpuAttention.forwardRows(p, in.q(), in.k(), in.v(), new int[] {3});
        assertTrue(Metrics.output(o, rows, p).maxAbs() < 1e-6);
    }
}
