package dev.sagejit.reference;

import dev.sagejit.api.DType;
import dev.sagejit.api.Layout;
import dev.sagejit.util.Half;
import java.util.Objects;

/**
 * A dense 4-d tensor of floats in host memory, stored contiguously in {@code layout}. Dimensions
 * are always named logically (batch, heads, seq, headDim) whatever the storage order. The array is
 * shared, not copied: records of arrays compare by identity.
 *
 * @param data    elements in {@code layout} order; length batch * heads * seq * headDim
 * @param batch   batch size
 * @param heads   heads
 * @param seq     sequence length
 * @param headDim head dimension (always the innermost, stride 1)
 * @param layout  storage order
 */
public record HostTensor(float[] data, int batch, int heads, int seq, int headDim, Layout layout) {

    public HostTensor {
        Objects.requireNonNull(data, "data");
        Objects.requireNonNull(layout, "layout");
        if (batch < 1 || heads < 1 || seq < 1 || headDim < 1) {
            throw new IllegalArgumentException("tensor dimensions must be positive, got [B=" + batch + ", H="
                    + heads + ", N=" + seq + ", D=" + headDim + "]");
        }
        long n = (long) batch * heads * seq * headDim;
        if (n != data.length) {
            throw new IllegalArgumentException("data has " + data.length + " elements but [B=" + batch + ", H="
                    + heads + ", N=" + seq + ", D=" + headDim + "] needs " + n);
        }
    }

    /** A zero-filled tensor; fails with a clear message beyond 2^31 - 1 elements. */
    public static HostTensor zeros(int batch, int heads, int seq, int headDim, Layout layout) {
        long n = (long) batch * heads * seq * headDim;
        if (n > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("tensor of " + n + " elements exceeds a Java array; split the batch");
        }
        return new HostTensor(new float[(int) Math.max(n, 0)], batch, heads, seq, headDim, layout);
    }

    /** A tensor holding the widened values of 16-bit {@code bits} of type {@code t}. */
    public static HostTensor fromBits(short[] bits, DType t, int batch, int heads, int seq, int headDim,
            Layout layout) {
        return new HostTensor(Half.fromBits(bits, t), batch, heads, seq, headDim, layout);
    }

    /** Offset of element (b, h, n, d) in {@link #data()}. */
    public int index(int b, int h, int n, int d) {
        return switch (layout) {
            case BHSD -> ((b * heads + h) * seq + n) * headDim + d;
            case BSHD -> ((b * seq + n) * heads + h) * headDim + d;
        };
    }

    /** Distance in {@link #data()} between consecutive sequence positions of one (b, h). */
    public int seqStride() {
        return layout == Layout.BHSD ? headDim : heads * headDim;
    }

    public float get(int b, int h, int n, int d) {
        return data[index(b, h, n, d)];
    }

    public void set(int b, int h, int n, int d, float value) {
        data[index(b, h, n, d)] = value;
    }

    /** Shape in storage order, e.g. {@code [B, N, H, D]} for BSHD. */
    public long[] shape() {
        return layout.shape(batch, heads, seq, headDim);
    }

    /** The same logical tensor stored in {@code target} (this tensor itself when already there). */
    public HostTensor toLayout(Layout target) {
        if (target == layout) {
            return this;
        }
        HostTensor out = zeros(batch, heads, seq, headDim, target);
        for (int b = 0; b < batch; b++) {
            for (int h = 0; h < heads; h++) {
                for (int n = 0; n < seq; n++) {
                    System.arraycopy(data, index(b, h, n, 0), out.data, out.index(b, h, n, 0), headDim);
                }
            }
        }
        return out;
    }

    /** A copy with every value rounded through {@code t}: the values a GPU reading {@code t} sees. */
    public HostTensor roundTo(DType t) {
        return new HostTensor(Half.round(data, t), batch, heads, seq, headDim, layout);
    }

    /** Every element rounded to {@code t} (BF16 or FP16), in storage order. */
    public short[] bits(DType t) {
        return Half.toBits(data, t);
    }

    @Override
    public String toString() {
        return "HostTensor[" + layout + " B=" + batch + " H=" + heads + " N=" + seq + " D=" + headDim + "]";
    }
}
