package dev.sagejit.reference;

import java.util.Objects;

/**
 * The shape Q [B, Hq, Nq, D], K and V [B, Hkv, Nk, D] of host inputs to the emulated quantized
 * modes, checked once: tensors agree on batch and head dim, K and V on heads and length, Hq is a
 * multiple of Hkv, and a given K mean has [B, Hkv, D] entries.
 */
record QkvShape(int batch, int hq, int hkv, int nq, int nk, int headDim) {

    /** The shape of q, k, v (and kmean, when not null), or an IllegalArgumentException naming the mismatch. */
    static QkvShape of(HostTensor q, HostTensor k, HostTensor v, float[] kmean) {
        Objects.requireNonNull(q, "q");
        Objects.requireNonNull(k, "k");
        Objects.requireNonNull(v, "v");
        int d = q.headDim();
        if (k.batch() != q.batch() || v.batch() != q.batch() || k.headDim() != d || v.headDim() != d) {
            throw new IllegalArgumentException("Q " + q + ", K " + k + " and V " + v
                    + " must agree on batch and head dimension");
        }
        if (v.heads() != k.heads() || v.seq() != k.seq()) {
            throw new IllegalArgumentException("K " + k + " and V " + v + " must have the same heads and length");
        }
        if (k.heads() < 1 || q.heads() % k.heads() != 0) {
            throw new IllegalArgumentException("query heads (" + q.heads() + ") must be a multiple of key/value heads ("
                    + k.heads() + ")");
        }
        var shape = new QkvShape(q.batch(), q.heads(), k.heads(), q.seq(), k.seq(), d);
        if (kmean != null && kmean.length != shape.batch * shape.hkv * d) {
            throw new IllegalArgumentException("kmean has " + kmean.length + " elements but [B=" + shape.batch
                    + ", Hkv=" + shape.hkv + ", D=" + d + "] needs " + shape.batch * shape.hkv * d);
        }
        return shape;
    }
}
