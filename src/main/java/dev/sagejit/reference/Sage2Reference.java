package dev.sagejit.reference;

import dev.sagejit.spec.Int8Fp8Layout;
import java.util.Arrays;
import java.util.Objects;
import java.util.function.IntUnaryOperator;
import java.util.stream.IntStream;

/**
 * CPU emulation of the INT8/FP8 ("SageAttention2") precision mode, as specified in
 * {@code docs/int8-fp8-quantization.md}: K smoothing, the INT8 quantizers of Q and K with their
 * per-thread groups, the per-channel FP8 E4M3 quantizer of V with its transposed and permuted
 * layout, and the attention kernel over the quantized operands (online softmax per key block with
 * P rounded to E4M3 and two-level accumulation). The quantizers produce the same codes and scales
 * as the GPU kernels bit for bit; the attention emulation follows the same FP32 steps in the order
 * the document gives them.
 *
 * <p>Conventions as in {@link CpuAttention}: query head h reads kv head h / (Hq / Hkv); the causal
 * mask is bottom-right aligned (query i sees key j iff j <= i + Nk - Nq); a row that sees no key
 * gets O = 0 and LSE = -infinity.
 */
public final class Sage2Reference {
    /** Largest finite E4M3 value, 0x7E. */
    public static final float E4M3_MAX = Int8Fp8Layout.FP8_MAX;
    /** The E4M3 code every NaN input encodes to (both 0x7F and 0xFF decode to NaN). */
    public static final byte E4M3_NAN = 0x7F;
    /** Largest INT8 code magnitude (the codes are symmetric, -128 is never produced). */
    public static final int INT8_MAX = Int8Fp8Layout.INT8_MAX;
    /** Decoded value of every E4M3 code, indexed by {@code code & 0xFF}. */
    private static final float[] E4M3_VALUES = new float[256];
    /** log2(448) in FP32: the offset that maps the running row maximum to 448. */
    private static final float LOG2_448 = (float) Int8Fp8Layout.LOG2_FP8_MAX;
    /** Query rows per parallel attention task. */

    static {
        for (int c = 0; c < 256; c++) {
            E4M3_VALUES[c] = decode(c);
        }
    }

    private Sage2Reference() {
    }

