package dev.sagejit.reference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sagejit.api.Layout;
import java.util.Arrays;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.api.Test;

class CpuAttentionTest {

    static Stream<AttentionProblem> problems() {
        return Stream.of(
                new AttentionProblem(1, 2, 2, 5, 5, 8, false),
                new AttentionProblem(2, 2, 2, 6, 6, 4, true),
                new AttentionProblem(1, 8, 2, 3, 9, 16, true), // GQA 4:1, causal, Nq < Nk
                new AttentionProblem(2, 4, 1, 7, 3, 8, true), // MQA, Nq > Nk: rows 0..3 fully masked
                new AttentionProblem(1, 4, 1, 33, 17, 8, false, 0.3), // explicit scale, several tasks
                new AttentionProblem(1, 1, 1, 1, 1, 1, false));
    }

    /** The oracle: a direct loop over (b, h, i) with the mask written from its definition. */
    private static CpuAttention.Result naive(AttentionProblem p, HostTensor q, HostTensor k, HostTensor v) {
        int d = p.headDim();
        double[] o = new double[(int) p.qElements()];
        double[] lse = new double[p.batch() * p.hq() * p.nq()];
        for (int b = 0; b < p.batch(); b++) {
            for (int h = 0; h < p.hq(); h++) {
                int kvh = h / (p.hq() / p.hkv());
                for (int i = 0; i < p.nq(); i++) {
                    double[] s = new double[p.nk()];
                    boolean[] seen = new boolean[p.nk()];
                    double m = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < p.nk(); j++) {
                        seen[j] = !p.causal() || j <= i + p.nk() - p.nq();
                        if (seen[j]) {
                            for (int x = 0; x < d; x++) {
                                s[j] += (double) q.get(b, h, i, x) * k.get(b, kvh, j, x);
                            }
                            s[j] *= p.effectiveScale();
                            m = Math.max(m, s[j]);
                        }
                    }
                    int row = (b * p.hq() + h) * p.nq() + i;
                    if (m == Double.NEGATIVE_INFINITY) {
                        lse[row] = Double.NEGATIVE_INFINITY;
                        continue;
                    }
                    double l = 0;
                    for (int j = 0; j < p.nk(); j++) {
                        if (seen[j]) {
                            l += Math.exp(s[j] - m);
                        }
                    }
                    for (int j = 0; j < p.nk(); j++) {
                        if (seen[j]) {
                            double w = Math.exp(s[j] - m) / l;
                            for (int x = 0; x < d; x++) {
                                o[row * d + x] += w * v.get(b, kvh, j, x);
                            }
                        }
                    }
                    lse[row] = m + Math.log(l);
                }
            }
        }
        return new CpuAttention.Result(o, lse);
    }

    private static void assertClose(double[] expected, double[] actual, double tol) {
        assertEquals(expected.length, actual.length);
        for (int i = 0; i < expected.length; i++) {
            if (expected[i] == actual[i]) {
                continue;
            }
            assertTrue(Math.abs(expected[i] - actual[i]) <= tol, "index " + i + ": " + expected[i] + " vs " + actual[i]);
        }
    }

    @ParameterizedTest
    @MethodSource("problems")
    void matchesNaiveLoop(AttentionProblem p) {
        Inputs.Qkv in = Inputs.generate(Inputs.GAUSSIAN, p, Layout.BHSD, 11);
        CpuAttention.Result fast = CpuAttention.forward(p, in.q(), in.k(), in.v());
        CpuAttention.Result slow = naive(p, in.q(), in.k(), in.v());
        assertClose(slow.o(), fast.o(), 1e-12);
        assertClose(slow.lse(), fast.lse(), 1e-12);
        assertNull(fast.rows());
    }

    @ParameterizedTest
    @MethodSource("problems")
    void layoutsGiveIdenticalResults(AttentionProblem p) {
        Inputs.Qkv a = Inputs.generate(Inputs.HEAVY_TAIL, p, Layout.BHSD, 5);
        Inputs.Qkv b = Inputs.generate(Inputs.HEAVY_TAIL, p, Layout.BSHD, 5);
        CpuAttention.Result ra = CpuAttention.forward(p, a.q(), a.k(), a.v());
        CpuAttention.Result rb = CpuAttention.forward(p, b.q(), b.k(), b.v());
        assertArrayEquals(ra.o(), rb.o());
        assertArrayEquals(ra.lse(), rb.lse());
        // mixed layouts too
        CpuAttention.Result rc = CpuAttention.forward(p, a.q(), b.k(), a.v().toLayout(Layout.BSHD));
        assertArrayEquals(ra.o(), rc.o());
    }

    @ParameterizedTest
    @MethodSource("problems")
    void softmaxRowsSumToOneAndLseIsLogSumExp(AttentionProblem p) {
        Inputs.Qkv in = Inputs.generate(Inputs.PEAKY, p, Layout.BSHD, 3);
        HostTensor ones = in.v().toLayout(Layout.BSHD);
        ones = new HostTensor(ones.data().clone(), ones.batch(), ones.heads(), ones.seq(), ones.headDim(),
                ones.layout());
        Arrays.fill(ones.data(), 1f);
        CpuAttention.Result r = CpuAttention.forward(p, in.q(), in.k(), ones);
        for (int b = 0; b < p.batch(); b++) {
            for (int h = 0; h < p.hq(); h++) {
                for (int i = 0; i < p.nq(); i++) {
                    int row = (b * p.hq() + h) * p.nq() + i;
                    double expectedO = p.visibleKeys(i) == 0 ? 0.0 : 1.0;
                    for (int x = 0; x < p.headDim(); x++) {
                        assertEquals(expectedO, r.o()[row * p.headDim() + x], 1e-12);
                    }
                    double sum = 0;
                    for (int j = 0; j < p.visibleKeys(i); j++) {
                        double dot = 0;
                        for (int x = 0; x < p.headDim(); x++) {
                            dot += (double) in.q().get(b, h, i, x) * in.k().get(b, p.kvHead(h), j, x);
                        }
                        sum += Math.exp(dot * p.effectiveScale());
                    }
                    assertEquals(Math.log(sum), r.lse()[row], 1e-9 * Math.max(1, Math.abs(Math.log(sum))));
                }
            }
        }
    }

    @Test
    void fullyMaskedRowsGiveZeroAndMinusInfinity() {
        AttentionProblem p = new AttentionProblem(1, 2, 1, 6, 2, 4, true);
        Inputs.Qkv in = Inputs.generate(Inputs.GAUSSIAN, p, Layout.BHSD, 1);
        CpuAttention.Result r = CpuAttention.forward(p, in.q(), in.k(), in.v());
        for (int h = 0; h < 2; h++) {
            for (int i = 0; i < 6; i++) {
                double lse = r.lse()[h * 6 + i];
                if (i < 4) { // i + Nk - Nq < 0
                    assertEquals(Double.NEGATIVE_INFINITY, lse);
                    for (int x = 0; x < 4; x++) {
                        assertEquals(0.0, r.o()[(h * 6 + i) * 4 + x]);
                    }
                } else {
                    assertTrue(Double.isFinite(lse));
                }
            }
        }
        // the last row sees both keys, the one before only key 0
        double row4 = r.o()[4 * 4];
        assertEquals(in.v().get(0, 0, 0, 0), row4, 1e-12);
    }

    @Test
    void selectedRowsMatchFullForward() {
        AttentionProblem p = new AttentionProblem(2, 4, 2, 50, 64, 16, true);
        Inputs.Qkv in = Inputs.generate(Inputs.K_CHANNEL_OFFSET, p, Layout.BSHD, 9);
        CpuAttention.Result full = CpuAttention.forward(p, in.q(), in.k(), in.v());
        int[] rows = {49, 0, 17, 17, 33};
        CpuAttention.Result some = CpuAttention.forwardRows(p, in.q(), in.k(), in.v(), rows);
        assertArrayEquals(new int[] {0, 17, 33, 49}, some.rows());
        int[] oIdx = some.outputIndices(p);
        int[] lseIdx = some.lseIndices(p);
        assertEquals(2 * 4 * 4 * 16, oIdx.length);
        for (int i : oIdx) {
            assertEquals(full.o()[i], some.o()[i]);
        }
        for (int i : lseIdx) {
            assertEquals(full.lse()[i], some.lse()[i]);
        }
        assertTrue(Double.isNaN(some.lse()[1]));
        assertEquals(0.0, Metrics.of(some.o(), full.o(), oIdx).maxAbs());
        assertThrows(IllegalArgumentException.class, () -> CpuAttention.forwardRows(p, in.q(), in.k(), in.v(),
                new int[] {50}));
        assertArrayEquals(new int[] {0, 24, 49}, CpuAttention.sampleRows(p, 3));
    }

    @Test
    void rejectsMismatchedShapes() {
        AttentionProblem p = new AttentionProblem(1, 4, 2, 8, 8, 16, false);
        Inputs.Qkv in = Inputs.generate(Inputs.GAUSSIAN, p, Layout.BHSD, 1);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> CpuAttention.forward(p, in.q(), in.q(), in.v()));
        assertTrue(e.getMessage().startsWith("K is"), e.getMessage());
    }
}
