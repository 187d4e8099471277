package dev.sagejit.api;

/**
 * Q, K and V as host float arrays (values are rounded to the precision's 16-bit type before use),
 * dense in the given layout: Q [B, H_q, N_q, D] and K, V [B, H_kv, N_k, D] in BHSD order, or the BSHD
 * equivalents.
 */
public record HostQkv(Layout layout, int batch, int heads, int kvHeads, int nq, int nk, int headDim, float[] q,
        float[] k, float[] v) {

    public HostQkv {
        java.util.Objects.requireNonNull(layout, "layout");
        if (q == null || k == null || v == null) {
            throw new SageException.InvalidInput("q, k and v arrays must not be null");
        }
        if (batch < 0 || heads <= 0 || kvHeads <= 0 || nq < 0 || nk < 0 || headDim <= 0) {
            throw new SageException.InvalidInput("invalid sizes B=" + batch + " Hq=" + heads + " Hkv=" + kvHeads
                    + " Nq=" + nq + " Nk=" + nk + " D=" + headDim);
        }
        expect("q", q, (long) batch * heads * nq * headDim);
        expect("k", k, (long) batch * kvHeads * nk * headDim);
        expect("v", v, (long) batch * kvHeads * nk * headDim);
    }

    private static void expect(String name, float[] a, long n) {
        if (a.length != n) {
            throw new SageException.InvalidInput(name + " has " + a.length + " values, expected " + n);
        }
    }
}
