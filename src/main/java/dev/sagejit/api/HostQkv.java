package dev.sagejit.api;

/**
 * Q, K and V as host float arrays (values are rounded to the precision's 16-bit type before use),
 * dense in the given layout: Q [B, H_q, N_q, D] and K, V [B, H_kv, N_k, D] in BHSD order, or the BSHD
 * equivalents.
 */
public record HostQkv(Layout layout, int batch, int heads, int kvHeads, int nq, int nk, int headDim, float[] q,
        float[] k, float[] v) {

    public HostQkv {
        var shape = new HostShape(layout, batch, heads, kvHeads, nq, nk, headDim);
        if (q == null || k == null || v == null) {
            throw new SageException.InvalidInput("q, k and v arrays must not be null");
        }
        expect("q", q, shape.qElements());
        expect("k", k, shape.kvElements());
        expect("v", v, shape.kvElements());
    }

    /** The tensors' shape. */
    public HostShape shape() {
        return new HostShape(layout, batch, heads, kvHeads, nq, nk, headDim);
    }

    private static void expect(String name, float[] a, long n) {
        if (a.length != n) {
            throw new SageException.InvalidInput(name + " has " + a.length + " values, expected " + n);
        }
    }
}
