package dev.sagejit.reference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sagejit.api.Layout;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

class InputsTest {
    private static final AttentionProblem P = new AttentionProblem(2, 4, 2, 64, 512, 128, false);

    @Test
    void deterministicPerSeedAndLayoutIndependent() {
        for (String family : Inputs.families()) {
            Inputs.Qkv a = Inputs.generate(family, P, Layout.BHSD, 42);
            Inputs.Qkv b = Inputs.generate(family, P, Layout.BHSD, 42);
            Inputs.Qkv c = Inputs.generate(family, P, Layout.BSHD, 42);
            Inputs.Qkv d = Inputs.generate(family, P, Layout.BHSD, 43);
            assertArrayEquals(a.q().data(), b.q().data(), family);
            assertArrayEquals(a.k().data(), b.k().data(), family);
            assertArrayEquals(a.v().data(), b.v().data(), family);
            assertArrayEquals(a.q().data(), c.q().toLayout(Layout.BHSD).data(), family);
            assertArrayEquals(a.k().data(), c.k().toLayout(Layout.BHSD).data(), family);
            assertFalse(Arrays.equals(a.q().data(), d.q().data()), family);
            assertEquals(P.hq(), a.q().heads());
            assertEquals(P.hkv(), a.k().heads());
            assertEquals(P.nk(), a.v().seq());
        }
        assertThrows(IllegalArgumentException.class, () -> Inputs.generate("uniform", P, Layout.BHSD, 1));
    }

    @Test
    void gaussianHasUnitMoments() {
        float[] x = Inputs.generate(Inputs.GAUSSIAN, P, Layout.BHSD, 1).k().data();
        double mean = Arrays.stream(toDouble(x)).average().orElseThrow();
        double var = Arrays.stream(toDouble(x)).map(v -> (v - mean) * (v - mean)).average().orElseThrow();
        assertEquals(0, mean, 0.01);
        assertEquals(1, var, 0.02);
    }

    @Test
    void kChannelOffsetShiftsAboutTwelvePercentOfChannelsPerHead() {
        HostTensor k = Inputs.generate(Inputs.K_CHANNEL_OFFSET, P, Layout.BSHD, 7).k();
        for (int b = 0; b < P.batch(); b++) {
            for (int h = 0; h < P.hkv(); h++) {
                int offset = 0;
                for (int d = 0; d < P.headDim(); d++) {
                    double mean = 0;
                    for (int n = 0; n < P.nk(); n++) {
                        mean += k.get(b, h, n, d);
                    }
                    mean /= P.nk();
                    if (Math.abs(mean) > 10) {
                        offset++;
                        assertEquals(20, Math.abs(mean), 0.3);
                    } else {
                        assertEquals(0, mean, 0.3);
                    }
                }
                assertEquals(15, offset); // round(0.12 * 128)
            }
        }
        assertFalse(Arrays.equals(Inputs.channelOffsetSigns(128, 0, 7), Inputs.channelOffsetSigns(128, 1, 7)));
    }

    @Test
    void heavyTailHasStudentT3Quantiles() {
        double[] x = toDouble(Inputs.generate(Inputs.HEAVY_TAIL, P, Layout.BHSD, 3).q().data());
        // P(|T_3| > 5.841) = 0.01 and P(|T_3| > 3.182) = 0.05
        double beyond99 = Arrays.stream(x).filter(v -> Math.abs(v) > 5.841).count() / (double) x.length;
        double beyond95 = Arrays.stream(x).filter(v -> Math.abs(v) > 3.182).count() / (double) x.length;
        assertEquals(0.01, beyond99, 0.002);
        assertEquals(0.05, beyond95, 0.004);
    }

    @Test
    void peakyQueriesConcentrateAttention() {
        AttentionProblem p = new AttentionProblem(1, 2, 1, 32, 128, 64, true);
        Inputs.Qkv in = Inputs.generate(Inputs.PEAKY, p, Layout.BHSD, 5);
        double sumMax = 0;
        for (int h = 0; h < p.hq(); h++) {
            for (int i = 0; i < p.nq(); i++) {
                int visible = p.visibleKeys(i);
                double[] s = new double[visible];
                double m = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < visible; j++) {
                    for (int x = 0; x < p.headDim(); x++) {
                        s[j] += in.q().get(0, h, i, x) * in.k().get(0, 0, j, x) * p.effectiveScale();
                    }
                    m = Math.max(m, s[j]);
                }
                double l = 0;
                for (double v : s) {
                    l += Math.exp(v - m);
                }
                sumMax += 1 / l; // weight of the largest score
            }
        }
        double meanMax = sumMax / (p.hq() * p.nq());
        assertTrue(meanMax > 0.9, "mean top softmax weight " + meanMax);
    }

    private static double[] toDouble(float[] x) {
        double[] out = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = x[i];
        }
        return out;
    }
}
