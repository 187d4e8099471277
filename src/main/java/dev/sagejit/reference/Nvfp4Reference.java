package dev.sagejit.reference;

import dev.sagejit.spec.Int8Fp8Layout;

import java.util.Arrays;
import java.util.Objects;
import java.util.stream.IntStream;

/**
 * CPU emulation of the NVFP4 microscaling ("SageAttention3") precision mode, as specified in
 * {@code docs/nvfp4-quantization.md}: the E2M1 element and E4M3 / UE8M0 scale conversions, the 1x16
 * (NVFP4) and 1x32 (MXFP4) block quantizer, the quantized layouts of Q, K (optionally token-permuted)
 * and V (transposed, blocked along tokens) with K and Q smoothing, and the attention over the
 * quantized operands with two-level (or direct) quantization of P. The quantizers produce the codes
 * and scales a GPU kernel must produce bit for bit; the attention computes every MMA as exact
 * products of dequantized values summed in FP32, in the order the document gives.
 *
 * <p>Conventions as in {@link CpuAttention}: query head h reads kv head h / (Hq / Hkv); the causal
 * mask is bottom-right aligned (query i sees key j iff j <= i + Nk - Nq); a row that sees no key
 * gets O = 0 and LSE = -infinity.
 */
public final class Nvfp4Reference {
    /** Largest E2M1 magnitude (code 0x7). */
    public static final float E2M1_MAX = 6f;
    /** The UE8M0 code of NaN; every other code c is the value 2^(c - 127). */
    public static final byte UE8M0_NAN = (byte) 0xFF;
    /** Query rows per Q-smoothing group (the kernel's BLOCK_M): one qmean per 128 rows. */
    public static final int QMEAN_ROWS = 128;
    /** NkPad is Nk rounded up to a multiple of this (one m16n8k64 k-step of the PV MMA). */
    public static final int TOKEN_PAD = 64;
    /** Tokens per K permutation group. */
    public static final int PERMUTE_GROUP = 32;

