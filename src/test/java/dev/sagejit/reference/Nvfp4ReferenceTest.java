package dev.sagejit.reference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sagejit.api.DType;
import dev.sagejit.api.Layout;
import dev.sagejit.reference.Nvfp4Reference.Format;
import dev.sagejit.reference.Nvfp4Reference.Options;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class Nvfp4ReferenceTest {
    /** Token order inside 32 of the permuted K, written out from MMA-FACTS D6. */
    private static final int[] DOC_K_ORDER = {0, 1, 8, 9, 16, 17, 24, 25, 2, 3, 10, 11, 18, 19, 26, 27, 4, 5, 12, 13,
        20, 21, 28, 29, 6, 7, 14, 15, 22, 23, 30, 31};

    // ---------------------------------------------------------------------------------------------
    // E2M1

    /** E2M1 from its definition: sign bit 3, exponent bits 2..1 (bias 1), mantissa bit 0. */
    private static double e2m1Definition(int code) {
        int s = (code >> 3) & 1;
        int e = (code >> 1) & 3;
        int m = code & 1;
        double magnitude = e == 0 ? 0.5 * m : Math.pow(2, e - 1) * (1 + m / 2.0);
        return s == 1 ? -magnitude : magnitude;
    }

    @Test
    void e2m1EveryCodeDecodesAndRoundTrips() {
        for (int code = 0; code < 16; code++) {
            float value = (float) e2m1Definition(code);
            assertEquals(Float.floatToRawIntBits(code == 8 ? -0f : value),
                    Float.floatToRawIntBits(Nvfp4Reference.e2m1ToFloat(code)), "code " + code);
            assertEquals(code, Nvfp4Reference.e2m1(Nvfp4Reference.e2m1ToFloat(code)), "round trip " + code);
        }
        assertEquals(6f, Nvfp4Reference.e2m1ToFloat(7));
        assertEquals(-0.5f, Nvfp4Reference.e2m1ToFloat(9));
        assertThrows(IllegalArgumentException.class, () -> Nvfp4Reference.e2m1ToFloat(16));
        assertThrows(IllegalArgumentException.class, () -> Nvfp4Reference.e2m1ToFloat(-1));
    }

    @Test
    void e2m1RoundsMidpointsToEvenAndOthersToNearest() {
        for (int c = 0; c < 7; c++) {
            double lo = e2m1Definition(c);
            double hi = e2m1Definition(c + 1);
            assertTrue(lo < hi);
            float mid = (float) ((lo + hi) / 2);
            int even = c % 2 == 0 ? c : c + 1;
            for (int sign : new int[] {0, 8}) {
                float sg = sign == 0 ? 1f : -1f;
                assertEquals(even | sign, Nvfp4Reference.e2m1(sg * mid), "tie " + mid);
                assertEquals(c | sign, Nvfp4Reference.e2m1(sg * Math.nextDown(mid)), "below " + mid);
                assertEquals((c + 1) | sign, Nvfp4Reference.e2m1(sg * Math.nextUp(mid)), "above " + mid);
            }
        }
        assertEquals(6, Nvfp4Reference.e2m1(5f), "5 is the tie of 4 (code 6) and 6 (code 7)");
        assertEquals(2, Nvfp4Reference.e2m1(0.75f));
        assertEquals(0, Nvfp4Reference.e2m1(0.25f));
        assertEquals(8, Nvfp4Reference.e2m1(-0.2f), "sign kept on underflow");
        assertEquals(8, Nvfp4Reference.e2m1(-0f));
        assertEquals(0, Nvfp4Reference.e2m1(Float.MIN_VALUE));
    }

    @Test
    void e2m1SaturatesAndMapsNaNToPlusSix() {
        for (float big : new float[] {Math.nextUp(6f), 6.5f, 7f, 8f, 1e30f, Float.MAX_VALUE, Float.POSITIVE_INFINITY}) {
            assertEquals(7, Nvfp4Reference.e2m1(big), "saturate " + big);
            assertEquals(15, Nvfp4Reference.e2m1(-big), "saturate " + -big);
        }
        assertEquals(7, Nvfp4Reference.e2m1(Float.NaN));
    }

    // ---------------------------------------------------------------------------------------------
    // UE8M0 and the block quantizer

    @Test
    void ue8m0RoundsUpToPowersOfTwo() {
        for (int e = -127; e <= 127; e++) {
            float p = Math.scalb(1f, e);
            assertEquals(e + 127, Nvfp4Reference.ue8m0(p) & 0xFF, "2^" + e);
            assertEquals(p, Nvfp4Reference.ue8m0ToFloat((byte) (e + 127)));
            if (e > -127 && e < 127) {
                assertEquals(e + 128, Nvfp4Reference.ue8m0(Math.nextUp(p)) & 0xFF, "just above 2^" + e);
                assertEquals(e + 127, Nvfp4Reference.ue8m0(Math.nextDown(p)) & 0xFF, "just below 2^" + e);
            }
        }
        assertEquals(129, Nvfp4Reference.ue8m0(3f) & 0xFF);
        assertEquals(0, Nvfp4Reference.ue8m0(0f));
        assertEquals(0, Nvfp4Reference.ue8m0(Float.MIN_VALUE));
        assertEquals(0, Nvfp4Reference.ue8m0(-5f));
        assertEquals(0xFE, Nvfp4Reference.ue8m0(Float.MAX_VALUE) & 0xFF);
        assertEquals(0xFE, Nvfp4Reference.ue8m0(Float.POSITIVE_INFINITY) & 0xFF);
        assertEquals(0xFF, Nvfp4Reference.ue8m0(Float.NaN) & 0xFF);
        assertTrue(Float.isNaN(Nvfp4Reference.ue8m0ToFloat((byte) 0xFF)));
    }

    @Test
    void blockQuantizerScalesByAbsmaxOverSixAndBoundsTheError() {
        SplittableRandom rng = new SplittableRandom(42);
        for (Format f : Format.values()) {
            int bs = f.blockSize();
            for (int trial = 0; trial < 2000; trial++) {
                float[] x = new float[bs];
                double magnitude = Math.pow(10, rng.nextDouble(-3, 3));
                float amax = 0f;
                for (int i = 0; i < bs; i++) {
                    x[i] = (float) (rng.nextGaussian() * magnitude);
                    amax = Math.max(amax, Math.abs(x[i]));
                }
                Nvfp4Reference.Block blk = Nvfp4Reference.quantizeBlock(f, x);
                byte expectedScale = f == Format.NVFP4 ? Sage2Reference.e4m3(amax / 6f) : Nvfp4Reference.ue8m0(amax / 6f);
                assertEquals(expectedScale, blk.scale(), f + " trial " + trial);
                float s = blk.scaleValue();
                float[] back = blk.dequantize();
                int maxMagnitude = 0;
                for (int i = 0; i < bs; i++) {
                    assertEquals(s == 0f ? 0 : Nvfp4Reference.e2m1(x[i] / s), blk.codes()[i]);
                    assertEquals(s * Nvfp4Reference.e2m1ToFloat(blk.codes()[i]), back[i]);
                    // Grid steps are at most 2 (between 4 and 6); beyond 6 the code saturates. With a normal E4M3
                    // scale (or a UE8M0 one, rounded up) |x / s| <= 6 * (1 + 2^-4), so the error is at most s.
                    double err = Math.abs(x[i] - back[i]);
                    boolean coarse = f == Format.NVFP4 && s < 0x1p-6f; // subnormal E4M3 scale: coarse rounding
                    double bound = coarse ? Math.max(s, Math.abs(x[i]) - 6.0 * s) : s;
                    assertTrue(err <= bound * 1.0000001, f + " x=" + x[i] + " x'=" + back[i] + " s=" + s);
                    if (Math.abs(x[i] / s) <= 2f) {
                        assertTrue(Math.abs(x[i] - back[i]) <= s * 0.2500001, "fine part of the grid");
                    }
                    maxMagnitude = Math.max(maxMagnitude, blk.codes()[i] & 7);
                }
                // The absmax lands on 6 (NVFP4 with a normal scale: s ~ amax/6) or on 3..6 (MXFP4: s < amax/3).
                if (f == Format.MXFP4 || s >= 0x1p-6f) {
                    assertTrue(maxMagnitude >= (f == Format.NVFP4 ? 7 : 5), f + " max code " + maxMagnitude);
                }
            }
        }
    }

    @Test
    void blockQuantizerZeroTinyAndNonFiniteBlocks() {
        Nvfp4Reference.Block zero = Nvfp4Reference.quantizeBlock(Format.NVFP4, new float[16]);
        assertEquals(0, zero.scale());
        assertArrayEquals(new byte[16], zero.codes());
        assertArrayEquals(new float[16], zero.dequantize());
        // absmax / 6 below half the smallest E4M3 subnormal: the scale rounds to 0 and so do the codes.
        Nvfp4Reference.Block tiny = Nvfp4Reference.quantizeBlock(Format.NVFP4, 1e-4f, -2e-4f);
        assertEquals(0, tiny.scale());
        assertArrayEquals(new byte[2], tiny.codes());
        Nvfp4Reference.Block mxZero = Nvfp4Reference.quantizeBlock(Format.MXFP4, 0f, -0f);
        assertEquals(0, mxZero.scale());
        assertEquals(0, mxZero.dequantize()[0]);
        float[] withNaN = new float[16];
        withNaN[3] = Float.NaN;
        withNaN[4] = 1f;
        Nvfp4Reference.Block nan = Nvfp4Reference.quantizeBlock(Format.NVFP4, withNaN);
        assertEquals(0x7F, nan.scale());
        assertArrayEquals(new byte[16], nan.codes());
        assertTrue(Float.isNaN(nan.dequantize()[4]));
        Nvfp4Reference.Block inf = Nvfp4Reference.quantizeBlock(Format.MXFP4, Float.NEGATIVE_INFINITY, 2f);
        assertEquals((byte) 0xFF, inf.scale());
        // A scale above 448 saturates, and the codes saturate with it.
        Nvfp4Reference.Block big = Nvfp4Reference.quantizeBlock(Format.NVFP4, 6000f, 3000f);
        assertEquals(0x7E, big.scale());
        assertEquals(7, big.codes()[0]);
        assertEquals(7, big.codes()[1]);
        assertThrows(IllegalArgumentException.class, () -> Nvfp4Reference.quantizeBlock(Format.NVFP4, new float[17]));
        // One example by hand: absmax 3 -> s = 0.5 exactly; 1.2 / 0.5 = 2.4 -> 2 (code 4); -0.3 / 0.5 = -0.6 -> -0.5.
        Nvfp4Reference.Block hand = Nvfp4Reference.quantizeBlock(Format.NVFP4, 3f, 1.2f, -0.3f, 0.1f);
        assertEquals(0x30, hand.scale());
        assertArrayEquals(new byte[] {7, 4, 9, 0}, hand.codes());
    }

    // ---------------------------------------------------------------------------------------------
    // Layouts

    @Test
    void kPermutationIsTheDocumentedBijectionInsideEvery32() {
        for (int r = 0; r < 96; r++) {
            int t = Nvfp4Reference.permutedToken(r);
            assertEquals(32 * (r / 32) + DOC_K_ORDER[r % 32], t, "row " + r);
            assertEquals(2 * ((r % 32) / 8) + 8 * ((r % 8) / 2) + r % 2, t % 32, "formula of SPEC section 3");
            assertEquals(r, Nvfp4Reference.permutedRow(t));
            assertEquals(r / 32, t / 32, "stays inside its 32");
        }
        boolean[] seen = new boolean[32];
        for (int r = 0; r < 32; r++) {
            seen[Nvfp4Reference.permutedToken(r)] = true;
        }
        for (boolean s : seen) {
            assertTrue(s);
        }
    }

    private static HostTensor gaussian(int batch, int heads, int seq, int d, Layout layout, long seed) {
        HostTensor t = HostTensor.zeros(batch, heads, seq, d, layout);
        SplittableRandom rng = new SplittableRandom(seed);
        for (int i = 0; i < t.data().length; i++) {
            t.data()[i] = (float) rng.nextGaussian();
        }
        return t;
    }

    @Test
    void layoutsOfCodesAndScales() {
        int d = 64;
        int nq = 150; // two Q smoothing groups, the second partial
        int nk = 77; // NkPad 128
        HostTensor q = gaussian(1, 4, nq, d, Layout.BSHD, 1);
        HostTensor k = gaussian(1, 2, nk, d, Layout.BHSD, 2);
        HostTensor v = gaussian(1, 2, nk, d, Layout.BSHD, 3);
        for (Format f : Format.values()) {
            Options opts = Options.DEFAULT.withFormat(f);
            Nvfp4Reference.Quantized z = Nvfp4Reference.quantize(q, k, v, opts);
            Nvfp4Reference.Quantized plain = Nvfp4Reference.quantize(q, k, v, opts.withPermuteK(false));
            int bs = f.blockSize();
            assertEquals(128, z.nkPad());
            assertEquals(2, z.qGroups());
            assertEquals(4 * nq * d / 2, z.q4().length);
            assertEquals(2 * 128 * d / bs, z.vscale().length);
            float[] kmean = Sage2Reference.kMean(k);
            assertArrayEquals(kmean, z.kmean());
            for (int h = 0; h < 4; h++) {
                for (int n = 0; n < nq; n++) {
                    int g = n / 128;
                    for (int c0 = 0; c0 < d; c0 += bs) {
                        float[] x = new float[bs];
                        for (int i = 0; i < bs; i++) {
                            x[i] = q.get(0, h, n, c0 + i) - z.qmean()[((h * 2) + g) * d + c0 + i];
                        }
                        Nvfp4Reference.Block blk = Nvfp4Reference.quantizeBlock(f, x);
                        assertEquals(blk.scale(), z.qscale()[(h * nq + n) * (d / bs) + c0 / bs]);
                        for (int i = 0; i < bs; i += 2) {
                            int element = (h * nq + n) * d + c0 + i;
                            int expectedByte = (blk.codes()[i + 1] << 4) | blk.codes()[i]; // low nibble = lower k
                            assertEquals(expectedByte, z.q4()[element / 2] & 0xFF, "Q byte h" + h + " n" + n);
                        }
                    }
                }
            }
            for (int h = 0; h < 2; h++) {
                for (int r = 0; r < 128; r++) {
                    int token = Nvfp4Reference.permutedToken(r);
                    assertEquals(token, z.kToken(r));
                    for (int c = 0; c < d; c++) {
                        int got = Nvfp4Reference.nibble(z.k4(), (h * 128 + r) * d + c);
                        int want = Nvfp4Reference.nibble(plain.k4(), (h * 128 + token) * d + c);
                        assertEquals(want, got, "permuted K row " + r);
                        if (token >= nk) {
                            assertEquals(0, got, "padding");
                        }
                    }
                    for (int x = 0; x < d / bs; x++) {
                        assertEquals(plain.kscale()[(h * 128 + token) * (d / bs) + x],
                                z.kscale()[(h * 128 + r) * (d / bs) + x]);
                    }
                }
                for (int n = 0; n < nk; n++) {
                    float[] x = new float[bs];
                    for (int i = 0; i < bs; i++) {
                        x[i] = k.get(0, h, n, i) - kmean[h * d + i];
                    }
                    Nvfp4Reference.Block blk = Nvfp4Reference.quantizeBlock(f, x);
                    assertEquals(blk.scale(), plain.kscale()[(h * 128 + n) * (d / bs)]);
                    assertEquals(blk.codes()[5], Nvfp4Reference.nibble(z.k4(), z.kCodeIndex(0, h, n, 5)));
                }
                for (int c = 0; c < d; c++) {
                    for (int t0 = 0; t0 < 128; t0 += bs) {
                        float[] x = new float[bs];
                        for (int i = 0; i < bs; i++) {
                            x[i] = t0 + i < nk ? v.get(0, h, t0 + i, c) : 0f;
                        }
                        Nvfp4Reference.Block blk = Nvfp4Reference.quantizeBlock(f, x);
                        int scaleAt = (h * d + c) * (128 / bs) + t0 / bs;
                        assertEquals(blk.scale(), z.vscale()[scaleAt]);
                        assertEquals(scaleAt, z.vScaleIndex(0, h, t0, c));
                        for (int i = 0; i < bs; i++) {
                            int element = (h * d + c) * 128 + t0 + i;
                            assertEquals(element, z.vCodeIndex(0, h, t0 + i, c));
                            assertEquals(blk.codes()[i], Nvfp4Reference.nibble(z.v4t(), element), "V c" + c);
                        }
                    }
                }
            }
        }
    }

    @Test
    void smoothingMeansAndDeltaS() {
        int d = 64;
        HostTensor q = gaussian(1, 2, 200, d, Layout.BHSD, 4);
        HostTensor k = gaussian(1, 1, 90, d, Layout.BHSD, 5);
        for (int i = 0; i < q.data().length; i++) {
            q.data()[i] += 3f; // a common offset Q smoothing removes
        }
        Nvfp4Reference.Quantized z = Nvfp4Reference.quantize(q, k, k, Options.DEFAULT.withPermuteK(false));
        for (int h = 0; h < 2; h++) {
            for (int g = 0; g < 2; g++) {
                int first = 128 * g;
                int last = Math.min(200, first + 128);
                for (int c = 0; c < d; c++) {
                    float sum = 0f;
                    for (int n = first; n < last; n++) {
                        sum += q.get(0, h, n, c);
                    }
                    assertEquals(sum / (last - first), z.qmean()[z.qmeanIndex(0, h, first, c)]);
                }
                for (int j = 0; j < 90; j++) {
                    double ds = 0;
                    for (int c = 0; c < d; c++) {
                        ds += (double) z.qmean()[z.qmeanIndex(0, h, first, c)] * (k.get(0, 0, j, c) - z.kmean()[c]);
                    }
                    assertEquals(ds, z.deltaS()[z.deltaSIndex(0, h, first, j)], 1e-4 * (1 + Math.abs(ds)));
                }
                for (int j = 90; j < 128; j++) {
                    assertEquals(0f, z.deltaS()[(h * 2 + g) * 128 + j], "padding");
                }
            }
            for (int n = 0; n < 200; n++) {
                double shift = 0;
                for (int c = 0; c < d; c++) {
                    shift += (double) q.get(0, h, n, c) * z.kmean()[c];
                }
                assertEquals(shift, z.qshift()[h * 200 + n], 1e-4 * (1 + Math.abs(shift)));
            }
        }
        Nvfp4Reference.Quantized off = Nvfp4Reference.quantize(q, k, k, Options.DEFAULT.withSmoothQ(false)
                .withSmoothK(false));
        assertArrayEquals(new float[off.qmean().length], off.qmean());
        assertArrayEquals(new float[off.deltaS().length], off.deltaS());
        assertArrayEquals(new float[off.kmean().length], off.kmean());
        assertArrayEquals(new float[off.qshift().length], off.qshift());
    }

    @Test
    void rejectsBadShapesAndOptions() {
        HostTensor q = gaussian(1, 3, 16, 64, Layout.BHSD, 1);
        HostTensor k = gaussian(1, 2, 16, 64, Layout.BHSD, 2);
        assertThrows(IllegalArgumentException.class, () -> Nvfp4Reference.quantize(q, k, k, Options.DEFAULT));
        HostTensor q48 = gaussian(1, 2, 16, 48, Layout.BHSD, 1);
        HostTensor k48 = gaussian(1, 2, 16, 48, Layout.BHSD, 2);
        Nvfp4Reference.quantize(q48, k48, k48, Options.DEFAULT); // 48 = 3 NVFP4 blocks
        assertThrows(IllegalArgumentException.class,
                () -> Nvfp4Reference.quantize(q48, k48, k48, Options.DEFAULT.withFormat(Format.MXFP4)));
        assertThrows(IllegalArgumentException.class, () -> Options.DEFAULT.withBlockN(48));
        assertThrows(IllegalArgumentException.class, () -> Options.DEFAULT.withBlockN(0));
        assertThrows(IllegalArgumentException.class, () -> Nvfp4Reference.quantize(q48, k48, k48, Options.DEFAULT,
                new float[3]));
    }

    // ---------------------------------------------------------------------------------------------
    // Attention

    @Test
    void singleKeyByHand() {
        float[] ones = new float[32];
        java.util.Arrays.fill(ones, 1f);
        float[] vs = new float[32];
        java.util.Arrays.fill(vs, -3f);
        HostTensor q = new HostTensor(ones, 1, 1, 1, 32, Layout.BHSD);
        HostTensor k = new HostTensor(ones.clone(), 1, 1, 1, 32, Layout.BHSD);
        HostTensor v = new HostTensor(vs, 1, 1, 1, 32, Layout.BHSD);
        for (Options o : new Options[] {Options.DEFAULT, Options.DEFAULT.withTwoLevelP(false),
            Options.DEFAULT.withFormat(Format.MXFP4).withTwoLevelP(false).withBlockN(64)}) {
            AttentionProblem p = new AttentionProblem(1, 1, 1, 1, 1, 32, false, 0.125);
            Sage2Reference.Output out = Nvfp4Reference.attention(p, q, k, v, o.withSmoothQ(false));
            // V: -3 = 0.5 * -6 exactly in both formats. P = 1: two-level maps it to 2688 = 448 * 6 (exact);
            // direct NVFP4 has s = e4m3(1/6) = 0.171875, code 6, P' = 1.03125; direct MXFP4 s = 0.25, code 4, exact.
            float pq = o.format() == Format.NVFP4 && !o.twoLevelP() ? 1.03125f : 1f;
            for (int c = 0; c < 32; c++) {
                assertEquals(-3f * pq, out.o()[c], 1e-6f, o.toString());
            }
            assertEquals(4f, out.lse()[0], 1e-5f, o.toString()); // 32 * 0.125
        }
    }

    /** Dequantized Q and K (smoothing off) as FP32 tensors: what the QK^T MMA multiplies. */
    private static HostTensor[] dequantizedQk(Nvfp4Reference.Quantized z) {
        Format f = z.options().format();
        int d = z.headDim();
        HostTensor qd = HostTensor.zeros(z.batch(), z.hq(), z.nq(), d, Layout.BHSD);
        HostTensor kd = HostTensor.zeros(z.batch(), z.hkv(), z.nk(), d, Layout.BHSD);
        for (int h = 0; h < z.hq(); h++) {
            for (int n = 0; n < z.nq(); n++) {
                for (int c = 0; c < d; c++) {
                    qd.set(0, h, n, c, Nvfp4Reference.e2m1ToFloat(Nvfp4Reference.nibble(z.q4(), z.qCodeIndex(0, h, n, c)))
                            * f.decodeScale(z.qscale()[z.qScaleIndex(0, h, n, c)]));
                }
            }
        }
        for (int h = 0; h < z.hkv(); h++) {
            for (int n = 0; n < z.nk(); n++) {
                for (int c = 0; c < d; c++) {
                    kd.set(0, h, n, c, Nvfp4Reference.e2m1ToFloat(Nvfp4Reference.nibble(z.k4(), z.kCodeIndex(0, h, n, c)))
                            * f.decodeScale(z.kscale()[z.kScaleIndex(0, h, n, c)]));
                }
            }
        }
        return new HostTensor[] {qd, kd};
    }

    /** The LSE uses the unquantized P: against FP64 on the dequantized Q and K it is exact up to FP32. */
    @Test
    void lseMatchesFp64OnDequantizedOperands() {
        AttentionProblem p = new AttentionProblem(1, 4, 2, 130, 200, 64, true); // GQA, Nq < Nk, causal
        Inputs.Qkv in = Inputs.generate(Inputs.GAUSSIAN, p, Layout.BHSD, 77);
        for (Format f : Format.values()) {
            Options o = Options.DEFAULT.withFormat(f).withSmoothQ(false).withSmoothK(false);
            Nvfp4Reference.Quantized z = Nvfp4Reference.quantize(in.q(), in.k(), in.v(), o);
            HostTensor[] qk = dequantizedQk(z);
            CpuAttention.Result ref = CpuAttention.forward(p, qk[0], qk[1], in.v());
            Sage2Reference.Output out = Nvfp4Reference.attention(z, p.effectiveScale(), true);
            Metrics.Errors lse = Metrics.of(out.lse(), ref.lse());
            System.out.printf(Locale.ROOT, "Nvfp4Reference %s LSE vs FP64 on dequantized Q, K: maxAbs=%.3e%n", f,
                    lse.maxAbs());
            assertTrue(lse.maxAbs() <= 1e-4, lse.summary());
        }
    }

    @Test
    void kPermutationAndLayoutDoNotChangeTheResult() {
        AttentionProblem p = new AttentionProblem(1, 2, 1, 100, 150, 64, true);
        Inputs.Qkv a = Inputs.generate(Inputs.GAUSSIAN, p, Layout.BHSD, 9);
        Inputs.Qkv b = Inputs.generate(Inputs.GAUSSIAN, p, Layout.BSHD, 9);
        Sage2Reference.Output x = Nvfp4Reference.attention(p, a.q(), a.k(), a.v(), Options.DEFAULT);
        Sage2Reference.Output y = Nvfp4Reference.attention(p, b.q(), b.k(), b.v(), Options.DEFAULT.withPermuteK(false));
        assertArrayEquals(x.o(), y.o());
        assertArrayEquals(x.lse(), y.lse());
    }

    @Test
    void fullyMaskedRowsAndBlockSizes() {
        AttentionProblem p = new AttentionProblem(1, 2, 1, 100, 60, 64, true); // rows 0..39 see no key
        Inputs.Qkv in = Inputs.generate(Inputs.GAUSSIAN, p, Layout.BHSD, 5);
        CpuAttention.Result ref = CpuAttention.forward(p, in.q(), in.k(), in.v());
        for (int blockN : new int[] {32, 64, 128}) {
            Sage2Reference.Output out = Nvfp4Reference.attention(p, in.q(), in.k(), in.v(),
                    Options.DEFAULT.withBlockN(blockN));
            MaskedRowAsserts.assertRowsWithoutKeys(out, 2, 100, 64, 40);
            Metrics.Errors e = Metrics.of(out.o(), ref.o());
            System.out.printf(Locale.ROOT, "Nvfp4Reference masked rows %s blockN=%d  O: %s%n", p, blockN, e.summary());
            assertTrue(e.cosine() >= 0.98, e.summary());
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Accuracy against FP64

    private record Measured(Metrics.Errors o, Metrics.Errors lse) {
    }

    private static Map<String, Options> variants() {
        Map<String, Options> m = new LinkedHashMap<>();
        m.put("nvfp4-default", Options.DEFAULT);
        m.put("direct-P", Options.DEFAULT.withTwoLevelP(false));
        m.put("no-smooth-K", Options.DEFAULT.withSmoothK(false));
        m.put("no-smooth-Q", Options.DEFAULT.withSmoothQ(false));
        m.put("mxfp4", Options.DEFAULT.withFormat(Format.MXFP4));
        return m;
    }

    private static Map<String, Measured> measureAll(String family, AttentionProblem p) {
        Inputs.Qkv in = Inputs.generate(family, p, Layout.BHSD, 2024);
        HostTensor q = in.q().roundTo(DType.BF16);
        HostTensor k = in.k().roundTo(DType.BF16);
        HostTensor v = in.v().roundTo(DType.BF16);
        CpuAttention.Result ref = CpuAttention.forward(p, q, k, v);
        Map<String, Measured> out = new LinkedHashMap<>();
        for (Map.Entry<String, Options> e : variants().entrySet()) {
            Sage2Reference.Output r = Nvfp4Reference.attention(p, q, k, v, e.getValue());
            Measured m = new Measured(Metrics.of(r.o(), ref.o()), Metrics.of(r.lse(), ref.lse()));
            out.put(e.getKey(), m);
            System.out.printf(Locale.ROOT, "Nvfp4Reference %-16s %-30s %-13s cos=%.5f relL1=%.4f rmse=%.4f  LSE maxAbs=%.3e%n",
                    family, p, e.getKey(), m.o().cosine(), m.o().relL1(), m.o().rmse(), m.lse().maxAbs());
        }
        return out;
    }

    @Test
    void accuracyGaussian() {
        Map<String, Measured> m = measureAll(Inputs.GAUSSIAN, new AttentionProblem(1, 2, 2, 256, 256, 128, false));
        Metrics.Errors def = m.get("nvfp4-default").o();
        assertTrue(def.cosine() >= 0.975, def.summary()); // measured 0.983
        assertTrue(def.relL1() <= 0.22, def.summary()); // measured 0.184
        assertTrue(m.get("nvfp4-default").lse().maxAbs() <= 0.2, m.get("nvfp4-default").lse().summary());
        assertCommonDirections(m);
    }

    @Test
    void accuracyGaussianCausalGqa() {
        Map<String, Measured> m = measureAll(Inputs.GAUSSIAN, new AttentionProblem(1, 4, 2, 200, 233, 64, true));
        Metrics.Errors def = m.get("nvfp4-default").o();
        assertTrue(def.cosine() >= 0.975, def.summary()); // measured 0.983
        assertCommonDirections(m);
    }

    @Test
    void accuracyKChannelOffset() {
        Map<String, Measured> m = measureAll(Inputs.K_CHANNEL_OFFSET, new AttentionProblem(1, 2, 2, 256, 256, 128,
                false));
        Metrics.Errors def = m.get("nvfp4-default").o();
        Metrics.Errors raw = m.get("no-smooth-K").o();
        assertTrue(def.cosine() >= 0.975, def.summary()); // measured 0.983
        assertTrue(raw.relL1() >= 1.5 * def.relL1(), "K smoothing helps: " + raw.summary() + " vs " + def.summary());
        assertCommonDirections(m);
    }

    @Test
    void accuracyHeavyTail() {
        Map<String, Measured> m = measureAll(Inputs.HEAVY_TAIL, new AttentionProblem(1, 2, 2, 256, 256, 64, false));
        Metrics.Errors def = m.get("nvfp4-default").o();
        assertTrue(def.cosine() >= 0.95, def.summary()); // measured 0.968
        assertCommonDirections(m);
    }

    @Test
    void accuracyPeaky() {
        Map<String, Measured> m = measureAll(Inputs.PEAKY, new AttentionProblem(1, 2, 2, 256, 256, 128, false));
        Metrics.Errors def = m.get("nvfp4-default").o();
        assertTrue(def.cosine() >= 0.975, def.summary());
        assertCommonDirections(m);
    }

    /** Paper Table 1a/1b direction: two-level P beats direct P, NVFP4 beats MXFP4. */
    private static void assertCommonDirections(Map<String, Measured> m) {
        Metrics.Errors def = m.get("nvfp4-default").o();
        Metrics.Errors direct = m.get("direct-P").o();
        Metrics.Errors mx = m.get("mxfp4").o();
        assertTrue(direct.relL1() > def.relL1(), "two-level P: " + def.summary() + " direct: " + direct.summary());
        assertTrue(mx.relL1() > def.relL1(), "NVFP4: " + def.summary() + " MXFP4: " + mx.summary());
        assertTrue(mx.cosine() < def.cosine(), "NVFP4: " + def.summary() + " MXFP4: " + mx.summary());
    }
}