    /**
     * The operands of the INT8/FP8 kernels and their scales, in the layouts of the document. All
     * arrays are flat; indices below are row-major over the bracketed shape.
     *
     * @param batch   batch size B
     * @param hq      query heads Hq
     * @param hkv     key/value heads Hkv (a divisor of hq)
     * @param nq      query length Nq
     * @param nk      key/value length Nk
     * @param headDim head dimension D
     * @param q8      INT8 codes of Q, [B, Hq, Nq, D]
     * @param qscale  Q group scales, [B, Hq, QG]; group (i, g) of a head at 8i + g
     * @param qshift  per-row shift Q . kmean, [B, Hq, Nq]
     * @param k8      INT8 codes of K - kmean, [B, Hkv, Nk, D]
     * @param kscale  K group scales, [B, Hkv, KG]; group (j, t) of a head at 4j + t
     * @param kmean   the K smoothing mean that was subtracted, [B, Hkv, D]
     * @param v8t     E4M3 codes of V, transposed and permuted, [B, Hkv, D, NkPad], 0 past Nk
     * @param vscale  V channel scales, [B, Hkv, D]
     */
    public record Quantized(int batch, int hq, int hkv, int nq, int nk, int headDim, byte[] q8, float[] qscale,
            float[] qshift, byte[] k8, float[] kscale, float[] kmean, byte[] v8t, float[] vscale) {

        public Quantized {
            if (batch < 1 || hq < 1 || hkv < 1 || nq < 1 || nk < 1 || headDim < 1) {
                throw new IllegalArgumentException("dimensions must be positive, got [B=" + batch + ", Hq=" + hq
                        + ", Hkv=" + hkv + ", Nq=" + nq + ", Nk=" + nk + ", D=" + headDim + "]");
            }
            if (hq % hkv != 0) {
                throw new IllegalArgumentException("query heads (" + hq
                        + ") must be a multiple of key/value heads (" + hkv + ")");
            }
            long qRows = (long) batch * hq * nq;
            long kRows = (long) batch * hkv * nk;
            requireLength("q8", q8, qRows * headDim);
            requireLength("qscale", qscale, (long) batch * hq * Int8Fp8Layout.qGroups(nq));
            requireLength("qshift", qshift, qRows);
            requireLength("k8", k8, kRows * headDim);
            requireLength("kscale", kscale, (long) batch * hkv * Int8Fp8Layout.kGroups(nk));
            requireLength("kmean", kmean, (long) batch * hkv * headDim);
            requireLength("v8t", v8t, (long) batch * hkv * headDim * Int8Fp8Layout.nkPad(nk));
            requireLength("vscale", vscale, (long) batch * hkv * headDim);
        }

        /** NkPad: the row pitch of {@link #v8t()} ({@link Int8Fp8Layout#nkPad}). */
        public int nkPad() {
            return Int8Fp8Layout.nkPad(nk);
        }

        /** QG: Q groups per (b, h) ({@link Int8Fp8Layout#qGroups}). */
        public int qGroups() {
            return Int8Fp8Layout.qGroups(nq);
        }

        /** KG: K groups per (b, hk) ({@link Int8Fp8Layout#kGroups}). */
        public int kGroups() {
            return Int8Fp8Layout.kGroups(nk);
        }

        /** Query heads sharing one key/value head. */
        public int groupSize() {
            return hq / hkv;
        }

        /** Index into {@link #qscale()} of the group holding query row {@code n} of (b, h). */
        public int qScaleIndex(int b, int h, int n) {
            return (b * hq + h) * qGroups() + Int8Fp8Layout.qGroup(n);
        }

        /** Index into {@link #kscale()} of the group holding key token {@code n} of (b, hk). */
        public int kScaleIndex(int b, int hk, int n) {
            return (b * hkv + hk) * kGroups() + Int8Fp8Layout.kGroup(n);
        }

        /** Index into {@link #v8t()} of the code of token {@code n}, channel {@code c} of (b, hk). */
        public int v8tIndex(int b, int hk, int n, int c) {
            return ((b * hkv + hk) * headDim + c) * nkPad() + vPosition(n);
        }

        private static void requireLength(String name, Object array, long expected) {
            Objects.requireNonNull(array, name);
            int length = java.lang.reflect.Array.getLength(array);
            if (length != expected) {
                throw new IllegalArgumentException(name + " has " + length + " elements but the shape needs "
                        + expected);
            }
        }
    }