    /** E2M1 magnitudes of codes 0..7. */
    private static final float[] E2M1_MAGNITUDES = {0f, 0.5f, 1f, 1.5f, 2f, 3f, 4f, 6f};
    /** Midpoints between the magnitudes of codes m and m + 1. */
    private static final float[] E2M1_MIDPOINTS = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5f};
    /** Twice the value of every E2M1 code (an integer), indexed by code. */
    private static final int[] E2M1_TWICE = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
    /** Two-level P maps each row's running maximum to 448 * 6 = 2688 (largest E4M3 scale times largest E2M1). */
    public static final float P_ROW_MAX = Sage2Reference.E4M3_MAX * E2M1_MAX;
    /** log2(2688) in FP32: maps the running row maximum of P to {@link #P_ROW_MAX}. */
    public static final float LOG2_2688 = (float) (Math.log(P_ROW_MAX) / Math.log(2.0));
    /** log2(2688) - log2(6) = log2(448) in FP32: the offset of the two-level P block scales (E4M3's maximum). */
    public static final float LOG2_448 = (float) Int8Fp8Layout.LOG2_FP8_MAX;
    /** Query rows per parallel attention task. */

    private Nvfp4Reference() {
    }

    // ---------------------------------------------------------------------------------------------
    // Formats and options

    /** The FP4 microscaling format: E2M1 elements with one scale per block of {@link #blockSize()}. */
    public enum Format {
        /** 1x16 blocks, E4M3 scales (fed to the MMA as ue4m3), scale_vec::4X. */
        NVFP4(16),
        /** 1x32 blocks, UE8M0 (power-of-two) scales, scale_vec::2X. */
        MXFP4(32);

        private final int blockSize;

        Format(int blockSize) {
            this.blockSize = blockSize;
        }

        /** Elements per scale block. */
        public int blockSize() {
            return blockSize;
        }

        /** The scale code of the non-negative scale {@code s}: E4M3 (nearest even) or UE8M0 (round up). */
        public byte encodeScale(float s) {
            return this == NVFP4 ? Sage2Reference.e4m3(s) : ue8m0(s);
        }

        /** The value of a scale code of this format. */
        public float decodeScale(byte code) {
            return this == NVFP4 ? Sage2Reference.e4m3ToFloat(code) : ue8m0ToFloat(code);
        }

        /** The scale code of a block whose absmax is not finite: E4M3 0x7F or UE8M0 0xFF (both NaN). */
        public byte nanScale() {
            return this == NVFP4 ? Sage2Reference.E4M3_NAN : UE8M0_NAN;
        }
    }

    /**
     * What the emulation does; {@link #DEFAULT} is the paper's choice.
     *
     * @param format    NVFP4 (1x16, E4M3 scales) or MXFP4 (1x32, UE8M0 scales), for Q, K, V and P
     * @param smoothQ   subtract the per-128-row mean qmean from Q and add dS = qmean . K_smoothed to S
     * @param smoothK   subtract the token mean from K (LSE corrected by qshift)
     * @param twoLevelP quantize P with the per-row factor 2688 (two-level) rather than directly in [0, 1]
     * @param permuteK  store K's tokens permuted inside every 32 (layout only; values are unchanged)
     * @param blockN    key tokens per online-softmax block, a positive multiple of 32
     */
    public record Options(Format format, boolean smoothQ, boolean smoothK, boolean twoLevelP, boolean permuteK,
            int blockN) {
        /** NVFP4, Q and K smoothing, two-level P, permuted K, BLOCK_N 128. */
        public static final Options DEFAULT = new Options(Format.NVFP4, true, true, true, true, 128);

        public Options {
            Objects.requireNonNull(format, "format");
            if (blockN < PERMUTE_GROUP || blockN % PERMUTE_GROUP != 0) {
                throw new IllegalArgumentException("blockN must be a positive multiple of " + PERMUTE_GROUP
                        + " (whole P scale blocks and K permutation groups), got " + blockN);
            }
        }

        public Options withFormat(Format f) {
            return new Options(f, smoothQ, smoothK, twoLevelP, permuteK, blockN);
        }

        public Options withSmoothQ(boolean on) {
            return new Options(format, on, smoothK, twoLevelP, permuteK, blockN);
        }

        public Options withSmoothK(boolean on) {
            return new Options(format, smoothQ, on, twoLevelP, permuteK, blockN);
        }

        public Options withTwoLevelP(boolean on) {
            return new Options(format, smoothQ, smoothK, on, permuteK, blockN);
        }

        public Options withPermuteK(boolean on) {
            return new Options(format, smoothQ, smoothK, twoLevelP, on, blockN);
        }

        public Options withBlockN(int n) {
            return new Options(format, smoothQ, smoothK, twoLevelP, permuteK, n);
        }
    }

    /**
     * One quantized block.
     *
     * @param format the format
     * @param scale  the scale code (E4M3 or UE8M0)
     * @param codes  one 4-bit E2M1 code (0..15) per input value, unpacked
     */
    public record Block(Format format, byte scale, byte[] codes) {
        public Block {
            Objects.requireNonNull(format, "format");
            Objects.requireNonNull(codes, "codes");
        }

        /** The decoded scale. */
        public float scaleValue() {
            return format.decodeScale(scale);
        }

        /** x' = scale * e2m1(code) per element (products are exact in FP32). */
        public float[] dequantize() {
            float s = scaleValue();
            float[] out = new float[codes.length];
            for (int i = 0; i < codes.length; i++) {
                out[i] = s * e2m1ToFloat(codes[i]);
            }
            return out;
        }
    }

    /**
     * The operands of the FP4 kernel and their scales, in the layouts of the document. All arrays are
     * flat and row-major over the bracketed shape; "nibble array" means two E2M1 codes per byte, the
     * element of even index in the low nibble. Scale arrays hold codes of {@code options.format()}.
     *
     * @param batch   batch size B
     * @param hq      query heads Hq
     * @param hkv     key/value heads Hkv (a divisor of hq)
     * @param nq      query length Nq
     * @param nk      key/value length Nk
     * @param headDim head dimension D (a multiple of the block size)
     * @param options the options the operands were quantized with
     * @param q4      codes of Q - qmean, nibble array [B, Hq, Nq, D]
     * @param qscale  Q block scales, [B, Hq, Nq, D / bs]
     * @param qmean   Q smoothing means, [B, Hq, QG, D], QG = ceil(Nq / 128) (zeros when off)
     * @param qshift  per-row shift Q . kmean (unsmoothed Q, before the softmax scale), [B, Hq, Nq]
     * @param k4      codes of K - kmean, nibble array [B, Hkv, NkPad, D] in stored-row order
     * @param kscale  K block scales, [B, Hkv, NkPad, D / bs] in stored-row order
     * @param kmean   the K smoothing mean that was subtracted, [B, Hkv, D]
     * @param deltaS  dS = qmean . (K - kmean) in FP32, [B, Hq, QG, NkPad] in stored-row order, 0 past Nk
     * @param v4t     codes of V transposed, nibble array [B, Hkv, D, NkPad] in token order, 0 past Nk
     * @param vscale  V block scales along tokens, [B, Hkv, D, NkPad / bs]
     */
    public record Quantized(int batch, int hq, int hkv, int nq, int nk, int headDim, Options options, byte[] q4,
            byte[] qscale, float[] qmean, float[] qshift, byte[] k4, byte[] kscale, float[] kmean, float[] deltaS,
            byte[] v4t, byte[] vscale) {

        public Quantized {
            Objects.requireNonNull(options, "options");
            checkShape(batch, hq, hkv, nq, nk, headDim, options.format());
            int bs = options.format().blockSize();
            long pad = padTokens(nk);
            long qRows = (long) batch * hq * nq;
            long kRows = (long) batch * hkv * pad;
            requireLength("q4", q4, qRows * headDim / 2);
            requireLength("qscale", qscale, qRows * headDim / bs);
            requireLength("qmean", qmean, (long) batch * hq * queryGroups(nq) * headDim);
            requireLength("qshift", qshift, qRows);
            requireLength("k4", k4, kRows * headDim / 2);
            requireLength("kscale", kscale, kRows * headDim / bs);
            requireLength("kmean", kmean, (long) batch * hkv * headDim);
            requireLength("deltaS", deltaS, (long) batch * hq * queryGroups(nq) * pad);
            requireLength("v4t", v4t, kRows * headDim / 2);
            requireLength("vscale", vscale, kRows * headDim / bs);
        }

        /** NkPad = ceil(Nk / 64) * 64. */
        public int nkPad() {
            return padTokens(nk);
        }

        /** QG = ceil(Nq / 128): Q smoothing groups per (b, h). */
        public int qGroups() {
            return queryGroups(nq);
        }

        /** Elements per scale block. */
        public int blockSize() {
            return options.format().blockSize();
        }

        /** Query heads sharing one key/value head. */
        public int groupSize() {
            return hq / hkv;
        }

        /** Stored K row of token {@code n}: {@link #permutedRow(int)} when K is permuted, else n. */
        public int kRow(int n) {
            return options.permuteK() ? permutedRow(n) : n;
        }

        /** Token held by stored K row {@code r} (>= Nk: padding). */
        public int kToken(int r) {
            return options.permuteK() ? permutedToken(r) : r;
        }

        /** Element (nibble) index into {@link #q4()} of Q[b, h, n, c]. */
        public int qCodeIndex(int b, int h, int n, int c) {
            return ((b * hq + h) * nq + n) * headDim + c;
        }

        /** Index into {@link #qscale()} of the block holding Q[b, h, n, c]. */
        public int qScaleIndex(int b, int h, int n, int c) {
            return ((b * hq + h) * nq + n) * (headDim / blockSize()) + c / blockSize();
        }

        /** Element index into {@link #k4()} of token {@code n}, channel {@code c}. */
        public int kCodeIndex(int b, int hk, int n, int c) {
            return ((b * hkv + hk) * nkPad() + kRow(n)) * headDim + c;
        }

        /** Index into {@link #kscale()} of the block holding token {@code n}, channel {@code c}. */
        public int kScaleIndex(int b, int hk, int n, int c) {
            return ((b * hkv + hk) * nkPad() + kRow(n)) * (headDim / blockSize()) + c / blockSize();
        }

        /** Element index into {@link #v4t()} of token {@code n}, channel {@code c}. */
        public int vCodeIndex(int b, int hk, int n, int c) {
            return ((b * hkv + hk) * headDim + c) * nkPad() + n;
        }

        /** Index into {@link #vscale()} of the block holding token {@code n}, channel {@code c}. */
        public int vScaleIndex(int b, int hk, int n, int c) {
            return ((b * hkv + hk) * headDim + c) * (nkPad() / blockSize()) + n / blockSize();
        }

        /** Index into {@link #qmean()} of channel {@code c} of the group of query row {@code n}. */
        public int qmeanIndex(int b, int h, int n, int c) {
            return ((b * hq + h) * qGroups() + n / QMEAN_ROWS) * headDim + c;
        }

        /** Index into {@link #deltaS()} of (query row {@code n}'s group, key token {@code j}). */
        public int deltaSIndex(int b, int h, int n, int j) {
            return ((b * hq + h) * qGroups() + n / QMEAN_ROWS) * nkPad() + kRow(j);
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

    // ---------------------------------------------------------------------------------------------
    // Scalar conversions

    /**
     * FP32 to a 4-bit E2M1 code (bit 3 sign, bits 2..0 magnitude index into {0, 0.5, 1, 1.5, 2, 3, 4,
     * 6}) with round to nearest, ties to the even code, saturating to +-6, like PTX
     * {@code cvt.rn.satfinite.e2m1x2.f32}: |x| > 6 and infinities give +-6, the sign is kept for
     * results that round to zero (-0.1 gives 0x8), and NaN gives 0x7 (+6; E2M1 has no NaN, and the
     * block quantizer never passes one, see the document).
     */
    public static int e2m1(float x) {
        if (Float.isNaN(x)) {
            return 0x7;
        }
        int sign = Float.floatToRawIntBits(x) < 0 ? 0x8 : 0;
        float a = Math.abs(x);
        int m = 0;
        while (m < 7) {
            float mid = E2M1_MIDPOINTS[m];
            if (a < mid || (a == mid && (m & 1) == 0)) {
                break;
            }
            m++;
        }
        return sign | m;
    }

    /** The value of a 4-bit E2M1 code (0..15); code 0x8 is -0. */
    public static float e2m1ToFloat(int code) {
        if (code < 0 || code > 15) {
            throw new IllegalArgumentException("E2M1 codes are 4 bits (0..15), got " + code);
        }
        float magnitude = E2M1_MAGNITUDES[code & 0x7];
        return (code & 0x8) != 0 ? -magnitude : magnitude;
    }

    /** FP32 to E4M3, round to nearest even, saturating: {@link Sage2Reference#e4m3(float)}. */
    public static byte e4m3(float x) {
        return Sage2Reference.e4m3(x);
    }

    /** The value of an E4M3 code: {@link Sage2Reference#e4m3ToFloat(byte)}. */
    public static float e4m3ToFloat(byte code) {
        return Sage2Reference.e4m3ToFloat(code);
    }

    /**
     * FP32 to UE8M0 (unsigned, exponent only: code c is 2^(c - 127), 0xFF is NaN) rounding up to the
     * next power of two, saturating, like PTX {@code cvt.rp.satfinite.ue8m0x2.f32}: a power of two
     * 2^e (-127 <= e <= 127) is exact; other positive values give the next power up; values at or
     * below 2^-127, zero and negative values give code 0 (2^-127); values above 2^127 and +infinity
     * give 0xFE (2^127); NaN gives 0xFF. Rounding up keeps x / scale within the E2M1 range.
     */
    public static byte ue8m0(float x) {
        if (Float.isNaN(x)) {
            return UE8M0_NAN;
        }
        if (!(x > 0f)) {
            return 0;
        }
        if (x == Float.POSITIVE_INFINITY) {
            return (byte) 0xFE;
        }
        double d = x; // subnormal floats are normal doubles, so getExponent is exact
        int e = Math.getExponent(d);
        if (d != Math.scalb(1.0, e)) {
            e++;
        }
        return (byte) Math.max(0, Math.min(254, e + 127));
    }

    /** The value of a UE8M0 code: 2^(code - 127), NaN for 0xFF. */
    public static float ue8m0ToFloat(byte code) {
        int c = code & 0xFF;
        return c == 0xFF ? Float.NaN : Math.scalb(1f, c - 127);
    }

    // ---------------------------------------------------------------------------------------------
    // Block quantizer and packing

    /**
     * Quantizes one block of 1..blockSize values (a shorter block is as if zero-padded): absmax, the
     * scale code of absmax / 6 (FP32 division), codes e2m1(x / s) with s the decoded scale (FP32
     * division; every code 0 when s is 0). A block whose absmax is NaN or infinite gets the format's
     * NaN scale code and all codes 0.
     */
    public static Block quantizeBlock(Format format, float... values) {
        Objects.requireNonNull(format, "format");
        Objects.requireNonNull(values, "values");
        if (values.length < 1 || values.length > format.blockSize()) {
            throw new IllegalArgumentException(format + " blocks hold 1.." + format.blockSize() + " values, got "
                    + values.length);
        }
        int[] codes = new int[values.length];
        byte scale = quantizeBlockInto(format, values, values.length, codes);
        byte[] out = new byte[codes.length];
        for (int i = 0; i < codes.length; i++) {
            out[i] = (byte) codes[i];
        }
        return new Block(format, scale, out);
    }

    /** The block quantizer over x[0..n): writes n codes, returns the scale code. */
    private static byte quantizeBlockInto(Format format, float[] x, int n, int[] codes) {
        float amax = 0f;
        for (int i = 0; i < n; i++) {
            amax = Math.max(amax, Math.abs(x[i])); // NaN propagates through Math.max
        }
        if (!Float.isFinite(amax)) {
            Arrays.fill(codes, 0, n, 0);
            return format.nanScale();
        }
        byte scale = format.encodeScale(amax / E2M1_MAX);
        float s = format.decodeScale(scale);
        for (int i = 0; i < n; i++) {
            codes[i] = s == 0f ? 0 : e2m1(x[i] / s);
        }
        return scale;
    }

    /** The 4-bit code at element {@code element} of a nibble array (even elements in the low nibble). */
    public static int nibble(byte[] packed, int element) {
        int b = packed[element >> 1] & 0xFF;
        return (element & 1) == 0 ? b & 0xF : b >>> 4;
    }

    private static void putNibble(byte[] packed, int element, int code) {
        int at = element >> 1;
        int b = packed[at] & 0xFF;
        b = (element & 1) == 0 ? (b & 0xF0) | code : (b & 0x0F) | (code << 4);
        packed[at] = (byte) b;
    }

    /**
     * The token stored in K row {@code r} when K is permuted: inside every 32 rows, row r holds token
     * 2 * (r / 8) + 8 * ((r % 8) / 2) + r % 2 (r taken mod 32; the 32-group itself is kept).
     */
    public static int permutedToken(int r) {
        int i = r % PERMUTE_GROUP;
        return r - i + 2 * (i / 8) + 8 * ((i % 8) / 2) + i % 2;
    }

    /**
     * The K row holding token {@code n} when K is permuted: with n = 8b + 2a + c (inside its 32) it is
     * 8a + 2b + c. The permutation swaps a and b, so it is its own inverse.
     */
    public static int permutedRow(int n) {
        int i = n % PERMUTE_GROUP;
        return n - i + 8 * ((i % 8) / 2) + 2 * (i / 8) + i % 2;
    }

    // ---------------------------------------------------------------------------------------------
    // Quantization of Q, K, V

    /** Quantizes with the K mean of {@link Sage2Reference#kMean(HostTensor)} (zeros when smoothK is off). */
    public static Quantized quantize(HostTensor q, HostTensor k, HostTensor v, Options options) {
        Objects.requireNonNull(k, "k");
        Objects.requireNonNull(options, "options");
        float[] kmean = options.smoothK() ? Sage2Reference.kMean(k) : new float[k.batch() * k.heads() * k.headDim()];
        return quantize(q, k, v, options, kmean);
    }

    /**
     * Quantizes Q, K and V as the document specifies, subtracting {@code kmean} ([B, Hkv, D]) from K
     * whatever {@code options.smoothK()} says (pass the GPU's mean for bit-exact comparisons). Inputs
     * may be in either layout; they are read as their FP32 values.
     */
    public static Quantized quantize(HostTensor q, HostTensor k, HostTensor v, Options options, float[] kmean) {
        Objects.requireNonNull(options, "options");
        Objects.requireNonNull(kmean, "kmean");
        var shape = QkvShape.of(q, k, v, kmean);
        int batch = shape.batch();
        int hq = shape.hq();
        int hkv = shape.hkv();
        int nq = shape.nq();
        int nk = shape.nk();
        int d = shape.headDim();
        Format format = options.format();
        checkShape(batch, hq, hkv, nq, nk, d, format);
        int bs = format.blockSize();
        int group = hq / hkv;
        int pad = padTokens(nk);
        int qg = queryGroups(nq);
        byte[] q4 = new byte[batch * hq * nq * d / 2];
        byte[] qscale = new byte[batch * hq * nq * d / bs];
        float[] qmean = new float[batch * hq * qg * d];
        float[] qshift = new float[batch * hq * nq];
        byte[] k4 = new byte[batch * hkv * pad * d / 2];
        byte[] kscale = new byte[batch * hkv * pad * d / bs];
        float[] deltaS = new float[batch * hq * qg * pad];
        byte[] v4t = new byte[batch * hkv * d * pad / 2];
        byte[] vscale = new byte[batch * hkv * d * pad / bs];
        float[] kmeanCopy = kmean.clone();
        Quantized z = new Quantized(batch, hq, hkv, nq, nk, d, options, q4, qscale, qmean, qshift, k4, kscale,
                kmeanCopy, deltaS, v4t, vscale);

        IntStream.range(0, batch * hkv).parallel().forEach(bh -> {
            quantizeKHead(z, k, bh / hkv, bh % hkv);
            quantizeVHead(z, v, bh / hkv, bh % hkv);
        });
        IntStream.range(0, batch * hq).parallel().forEach(bh -> quantizeQHead(z, q, k, bh / hq, bh % hq, group));
        return z;
    }

    /** Q of one (b, h): qmean per 128 rows, codes of Q - qmean, qshift, and dS against smoothed K. */
    private static void quantizeQHead(Quantized z, HostTensor q, HostTensor k, int b, int h, int group) {
        int nq = z.nq();
        int d = z.headDim();
        int bs = z.blockSize();
        int kvh = h / group;
        float[] data = q.data();
        float[] mean = z.qmean();
        float[] kmean = z.kmean();
        int kmeanAt = (b * z.hkv() + kvh) * d;
        for (int g = 0; g < z.qGroups() && z.options().smoothQ(); g++) {
            int first = g * QMEAN_ROWS;
            int last = Math.min(nq, first + QMEAN_ROWS);
            float[] sum = new float[d];
            for (int n = first; n < last; n++) {
                int base = q.index(b, h, n, 0);
                for (int c = 0; c < d; c++) {
                    sum[c] += data[base + c];
                }
            }
            float count = last - first;
            int at = z.qmeanIndex(b, h, first, 0);
            for (int c = 0; c < d; c++) {
                mean[at + c] = sum[c] / count;
            }
        }
        float[] block = new float[bs];
        int[] codes = new int[bs];
        for (int n = 0; n < nq; n++) {
            int base = q.index(b, h, n, 0);
            int meanAt = z.qmeanIndex(b, h, n, 0);
            float shift = 0f;
            for (int c = 0; c < d; c++) {
                shift += data[base + c] * kmean[kmeanAt + c];
            }
            z.qshift()[(b * z.hq() + h) * nq + n] = shift;
            for (int c0 = 0; c0 < d; c0 += bs) {
                for (int i = 0; i < bs; i++) {
                    block[i] = data[base + c0 + i] - mean[meanAt + c0 + i];
                }
                z.qscale()[z.qScaleIndex(b, h, n, c0)] = quantizeBlockInto(z.options().format(), block, bs, codes);
                int at = z.qCodeIndex(b, h, n, c0);
                for (int i = 0; i < bs; i++) {
                    putNibble(z.q4(), at + i, codes[i]);
                }
            }
        }
        if (!z.options().smoothQ()) {
            return; // qmean = 0 gives dS = 0: leave deltaS zero
        }
        float[] kd = k.data();
        for (int g = 0; g < z.qGroups(); g++) {
            int meanAt = z.qmeanIndex(b, h, g * QMEAN_ROWS, 0);
            for (int j = 0; j < z.nk(); j++) {
                int kBase = k.index(b, kvh, j, 0);
                float ds = 0f;
                for (int c = 0; c < d; c++) {
                    ds += mean[meanAt + c] * (kd[kBase + c] - kmean[kmeanAt + c]);
                }
                z.deltaS()[z.deltaSIndex(b, h, g * QMEAN_ROWS, j)] = ds;
            }
        }
    }

    /** K of one (b, hk): codes of K - kmean along the head dim, written to the token's stored row. */
    private static void quantizeKHead(Quantized z, HostTensor k, int b, int h) {
        int d = z.headDim();
        int bs = z.blockSize();
        float[] data = k.data();
        float[] kmean = z.kmean();
        int meanAt = (b * z.hkv() + h) * d;
        float[] block = new float[bs];
        int[] codes = new int[bs];
        for (int n = 0; n < z.nk(); n++) {
            int base = k.index(b, h, n, 0);
            for (int c0 = 0; c0 < d; c0 += bs) {
                for (int i = 0; i < bs; i++) {
                    block[i] = data[base + c0 + i] - kmean[meanAt + c0 + i];
                }
                z.kscale()[z.kScaleIndex(b, h, n, c0)] = quantizeBlockInto(z.options().format(), block, bs, codes);
                int at = z.kCodeIndex(b, h, n, c0);
                for (int i = 0; i < bs; i++) {
                    putNibble(z.k4(), at + i, codes[i]);
                }
            }
        }
        // Padding rows (tokens >= Nk) keep codes 0 and scale code 0 from the allocation.
    }

    /** V of one (b, hk): transposed to [D, NkPad], blocks of bs consecutive tokens per channel. */
    private static void quantizeVHead(Quantized z, HostTensor v, int b, int h) {
        int d = z.headDim();
        int bs = z.blockSize();
        int nk = z.nk();
        float[] data = v.data();
        float[] block = new float[bs];
        int[] codes = new int[bs];
        for (int c = 0; c < d; c++) {
            for (int t0 = 0; t0 < nk; t0 += bs) {
                for (int i = 0; i < bs; i++) {
                    block[i] = t0 + i < nk ? data[v.index(b, h, t0 + i, c)] : 0f;
                }
                z.vscale()[z.vScaleIndex(b, h, t0, c)] = quantizeBlockInto(z.options().format(), block, bs, codes);
                int at = z.vCodeIndex(b, h, t0, c);
                for (int i = 0; i < bs; i++) {
                    putNibble(z.v4t(), at + i, codes[i]);
                }
            }
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Attention

    /** Quantizes with {@code options} and runs {@link #attention(Quantized, double, boolean)} for {@code p}. */
    public static Sage2Reference.Output attention(AttentionProblem p, HostTensor q, HostTensor k, HostTensor v,
            Options options) {
        Objects.requireNonNull(p, "p");
        Quantized z = quantize(q, k, v, options);
        if (z.batch() != p.batch() || z.hq() != p.hq() || z.hkv() != p.hkv() || z.nq() != p.nq()
                || z.nk() != p.nk() || z.headDim() != p.headDim()) {
            throw new IllegalArgumentException("tensors Q " + q + ", K " + k + " do not match problem " + p);
        }
        return attention(z, p.effectiveScale(), p.causal());
    }

    /**
     * The emulated FP4 kernel over {@code z} with its options' P mode and BLOCK_N: per query row, key
     * blocks in order with the online softmax of the document. {@code scale} is the softmax scale (NaN
     * means 1/sqrt(D), as in {@link AttentionProblem}). O is [B, Hq, Nq, D], LSE natural-log [B, Hq, Nq]
     * including the K smoothing correction.
     */
    public static Sage2Reference.Output attention(Quantized z, double scale, boolean causal) {
        Objects.requireNonNull(z, "z");
        if (Double.isInfinite(scale) || scale == 0.0) {
            throw new IllegalArgumentException("scale must be finite and non-zero (or NaN for 1/sqrt(D)), got "
                    + scale);
        }
        double effectiveScale = Double.isNaN(scale) ? 1.0 / Math.sqrt(z.headDim()) : scale;
        int d = z.headDim();
        int nk = z.nk();
        int pad = z.nkPad();
        int bs = z.blockSize();
        int nb = d / bs;
        Format format = z.options().format();
        // Per kv head, in token order: twice the K codes [Nk, D] and K block scales [Nk, D/bs]; twice the
        // V codes [D, NkPad] and V block scales [D, NkPad/bs].
        int kvHeads = z.batch() * z.hkv();
        int[][] k2 = new int[kvHeads][];
        float[][] ks = new float[kvHeads][];
        int[][] v2 = new int[kvHeads][];
        float[][] vs = new float[kvHeads][];
        IntStream.range(0, kvHeads).parallel().forEach(bh -> {
            int b = bh / z.hkv();
            int hk = bh % z.hkv();
            int[] kc = new int[nk * d];
            float[] kss = new float[nk * nb];
            for (int n = 0; n < nk; n++) {
                int at = z.kCodeIndex(b, hk, n, 0);
                for (int c = 0; c < d; c++) {
                    kc[n * d + c] = E2M1_TWICE[nibble(z.k4(), at + c)];
                }
                for (int x = 0; x < nb; x++) {
                    kss[n * nb + x] = format.decodeScale(z.kscale()[z.kScaleIndex(b, hk, n, x * bs)]);
                }
            }
            int[] vc = new int[d * pad];
            float[] vss = new float[d * (pad / bs)];
            for (int c = 0; c < d; c++) {
                int at = z.vCodeIndex(b, hk, 0, c);
                for (int n = 0; n < pad; n++) {
                    vc[c * pad + n] = E2M1_TWICE[nibble(z.v4t(), at + n)];
                }
                for (int x = 0; x < pad / bs; x++) {
                    vss[c * (pad / bs) + x] = format.decodeScale(z.vscale()[z.vScaleIndex(b, hk, x * bs, c)]);
                }
            }
            k2[bh] = kc;
            ks[bh] = kss;
            v2[bh] = vc;
            vs[bh] = vss;
        });
        float[] o = new float[z.batch() * z.hq() * z.nq() * d];
        float[] lse = new float[z.batch() * z.hq() * z.nq()];
        float sl = (float) (effectiveScale * Log2Domain.LOG2_E);
        float lseScale = (float) effectiveScale;
        RowChunks.forEach(z.batch(), z.hq(), z.hkv(), z.nq(), () -> new RowState(d, nb, z.options().blockN(), bs),
                (b, h, kvh, i, st) -> attentionRow(z, b, h, i, causal, sl, lseScale, k2[kvh], ks[kvh], v2[kvh], vs[kvh],
                        st, o, lse));
        return new Sage2Reference.Output(o, lse);
    }

    /** Scratch of one worker. */
    private static final class RowState {
        final int[] q2;
        final float[] qs;
        final float[] x;
        final int[] p2;
        final float[] acc;
        final float[] block;
        final int[] codes;

        RowState(int d, int nb, int blockN, int bs) {
            q2 = new int[d];
            qs = new float[nb];
            x = new float[blockN];
            p2 = new int[blockN];
            acc = new float[d];
            block = new float[bs];
            codes = new int[bs];
        }
    }

    private static void attentionRow(Quantized z, int b, int h, int i, boolean causal, float sl, float lseScale,
            int[] k2, float[] ks, int[] v2, float[] vs, RowState st, float[] o, float[] lse) {
        int d = z.headDim();
        int nk = z.nk();
        int bs = z.blockSize();
        int nb = d / bs;
        int pad = z.nkPad();
        int blockN = z.options().blockN();
        boolean twoLevel = z.options().twoLevelP();
        Format format = z.options().format();
        int row = (b * z.hq() + h) * z.nq() + i;
        int outBase = row * d;
        int visible = AttentionProblem.visibleKeys(causal, i, z.nq(), nk);
        if (visible == 0) {
            Arrays.fill(o, outBase, outBase + d, 0f);
            lse[row] = Float.NEGATIVE_INFINITY;
            return;
        }
        int qAt = z.qCodeIndex(b, h, i, 0);
        for (int c = 0; c < d; c++) {
            st.q2[c] = E2M1_TWICE[nibble(z.q4(), qAt + c)];
        }
        for (int x = 0; x < nb; x++) {
            st.qs[x] = format.decodeScale(z.qscale()[z.qScaleIndex(b, h, i, x * bs)]);
        }
        float[] deltaS = z.deltaS();
        int dsBase = ((b * z.hq() + h) * z.qGroups() + i / QMEAN_ROWS) * pad;
        float m = Float.NEGATIVE_INFINITY;
        float l = 0f;
        float[] acc = st.acc;
        float[] t = st.x;
        int[] p2 = st.p2;
        Arrays.fill(acc, 0f);
        for (int start = 0; start < visible; start += blockN) {
            int stop = Math.min(visible, start + blockN);
            // S = dS + sum over 16/32-chunks of (exact chunk dot) * sq * sk, in FP32; then x = S * sl.
            float blockMax = Float.NEGATIVE_INFINITY;
            for (int j = start; j < stop; j++) {
                float s = deltaS[dsBase + z.kRow(j)];
                int kr = j * d;
                for (int x = 0; x < nb; x++) {
                    int dot = 0;
                    for (int c = x * bs; c < (x + 1) * bs; c++) {
                        dot += st.q2[c] * k2[kr + c];
                    }
                    s += (float) dot * 0.25f * st.qs[x] * ks[j * nb + x];
                }
                float xs = s * sl;
                t[j - start] = xs;
                blockMax = Math.max(blockMax, xs); // NaN propagates
            }
            float mNew = Math.max(m, blockMax);
            float alpha = Log2Domain.exp2(m - mNew); // 0 on the first block (m = -inf)
            for (int c = 0; c < d; c++) {
                acc[c] *= alpha;
            }
            float rowSum = 0f;
            for (int t0 = start; t0 < stop; t0 += bs) {
                int t1 = Math.min(stop, t0 + bs);
                float ps;
                if (twoLevel) {
                    float chunkMax = Float.NEGATIVE_INFINITY;
                    for (int j = t0; j < t1; j++) {
                        chunkMax = Math.max(chunkMax, t[j - start]);
                    }
                    byte code = format.encodeScale(Log2Domain.exp2(chunkMax - mNew + LOG2_448));
                    ps = format.decodeScale(code);
                    for (int j = t0; j < t1; j++) {
                        float p = Log2Domain.exp2(t[j - start] - mNew + LOG2_2688);
                        rowSum += p;
                        p2[j - start] = ps == 0f ? 0 : E2M1_TWICE[e2m1(p / ps)];
                    }
                } else {
                    for (int j = t0; j < t0 + bs; j++) {
                        float p = j < t1 ? Log2Domain.exp2(t[j - start] - mNew) : 0f;
                        rowSum += p;
                        st.block[j - t0] = p;
                    }
                    ps = format.decodeScale(quantizeBlockInto(format, st.block, bs, st.codes));
                    for (int j = t0; j < t1; j++) {
                        p2[j - start] = E2M1_TWICE[st.codes[j - t0]];
                    }
                }
                // O += (exact chunk dot of P and V codes) * sP * sV, per channel, in FP32.
                int vBlock = t0 / bs;
                for (int c = 0; c < d; c++) {
                    int vr = c * pad;
                    int dot = 0;
                    for (int j = t0; j < t1; j++) {
                        dot += p2[j - start] * v2[vr + j];
                    }
                    acc[c] += (float) dot * 0.25f * ps * vs[c * (pad / bs) + vBlock];
                }
            }
            l = l * alpha + rowSum;
            m = mNew;
        }
        for (int c = 0; c < d; c++) {
            o[outBase + c] = acc[c] / l;
        }
        float log2l = Log2Domain.log2(l);
        float offset = twoLevel ? LOG2_2688 : 0f;
        lse[row] = (m + log2l - offset) * Log2Domain.LN2 + z.qshift()[row] * lseScale;
    }


    private static void checkShape(int batch, int hq, int hkv, int nq, int nk, int d, Format format) {
        if (batch < 1 || hq < 1 || hkv < 1 || nq < 1 || nk < 1 || d < 1) {
            throw new IllegalArgumentException("dimensions must be positive, got [B=" + batch + ", Hq=" + hq
                    + ", Hkv=" + hkv + ", Nq=" + nq + ", Nk=" + nk + ", D=" + d + "]");
        }
        if (hq % hkv != 0) {
            throw new IllegalArgumentException("query heads (" + hq + ") must be a multiple of key/value heads ("
                    + hkv + ")");
        }
        if (d % format.blockSize() != 0) {
            throw new IllegalArgumentException("head dim " + d + " must be a multiple of the " + format
                    + " block size " + format.blockSize());
        }
    }

    /** NkPad: key tokens padded to a multiple of {@link #TOKEN_PAD} (document, Layouts). */
    public static int padTokens(int nk) {
        return (int) (((long) nk + TOKEN_PAD - 1) / TOKEN_PAD * TOKEN_PAD);
    }

    /** QG: Q smoothing groups of {@link #QMEAN_ROWS} rows. */
    public static int queryGroups(int nq) {
        return (nq + QMEAN_ROWS - 1) / QMEAN_ROWS;
    }
}
