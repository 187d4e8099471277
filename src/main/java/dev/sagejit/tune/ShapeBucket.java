package dev.sagejit.tune;

/**
 * The size class a tuned config is filed under. The best tile config depends on the problem's
 * shape (how many query blocks there are to spread over the SMs, how long each block's K/V loop
 * runs), but changes slowly with it: a config tuned for 4000 queries is, within noise, the best
 * one for 4096 too. Rounding every size up to a power of two keeps the database small, lets a
 * config tuned once serve every nearby size, and makes a lookup for an unseen size still hit.
 *
 * <p>Query and key lengths round up to the next power of two, at least {@value #MIN_SEQ} (one
 * block's worth of rows: below that every size runs the same single tile); batch times query heads
 * rounds up to a power of two (it only sets how many blocks there are). Head dim, causality and
 * precision are not here: they are part of the kernel spec key.
 *
 * @param q  query length bucket, a power of two, at least {@value #MIN_SEQ}
 * @param k  key length bucket, a power of two, at least {@value #MIN_SEQ}
 * @param bh batch times query heads bucket, a power of two
 */
public record ShapeBucket(int q, int k, int bh) {
    /** Smallest sequence-length bucket. */
    public static final int MIN_SEQ = 128;

    private static final java.util.regex.Pattern KEY = java.util.regex.Pattern.compile("q(\\d+)_k(\\d+)_bh(\\d+)");

    public ShapeBucket {
        requireBucket(q, MIN_SEQ, "q");
        requireBucket(k, MIN_SEQ, "k");
        requireBucket(bh, 1, "bh");
    }

    private static void requireBucket(int v, int min, String what) {
        if (v < min || Integer.bitCount(v) != 1) {
            throw new IllegalArgumentException("shape bucket: " + what + " must be a power of two of at least "
                    + min + ", got " + v + "; build buckets with ShapeBucket.of(batch, heads, nq, nk)");
        }
    }

    /**
     * The bucket of a problem.
     *
     * @param batch batch size
     * @param heads query heads (with GQA, the query head count, not the K/V one)
     * @param nq    query length
     * @param nk    key length
     */
    public static ShapeBucket of(int batch, int heads, int nq, int nk) {
        requirePositive(batch, "batch");
        requirePositive(heads, "heads");
        // Empty sequences (a documented result, no real work) share the smallest bucket.
        requireNonNegative(nq, "nq");
        requireNonNegative(nk, "nk");
        long bh = (long) batch * heads;
        if (bh > 1 << 30) {
            throw new IllegalArgumentException("shape bucket: batch * heads = " + bh + " is too large to bucket");
        }
        return new ShapeBucket(roundUp(nq, MIN_SEQ), roundUp(nk, MIN_SEQ), roundUp((int) bh, 1));
    }

    /** The bucket key of a problem, e.g. {@code q4096_k4096_bh128}. */
    public static String keyOf(int batch, int heads, int nq, int nk) {
        return of(batch, heads, nq, nk).key();
    }

    private static void requireNonNegative(int v, String what) {
        if (v < 0) {
            throw new IllegalArgumentException("shape bucket: " + what + " must not be negative, got " + v);
        }
    }

    private static void requirePositive(int v, String what) {
        if (v <= 0) {
            throw new IllegalArgumentException("shape bucket: " + what + " must be positive, got " + v);
        }
    }

    /** {@code n} rounded up to a power of two, and to at least {@code min} (itself a power of two). */
    static int roundUp(int n, int min) {
        if (n > 1 << 30) {
            throw new IllegalArgumentException("shape bucket: " + n + " is too large to round to a power of two");
        }
        return Math.max(min, n <= 1 ? 1 : Integer.highestOneBit(n - 1) << 1);
    }

    /** Readable key, e.g. {@code q4096_k4096_bh128}. */
    public String key() {
        return "q" + q + "_k" + k + "_bh" + bh;
    }

    /** Parses {@link #key()}. */
    public static ShapeBucket parse(String key) {
        var m = KEY.matcher(key.trim());
        if (!m.matches()) {
            throw new IllegalArgumentException("shape bucket '" + key
                    + "' is not of the form q4096_k4096_bh128; build it with ShapeBucket.of(batch, heads, nq, nk)");
        }
        try {
            return new ShapeBucket(Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2)),
                    Integer.parseInt(m.group(3)));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("shape bucket '" + key + "' has a number too large for a bucket", e);
        }
    }
}