    /**
     * Output of the emulated kernel.
     *
     * @param o   O in BHSD order, [B, Hq, Nq, D]
     * @param lse natural-log LSE of the scaled scores, [B, Hq, Nq] (-infinity for rows that see no key)
     */
    public record Output(float[] o, float[] lse) {
        public Output {
            Objects.requireNonNull(o, "o");
            Objects.requireNonNull(lse, "lse");
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Scalar conversions

    /** 1.5 * 2^23: adding it to a float of magnitude below 2^22 leaves the rounded integer in the low bits. */
    public static final float INT8_ROUND_MAGIC = 12582912f;

    /**
     * The INT8 code of x at inverse scale inv: the exact product x * inv rounded once to the nearest
     * integer, ties to even, as the GPU quantizer does it with one FMA: the low byte of
     * {@code fma(x, inv, 1.5 * 2^23)} (the sum's low bits hold the rounded integer; its low byte is
     * the code's two's complement). Callers keep |x * inv| <= 127 (x within the group's abs-max).
     */
    public static byte int8Code(float x, float inv) {
        return (byte) Float.floatToRawIntBits(Math.fma(x, inv, INT8_ROUND_MAGIC));
    }

    /** 127 / amax, saturated at the largest float (groups with amax below 127 / FLT_MAX). */
    public static float int8Inverse(float amax) {
        return Math.min(INT8_MAX / amax, Float.MAX_VALUE);
    }

    /**
     * FP32 to FP8 E4M3 (bias 7, no infinities, max finite 448 = 0x7E, subnormals down to 2^-9) with
     * round to nearest even and saturation to the largest finite value, like PTX
     * {@code cvt.rn.satfinite.e4m3x2.f32}: |x| > 448 and infinities give +-448 (0x7E / 0xFE), NaN of
     * either sign gives 0x7F, and the sign is kept for results that round to zero (-0 gives 0x80).
     */
    public static byte e4m3(float x) {
        if (Float.isNaN(x)) {
            return E4M3_NAN;
        }
        int sign = (Float.floatToRawIntBits(x) >>> 24) & 0x80;
        float a = Math.abs(x);
        int magnitude;
        if (a >= E4M3_MAX) {
            magnitude = 0x7E;
        } else if (a < 0x1p-6f) {
            // Subnormal range: multiples of 2^-9; a rounding up to 8 * 2^-9 is code 0x08, the smallest normal.
            magnitude = (int) Math.rint(a * 512.0);
        } else {
            // a in [2^e, 2^(e+1)), -6 <= e <= 8; steps of 2^(e-3). Code (e + 7) * 8 + (steps - 8), and
            // steps == 16 carries into the next binade, which is the next code.
            int e = Math.getExponent(a);
            int steps = (int) Math.rint(Math.scalb((double) a, 3 - e));
            magnitude = (e + 6) * 8 + steps;
        }
        return (byte) (sign | magnitude);
    }

    /** The value of an E4M3 code: NaN for 0x7F and 0xFF, signed zero for 0x00 and 0x80. */
    public static float e4m3ToFloat(byte code) {
        return E4M3_VALUES[code & 0xFF];
    }

    private static float decode(int code) {
        int exponent = (code >>> 3) & 0xF;
        int mantissa = code & 0x7;
        float magnitude;
        if (exponent == 0xF && mantissa == 0x7) {
            magnitude = Float.NaN;
        } else if (exponent == 0) {
            magnitude = Math.scalb((float) mantissa, -9);
        } else {
            magnitude = Math.scalb((float) (8 + mantissa), exponent - 10);
        }
        return (code & 0x80) != 0 ? -magnitude : magnitude;
    }

    // ---------------------------------------------------------------------------------------------
    // Quantization

    /**
     * The K smoothing mean: per (b, hk, c), the FP32 sum of K over tokens in token order divided by
     * Nk as a float. Layout [B, Hkv, D].
     */
    public static float[] kMean(HostTensor k) {
        Objects.requireNonNull(k, "k");
        int d = k.headDim();
        float[] mean = new float[k.batch() * k.heads() * d];
        float count = k.seq();
        float[] data = k.data();
        for (int b = 0; b < k.batch(); b++) {
            for (int h = 0; h < k.heads(); h++) {
                int out = (b * k.heads() + h) * d;
                float[] sum = new float[d];
                for (int n = 0; n < k.seq(); n++) {
                    int base = k.index(b, h, n, 0);
                    for (int c = 0; c < d; c++) {
                        sum[c] += data[base + c];
                    }
                }
                for (int c = 0; c < d; c++) {
                    mean[out + c] = sum[c] / count;
                }
            }
        }
        return mean;
    }

    /** Quantizes with K smoothing by {@link #kMean(HostTensor)}. */
    public static Quantized quantize(HostTensor q, HostTensor k, HostTensor v) {
        return quantize(q, k, v, kMean(k));
    }

    /**
     * Quantizes Q, K and V as the document specifies, subtracting {@code kmean} ([B, Hkv, D]) from K
     * and rotating Q and K when the layout does ({@link Int8Fp8Layout#ROTATE_QK}); pass an all-zero
     * array to disable smoothing. Inputs may be in either layout; they are read as their FP32 values
     * (round them to BF16/FP16 first to match a GPU run).
     */
    public static Quantized quantize(HostTensor q, HostTensor k, HostTensor v, float[] kmean) {
        return quantize(q, k, v, kmean, Int8Fp8Layout.ROTATE_QK);
    }

    /**
     * {@link #quantize(HostTensor, HostTensor, HostTensor, float[])} with the Q/K rotation chosen:
     * {@code rotate = false} gives SageAttention2's operands (the ablation of the rotation; the GPU
     * quantizers always follow the layout).
     */
    public static Quantized quantize(HostTensor q, HostTensor k, HostTensor v, float[] kmean, boolean rotate) {
        Objects.requireNonNull(kmean, "kmean");
        var shape = QkvShape.of(q, k, v, kmean);
        int batch = shape.batch();
        int hq = shape.hq();
        int hkv = shape.hkv();
        int nq = shape.nq();
        int nk = shape.nk();
        int d = shape.headDim();
        if (rotate && (d % Int8Fp8Layout.ROTATION_BLOCK != 0 || d > Int8Fp8Layout.ROTATION_MAX_DIM)) {
            throw new IllegalArgumentException("the Q/K rotation needs a head dim that is a multiple of "
                    + Int8Fp8Layout.ROTATION_BLOCK + " up to " + Int8Fp8Layout.ROTATION_MAX_DIM + ", got " + d
                    + "; quantize with rotate = false");
        }
        int group = hq / hkv;
        int qg = Int8Fp8Layout.qGroups(nq);
        int kg = Int8Fp8Layout.kGroups(nk);
        int nkPad = Int8Fp8Layout.nkPad(nk);
        byte[] q8 = new byte[batch * hq * nq * d];
        float[] qscale = new float[batch * hq * qg];
        float[] qshift = new float[batch * hq * nq];
        byte[] k8 = new byte[batch * hkv * nk * d];
        float[] kscale = new float[batch * hkv * kg];
        byte[] v8t = new byte[batch * hkv * d * nkPad];
        float[] vscale = new float[batch * hkv * d];
        float[] kmeanCopy = kmean.clone();

        IntStream.range(0, batch * hq).parallel().forEach(bh -> {
            int b = bh / hq;
            int h = bh % hq;
            quantizeQHead(q, b, h, kmeanCopy, (b * hkv + h / group) * d, rotate, q8, bh * nq * d, qscale, bh * qg,
                    qshift, bh * nq);
        });
        IntStream.range(0, batch * hkv).parallel().forEach(bh -> {
            int b = bh / hkv;
            int h = bh % hkv;
            quantizeKHead(k, b, h, kmeanCopy, bh * d, rotate, k8, bh * nk * d, kscale, bh * kg);
            quantizeVHead(v, b, h, v8t, bh * d * nkPad, nkPad, vscale, bh * d);
        });
        return new Quantized(batch, hq, hkv, nq, nk, d, q8, qscale, qshift, k8, kscale, kmeanCopy, v8t, vscale);
    }

    /**
     * The Q/K rotation (docs/int8-fp8-quantization.md, "Q/K rotation") in place on
     * {@code x[off, off + d)}: channel c negated where {@link Int8Fp8Layout#rotationNegates} says so,
     * then the unnormalised Walsh-Hadamard butterflies inside each block of
     * {@link Int8Fp8Layout#ROTATION_BLOCK} channels, with spans 1, 2, 4, ... in that order, each pair
     * (a, b) = (x[i], x[i + span]) with i's span bit clear becoming (a + b, a - b) in FP32: the GPU
     * quantizers' operations, so both give the same bits.
     */
    public static void rotate(float[] x, int off, int d) {
        if (d % Int8Fp8Layout.ROTATION_BLOCK != 0) {
            throw new IllegalArgumentException("the Q/K rotation works on whole blocks of "
                    + Int8Fp8Layout.ROTATION_BLOCK + " channels, got " + d);
        }
        for (int c = 0; c < d; c++) {
            if (Int8Fp8Layout.rotationNegates(c)) {
                x[off + c] = -x[off + c];
            }
        }
        for (int span = 1; span < Int8Fp8Layout.ROTATION_BLOCK; span <<= 1) {
            for (int i = 0; i < d; i++) {
                if ((i & span) == 0) {
                    float a = x[off + i];
                    float b = x[off + i + span];
                    x[off + i] = a + b;
                    x[off + i + span] = a - b;
                }
            }
        }
    }

    /** Q of one (b, h): its INT8 groups ({@link Int8Fp8Layout#qGroup}), plus the row shifts. */
    private static void quantizeQHead(HostTensor q, int b, int h, float[] kmean, int meanAt, boolean rotate,
            byte[] q8, int codeAt, float[] qscale, int scaleAt, float[] qshift, int shiftAt) {
        int nq = q.seq();
        int d = q.headDim();
        float[] data = q.data();
        // Q's scale carries the rotation's 1 / block (a power of two: exact), so q8 * qscale . k8 * kscale
        // still approximates Q . (K - kmean).
        float[] rows = headRows(q, b, h, null, 0, rotate);
        float scaleFactor = rotate ? 1f / Int8Fp8Layout.ROTATION_BLOCK : 1f;
        quantizeGroups(rows, nq, d, Int8Fp8Layout.qGroups(nq), Int8Fp8Layout::qGroup, scaleFactor, q8, codeAt, qscale,
                scaleAt);
        for (int n = 0; n < nq; n++) {
            int base = q.index(b, h, n, 0);
            float shift = 0f;
            for (int c = 0; c < d; c++) {
                shift += data[base + c] * kmean[meanAt + c];
            }
            qshift[shiftAt + n] = shift;
        }
    }

    /** K of one (b, hk), smoothed (and rotated): its INT8 groups ({@link Int8Fp8Layout#kGroup}). */
    private static void quantizeKHead(HostTensor k, int b, int h, float[] kmean, int meanAt, boolean rotate,
            byte[] k8, int codeAt, float[] kscale, int scaleAt) {
        float[] rows = headRows(k, b, h, kmean, meanAt, rotate);
        quantizeGroups(rows, k.seq(), k.headDim(), Int8Fp8Layout.kGroups(k.seq()), Int8Fp8Layout::kGroup, 1f, k8,
                codeAt, kscale, scaleAt);
    }

    /** The rows of one (b, h) of x, [N, D], minus {@code mean[meanAt + c]} (when given), then rotated (when asked). */
    private static float[] headRows(HostTensor x, int b, int h, float[] mean, int meanAt, boolean rotate) {
        int n = x.seq();
        int d = x.headDim();
        float[] data = x.data();
        float[] rows = new float[n * d];
        for (int r = 0; r < n; r++) {
            int base = x.index(b, h, r, 0);
            for (int c = 0; c < d; c++) {
                rows[r * d + c] = mean == null ? data[base + c] : data[base + c] - mean[meanAt + c];
            }
            if (rotate) {
                rotate(rows, r * d, d);
            }
        }
        return rows;
    }

    /**
     * Quantizes the n rows of {@code rows} ([n, d]) group by group: row r belongs to group groupOf(r) of
     * {@code groups}; a group without rows keeps scale 0. Stored scales are amax / 127 times
     * {@code scaleFactor}.
     */
    private static void quantizeGroups(float[] rows, int n, int d, int groups, IntUnaryOperator groupOf,
            float scaleFactor, byte[] codes, int codeAt, float[] scale, int scaleAt) {
        int[] count = new int[groups];
        for (int r = 0; r < n; r++) {
            count[groupOf.applyAsInt(r)]++;
        }
        int[][] members = new int[groups][];
        for (int g = 0; g < groups; g++) {
            members[g] = new int[count[g]];
            count[g] = 0;
        }
        for (int r = 0; r < n; r++) {
            int g = groupOf.applyAsInt(r);
            members[g][count[g]++] = r;
        }
        for (int g = 0; g < groups; g++) {
            scale[scaleAt + g] = quantizeInt8Group(rows, members[g], d, codes, codeAt) * scaleFactor;
        }
    }

    /**
     * The INT8 quantizer over the given rows of {@code rows} (D channels each): writes their codes at
     * {@code codeAt + r * d} and returns the scale.
     */
    private static float quantizeInt8Group(float[] rows, int[] members, int d, byte[] codes, int codeAt) {
        float amax = 0f;
        for (int r : members) {
            for (int c = 0; c < d; c++) {
                amax = Math.max(amax, Math.abs(rows[r * d + c])); // NaN propagates through Math.max
            }
        }
        if (!Float.isFinite(amax) || amax == 0f) {
            for (int r : members) {
                Arrays.fill(codes, codeAt + r * d, codeAt + (r + 1) * d, (byte) 0);
            }
            return amax == 0f ? 0f : Float.NaN;
        }
        float inv = int8Inverse(amax);
        for (int r : members) {
            for (int c = 0; c < d; c++) {
                codes[codeAt + r * d + c] = int8Code(rows[r * d + c], inv);
            }
        }
        return amax / INT8_MAX;
    }

    /** V of one (b, hk): per-channel E4M3 codes, transposed to [D, NkPad] with tokens permuted. */
    private static void quantizeVHead(HostTensor v, int b, int h, byte[] v8t, int codeAt, int nkPad, float[] vscale,
            int scaleAt) {
        int nk = v.seq();
        int d = v.headDim();
        float[] data = v.data();
        float[] amax = new float[d];
        for (int n = 0; n < nk; n++) {
            int base = v.index(b, h, n, 0);
            for (int c = 0; c < d; c++) {
                amax[c] = Math.max(amax[c], Math.abs(data[base + c]));
            }
        }
        float[] inv = new float[d];
        for (int c = 0; c < d; c++) {
            boolean usable = Float.isFinite(amax[c]) && amax[c] > 0f;
            vscale[scaleAt + c] = amax[c] == 0f ? 0f : usable ? amax[c] / E4M3_MAX : Float.NaN;
            inv[c] = usable ? E4M3_MAX / amax[c] : Float.NaN;
        }
        // Codes past Nk (and of unusable channels) stay 0 from the array's allocation.
        for (int n = 0; n < nk; n++) {
            int base = v.index(b, h, n, 0);
            int position = vPosition(n);
            for (int c = 0; c < d; c++) {
                if (!Float.isNaN(inv[c])) {
                    v8t[codeAt + c * nkPad + position] = e4m3(data[base + c] * inv[c]);
                }
            }
        }
    }

    /** Position in a {@code v8t} row of token {@code n} ({@link Int8Fp8Layout#vPosition}). */
    public static int vPosition(int n) {
        return Int8Fp8Layout.vPosition(n);
    }

    /** Token stored at position {@code p} of a {@code v8t} row (it may be >= Nk: padding). */
    public static int vToken(int p) {
        return Int8Fp8Layout.vToken(p);
    }

    // ---------------------------------------------------------------------------------------------
    // Attention

    /**
     * The emulated INT8/FP8 kernel over {@code z}: per query row, key blocks of {@code blockN} tokens
     * in order with the online softmax of the document. {@code scale} is the softmax scale (NaN means
     * 1/sqrt(D), as in {@link AttentionProblem}).
     */
    public static Output attention(Quantized z, double scale, boolean causal, int blockN) {
        Objects.requireNonNull(z, "z");
        if (blockN < 1) {
            throw new IllegalArgumentException("blockN must be at least 1, got " + blockN);
        }
        if (Double.isInfinite(scale) || scale == 0.0) {
            throw new IllegalArgumentException("scale must be finite and non-zero (or NaN for 1/sqrt(D)), got "
                    + scale);
        }
        double effectiveScale = Double.isNaN(scale) ? 1.0 / Math.sqrt(z.headDim()) : scale;
        int d = z.headDim();
        int nk = z.nk();
        int nkPad = z.nkPad();
        int kg = z.kGroups();
        // Per kv head: decoded V codes token-major ([Nk, D]) and the scale of each token's K group.
        float[][] vTokens = new float[z.batch() * z.hkv()][];
        float[][] kTokenScale = new float[z.batch() * z.hkv()][];
        IntStream.range(0, z.batch() * z.hkv()).parallel().forEach(bh -> {
            float[] values = new float[nk * d];
            int rowBase = bh * d * nkPad;
            for (int c = 0; c < d; c++) {
                for (int n = 0; n < nk; n++) {
                    values[n * d + c] = e4m3ToFloat(z.v8t()[rowBase + c * nkPad + vPosition(n)]);
                }
            }
            vTokens[bh] = values;
            float[] ks = new float[nk];
            for (int n = 0; n < nk; n++) {
                ks[n] = z.kscale()[bh * kg + Int8Fp8Layout.kGroup(n)];
            }
            kTokenScale[bh] = ks;
        });
        float[] o = new float[z.batch() * z.hq() * z.nq() * d];
        float[] lse = new float[z.batch() * z.hq() * z.nq()];
        float sl = (float) (effectiveScale * Log2Domain.LOG2_E);
        float lseScale = (float) effectiveScale;
        RowChunks.forEach(z.batch(), z.hq(), z.hkv(), z.nq(), () -> new RowState(d, Math.min(blockN, nk)),
                (b, h, kvh, i, state) -> attentionRow(z, b, h, kvh, i, causal, blockN, sl, lseScale, vTokens[kvh],
                        kTokenScale[kvh], state, o, lse));
        return new Output(o, lse);
    }

    /** Scratch of one worker: the query row widened to int, the block's scores, pv and O. */
    private static final class RowState {
        final int[] q;
        final float[] t;
        final float[] pv;
        final float[] acc;

        RowState(int d, int block) {
            q = new int[d];
            t = new float[block];
            pv = new float[d];
            acc = new float[d];
        }
    }

    private static void attentionRow(Quantized z, int b, int h, int kvh, int i, boolean causal, int blockN, float sl,
            float lseScale, float[] vTokens, float[] kTokenScale, RowState st, float[] o, float[] lse) {
        int d = z.headDim();
        int nk = z.nk();
        int row = (b * z.hq() + h) * z.nq() + i;
        int outBase = row * d;
        int visible = AttentionProblem.visibleKeys(causal, i, z.nq(), nk);
        if (visible == 0) {
            Arrays.fill(o, outBase, outBase + d, 0f);
            lse[row] = Float.NEGATIVE_INFINITY;
            return;
        }
        byte[] q8 = z.q8();
        byte[] k8 = z.k8();
        for (int c = 0; c < d; c++) {
            st.q[c] = q8[outBase + c];
        }
        float qs = z.qscale()[z.qScaleIndex(b, h, i)];
        int kBase = kvh * nk * d;
        float m = Float.NEGATIVE_INFINITY;
        float l = 0f;
        float[] acc = st.acc;
        float[] pv = st.pv;
        float[] t = st.t;
        Arrays.fill(acc, 0f);
        for (int start = 0; start < visible; start += blockN) {
            int stop = Math.min(visible, start + blockN);
            float blockMax = Float.NEGATIVE_INFINITY;
            for (int j = start; j < stop; j++) {
                int kr = kBase + j * d;
                int dot = 0;
                for (int c = 0; c < d; c++) {
                    dot += st.q[c] * k8[kr + c];
                }
                float s = (float) dot * (qs * kTokenScale[j]);
                float x = s * sl;
                t[j - start] = x;
                blockMax = Math.max(blockMax, x); // NaN propagates
            }
            float mNew = Math.max(m, blockMax);
            float alpha = Log2Domain.exp2(m - mNew); // 0 on the first block (m = -inf)
            Arrays.fill(pv, 0f);
            float rowSum = 0f;
            for (int j = start; j < stop; j++) {
                float p = Log2Domain.exp2(t[j - start] - mNew + LOG2_448);
                float p8 = e4m3ToFloat(e4m3(p));
                rowSum += p8; // l sums the FP8 P~ that O is made of (the kernels' ones columns of V)
                int vr = j * d;
                for (int c = 0; c < d; c++) {
                    pv[c] += p8 * vTokens[vr + c];
                }
            }
            l = l * alpha + rowSum;
            for (int c = 0; c < d; c++) {
                acc[c] = acc[c] * alpha + pv[c];
            }
            m = mNew;
        }
        float[] vscale = z.vscale();
        int vsBase = kvh * d;
        for (int c = 0; c < d; c++) {
            o[outBase + c] = acc[c] * vscale[vsBase + c] / l;
        }
        float log2l = Log2Domain.log2(l);
        lse[row] = (m + log2l - LOG2_448) * Log2Domain.LN2 + z.qshift()[row] * lseScale;
    }


}
