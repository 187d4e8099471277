package dev.sagejit.reference;

/**
 * The shape of one attention call: Q is [batch, hq, nq, headDim], K and V are [batch, hkv, nk,
 * headDim] (in either layout). Validated on construction.
 *
 * @param batch   batch size, at least 1
 * @param hq      query heads, a multiple of {@code hkv}
 * @param hkv     key/value heads (GQA when {@code hkv < hq}, MQA when 1)
 * @param nq      query sequence length, at least 1
 * @param nk      key/value sequence length, at least 1
 * @param headDim head dimension D, at least 1
 * @param causal  bottom-right aligned causal mask: query i sees keys j <= i + nk - nq
 * @param scale   softmax scale applied to Q K^T; NaN means the default 1/sqrt(D)
 */
public record AttentionProblem(int batch, int hq, int hkv, int nq, int nk, int headDim, boolean causal,
        double scale) {

    public AttentionProblem {
        requirePositive("batch", batch);
        requirePositive("hq (query heads)", hq);
        requirePositive("hkv (key/value heads)", hkv);
        requirePositive("nq (query length)", nq);
        requirePositive("nk (key length)", nk);
        requirePositive("headDim", headDim);
        if (hq % hkv != 0) {
            throw new IllegalArgumentException("query heads (" + hq + ") must be a multiple of key/value heads ("
                    + hkv + ") for GQA/MQA");
        }
        if (Double.isInfinite(scale) || scale == 0.0) {
            throw new IllegalArgumentException("scale must be finite and non-zero (or NaN for 1/sqrt(D)), got "
                    + scale);
        }
    }

    /**
     * Parses the compact shape {@code B x Hq [x Hkv] x N [x Nk] x D} ({@code 4x32x4096x128} or
     * {@code 4x32x8x4096x4096x128}) with the given mask and scale (NaN: 1/sqrt(D)).
     */
    public static AttentionProblem parse(String shape, boolean causal, double scale) {
        int[] v;
        try {
            v = java.util.Arrays.stream(shape.trim().toLowerCase(java.util.Locale.ROOT).split("x"))
                    .mapToInt(Integer::parseInt).toArray();
        } catch (NumberFormatException e) {
            v = new int[0];
        }
        return switch (v.length) {
            case 4 -> new AttentionProblem(v[0], v[1], v[1], v[2], v[2], v[3], causal, scale);
            case 6 -> new AttentionProblem(v[0], v[1], v[2], v[3], v[4], v[5], causal, scale);
            default -> throw new IllegalArgumentException("shape '" + shape + "' is not BxHxNxD or BxHqxHkvxNqxNkxD");
        };
    }

    /** A problem with the default scale 1/sqrt(D). */
    public AttentionProblem(int batch, int hq, int hkv, int nq, int nk, int headDim, boolean causal) {
        this(batch, hq, hkv, nq, nk, headDim, causal, Double.NaN);
    }

    /** Multi-head attention (hkv = hq) with equal lengths and the default scale. */
    public static AttentionProblem mha(int batch, int heads, int seq, int headDim, boolean causal) {
        return new AttentionProblem(batch, heads, heads, seq, seq, headDim, causal);
    }

    /** The scale actually applied: {@link #scale()} or, when NaN, 1/sqrt(D). */
    public double effectiveScale() {
        return Double.isNaN(scale) ? 1.0 / Math.sqrt(headDim) : scale;
    }

    /** Query heads sharing one key/value head. */
    public int groupSize() {
        return hq / hkv;
    }

    /** The key/value head that query head {@code qHead} reads. */
    public int kvHead(int qHead) {
        if (qHead < 0 || qHead >= hq) {
            throw new IndexOutOfBoundsException("query head " + qHead + " outside [0, " + hq + ")");
        }
        return qHead / groupSize();
    }

    /**
     * Number of keys query row {@code i} attends to: all {@code nk} without a mask, else
     * {@code clamp(i + nk - nq + 1, 0, nk)}. Zero means the row is fully masked.
     */
    public int visibleKeys(int i) {
        return visibleKeys(causal, i, nq, nk);
    }

    /** {@link #visibleKeys(int)} for a mask and lengths (the emulations walk rows without a problem). */
    public static int visibleKeys(boolean causal, int i, int nq, int nk) {
        if (!causal) {
            return nk;
        }
        long last = (long) i + nk - nq; // index of the last visible key
        return (int) Math.max(0, Math.min(nk, last + 1));
    }

    /**
     * Conventional floating-point operation count of the forward pass: 4 * B * Hq * Nq * Nk * D
     * (two matmuls of 2 flops per multiply-add), halved when causal. The halving is the convention
     * every attention benchmark uses (and RESULTS.md's {@code tops}); it ignores softmax work and is
     * only exact for Nq = Nk in the limit of long sequences.
     */
    public double flops() {
        double f = 4.0 * batch * hq * (double) nq * nk * headDim;
        return causal ? 0.5 * f : f;
    }

    /** Element count of Q (and of O). */
    public long qElements() {
        return (long) batch * hq * nq * headDim;
    }

    /** Element count of K (and of V). */
    public long kvElements() {
        return (long) batch * hkv * nk * headDim;
    }

    @Override
    public String toString() {
        return "B" + batch + "_Hq" + hq + "_Hkv" + hkv + "_Nq" + nq + "_Nk" + nk + "_D" + headDim
                + (causal ? "_causal" : "") + (Double.isNaN(scale) ? "" : "_scale" + scale);
    }

    private static void requirePositive(String name, int value) {
        if (value < 1) {
            throw new IllegalArgumentException(name + " must be at least 1, got " + value);
        }
    }
}
