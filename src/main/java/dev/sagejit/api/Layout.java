package dev.sagejit.api;

/**
 * Memory order of a contiguous Q/K/V/O tensor. Kernels take strides, so both layouts run the same
 * compiled kernel; the layout only decides which strides a contiguous tensor has.
 */
public enum Layout {
    /** [batch, heads, sequence, head_dim] ("HND"). */
    BHSD,
    /** [batch, sequence, heads, head_dim] ("NHD"). */
    BSHD;

    /** Element strides {batch, head, seq} of a contiguous tensor of this layout; head_dim stride is 1. */
    public long[] contiguousStrides(int heads, int seq, int headDim) {
        return switch (this) {
            case BHSD -> new long[] {(long) heads * seq * headDim, (long) seq * headDim, headDim};
            case BSHD -> new long[] {(long) seq * heads * headDim, headDim, (long) heads * headDim};
        };
    }

    /** Shape of a tensor of this layout, in its own dimension order. */
    public long[] shape(int batch, int heads, int seq, int headDim) {
        return switch (this) {
            case BHSD -> new long[] {batch, heads, seq, headDim};
            case BSHD -> new long[] {batch, seq, heads, headDim};
        };
    }
}
