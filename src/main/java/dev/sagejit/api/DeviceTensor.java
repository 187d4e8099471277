package dev.sagejit.api;

import java.util.Arrays;

/**
 * A view of a Q, K, V or O tensor in GPU memory that sagejit does not own: a device address, the
 * element type, the logical sizes [batch, heads, seq, headDim] and the element strides of batch, head
 * and sequence (head-dim stride must be 1). Both BHSD and BSHD tensors, and slices of larger ones,
 * are described by their strides.
 *
 * @param address device pointer (CUdeviceptr value)
 * @param dtype   element type
 * @param batch   batch size
 * @param heads   number of heads
 * @param seq     sequence length
 * @param headDim head dimension
 * @param strides element strides {batch, head, seq}
 */
public record DeviceTensor(long address, DType dtype, int batch, int heads, int seq, int headDim, long[] strides) {

    public DeviceTensor {
        strides = strides.clone();
        if (strides.length != 3) {
            throw new SageException.InvalidInput("strides must be {batch, head, seq} (3 values), got "
                    + Arrays.toString(strides));
        }
        if (batch < 0 || heads < 0 || seq < 0 || headDim < 0) {
            throw new SageException.InvalidInput("negative size in [" + batch + ", " + heads + ", " + seq + ", "
                    + headDim + "]");
        }
    }

    /** A contiguous tensor of the given layout. */
    public static DeviceTensor contiguous(long address, DType dtype, Layout layout, int batch, int heads, int seq,
            int headDim) {
        return new DeviceTensor(address, dtype, batch, heads, seq, headDim,
                layout.contiguousStrides(heads, seq, headDim));
    }

    @Override
    public long[] strides() {
        return strides.clone();
    }

    public long batchStride() {
        return strides[0];
    }

    public long headStride() {
        return strides[1];
    }

    public long seqStride() {
        return strides[2];
    }

    /** Bytes spanned from the first to one past the last element. */
    public long extentBytes() {
        if (batch == 0 || heads == 0 || seq == 0) {
            return 0;
        }
        long last = (batch - 1L) * strides[0] + (heads - 1L) * strides[1] + (seq - 1L) * strides[2] + headDim;
        return last * dtype.bytes();
    }

    @Override
    public String toString() {
        return "DeviceTensor[" + dtype + " " + batch + "x" + heads + "x" + seq + "x" + headDim + " strides "
                + Arrays.toString(strides) + " @0x" + Long.toHexString(address) + "]";
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof DeviceTensor t && t.address == address && t.dtype == dtype && t.batch == batch
                && t.heads == heads && t.seq == seq && t.headDim == headDim && Arrays.equals(t.strides, strides);
    }

    @Override
    public int hashCode() {
        return Long.hashCode(address) * 31 + Arrays.hashCode(strides);
    }
}
