package dev.sagejit.api;

/**
 * The shape of dense host Q, K, V (and O): Q and O [B, H_q, N_q, D], K and V [B, H_kv, N_k, D], in
 * BHSD order or the BSHD equivalent, checked once.
 *
 * @param layout  element order of all four tensors
 * @param batch   B (0 allowed: nothing to compute)
 * @param heads   query heads H_q
 * @param kvHeads key/value heads H_kv (H_q a multiple of it: GQA/MQA)
 * @param nq      query length (0 allowed)
 * @param nk      key length (0 allowed)
 * @param headDim D
 */
public record HostShape(Layout layout, int batch, int heads, int kvHeads, int nq, int nk, int headDim) {

    public HostShape {
        java.util.Objects.requireNonNull(layout, "layout");
        if (batch < 0 || heads <= 0 || kvHeads <= 0 || nq < 0 || nk < 0 || headDim <= 0) {
            throw new SageException.InvalidInput("invalid sizes B=" + batch + " Hq=" + heads + " Hkv=" + kvHeads
                    + " Nq=" + nq + " Nk=" + nk + " D=" + headDim);
        }
    }

    /** Elements of Q (and of O). */
    public long qElements() {
        return (long) batch * heads * nq * headDim;
    }

    /** Elements of K (and of V). */
    public long kvElements() {
        return (long) batch * kvHeads * nk * headDim;
    }

    /** Entries of the log-sum-exp [B, H_q, N_q]. */
    public long lseEntries() {
        return (long) batch * heads * nq;
    }
}
