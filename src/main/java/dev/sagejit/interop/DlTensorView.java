package dev.sagejit.interop;

import dev.sagejit.api.DType;
import dev.sagejit.api.DeviceTensor;
import dev.sagejit.api.Layout;
import dev.sagejit.api.SageException;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A tensor imported from a DLPack producer ({@link DlPack#importTensor}, {@link DlPack#importVersioned}):
 * the facts of its {@code DLTensor}, copied out at import, plus ownership of the producer's struct.
 * {@link #close()} calls the producer's deleter exactly once; after that the data address must no
 * longer be used (the accessors still answer, from the copies).
 */
public final class DlTensorView implements AutoCloseable {
    private final long managedAddress;
    private final MemorySegment deleter;
    private final boolean versioned;
    private final DlPack.Version version;
    private final long flags;
    private final long data;
    private final long byteOffset;
    private final DlPack.Device device;
    private final DlPack.DataType dtype;
    private final long[] shape;
    private final long[] strides;
    private final boolean compactImplied;
    private final AtomicBoolean closed = new AtomicBoolean();

    DlTensorView(long managedAddress, MemorySegment deleter, boolean versioned, DlPack.Version version, long flags,
            long data, long byteOffset, DlPack.Device device, DlPack.DataType dtype, long[] shape, long[] strides,
            boolean compactImplied) {
        this.managedAddress = managedAddress;
        this.deleter = deleter;
        this.versioned = versioned;
        this.version = version;
        this.flags = flags;
        this.data = data;
        this.byteOffset = byteOffset;
        this.device = device;
        this.dtype = dtype;
        this.shape = shape.clone();
        this.strides = strides.clone();
        this.compactImplied = compactImplied;
    }

    /** Address of the producer's managed struct. */
    public long managedAddress() {
        return managedAddress;
    }

    /** Whether the struct was a {@code DLManagedTensorVersioned}. */
    public boolean versioned() {
        return versioned;
    }

    /** The DLPack version of a versioned struct; empty for the legacy struct. */
    public Optional<DlPack.Version> version() {
        return Optional.ofNullable(version);
    }

    /** {@code DLManagedTensorVersioned.flags} (0 for the legacy struct). */
    public long flags() {
        return flags;
    }

    /** Whether the producer marked the tensor read-only ({@link DlPack#FLAG_READ_ONLY}). */
    public boolean readOnly() {
        return (flags & DlPack.FLAG_READ_ONLY) != 0;
    }

    /** {@code DLTensor.data}, without {@link #byteOffset()}. */
    public long dataPointer() {
        return data;
    }

    /** {@code DLTensor.byte_offset}. */
    public long byteOffset() {
        return byteOffset;
    }

    /** Address of the first element: {@code data + byte_offset}. */
    public long address() {
        return data + byteOffset;
    }

    /** {@code DLTensor.device}. */
    public DlPack.Device device() {
        return device;
    }

    /** {@code DLTensor.dtype}. */
    public DlPack.DataType dtype() {
        return dtype;
    }

    /** The sagejit element type, for scalar float32, float16 and bfloat16 tensors. */
    public Optional<DType> sageDType() {
        return dtype.toSage();
    }

    /** Number of dimensions. */
    public int ndim() {
        return shape.length;
    }

    /** {@code DLTensor.shape}. */
    public long[] shape() {
        return shape.clone();
    }

    /** Element strides; compact row-major ones when the producer passed NULL. */
    public long[] strides() {
        return strides.clone();
    }

    /** Whether the producer passed NULL strides (meaning compact row-major). */
    public boolean stridesWereNull() {
        return compactImplied;
    }

    /** Whether the tensor is compact row-major (dimensions of size 1 may have any stride). */
    public boolean isRowMajorContiguous() {
        long[] c = DlPack.compactStrides(shape);
        for (int i = 0; i < shape.length; i++) {
            if (shape[i] != 1 && strides[i] != c[i]) {
                return false;
            }
        }
        return true;
    }

    /**
     * This tensor as sagejit's attention operand: rank 4, on a CUDA device, float32/float16/bfloat16
     * with one lane, head dimension stride 1, other strides &ge; 0. {@code layout} says how the four
     * dimensions are ordered: {@link Layout#BHSD} is {@code [B, H, N, D]}, {@link Layout#BSHD} is
     * {@code [B, N, H, D]}. The address includes {@code byte_offset}; the view must stay open while
     * the returned tensor is in use, and the caller must launch on device {@link #device()}{@code .id()}.
     *
     * @throws SageException.InvalidInput when the tensor cannot be described as a {@link DeviceTensor}
     */
    public DeviceTensor toDeviceTensor(Layout layout) {
        if (closed.get()) {
            throw new SageException.InvalidInput("the DLPack tensor was already closed (its deleter ran); "
                    + "import it again from the producer");
        }
        if (device.type() != DlPack.KDL_CUDA) {
            throw new SageException.InvalidInput("the DLPack tensor is on " + device + ", sagejit needs kDLCUDA "
                    + "device memory; move it to the GPU first (e.g. tensor.cuda() in PyTorch)");
        }
        if (shape.length != 4) {
            throw new SageException.InvalidInput("the DLPack tensor has rank " + shape.length + " (shape "
                    + Arrays.toString(shape) + "); attention operands are rank 4, " + describe(layout));
        }
        if (dtype.lanes() != 1) {
            throw new SageException.InvalidInput("the DLPack tensor has " + dtype.lanes() + " lanes per element ("
                    + dtype + "); sagejit reads scalar elements only (lanes = 1)");
        }
        DType t = dtype.toSage().orElseThrow(() -> new SageException.InvalidInput("the DLPack tensor's dtype "
                + dtype + " (code " + dtype.code() + ", bits " + dtype.bits() + ") is not float32, float16 or "
                + "bfloat16; convert it first (e.g. tensor.to(torch.bfloat16))"));
        if (strides[3] != 1 && shape[3] != 1) {
            throw new SageException.InvalidInput("the DLPack tensor's innermost (head_dim) stride is " + strides[3]
                    + ", sagejit needs 1; make it contiguous in the last dimension first (e.g. tensor.contiguous())");
        }
        for (int i = 0; i < 3; i++) {
            if (strides[i] < 0) {
                throw new SageException.InvalidInput("the DLPack tensor has negative strides "
                        + Arrays.toString(strides) + "; sagejit needs non-negative strides (copy a flipped tensor)");
            }
        }
        int b = dim(0);
        int d = dim(3);
        return switch (layout) {
            case BHSD -> new DeviceTensor(address(), t, b, dim(1), dim(2), d,
                    new long[] {strides[0], strides[1], strides[2]});
            case BSHD -> new DeviceTensor(address(), t, b, dim(2), dim(1), d,
                    new long[] {strides[0], strides[2], strides[1]});
        };
    }

    private static String describe(Layout layout) {
        return switch (layout) {
            case BHSD -> "[batch, heads, seq, head_dim] for BHSD";
            case BSHD -> "[batch, seq, heads, head_dim] for BSHD";
        };
    }

    private int dim(int i) {
        if (shape[i] > Integer.MAX_VALUE) {
            throw new SageException.InvalidInput("the DLPack tensor's dimension " + i + " is " + shape[i]
                    + ", more than sagejit's int sizes hold");
        }
        return (int) shape[i];
    }

    /** Whether {@link #close()} has run. */
    public boolean isClosed() {
        return closed.get();
    }

    /**
     * Releases the tensor: calls the producer's deleter (if not NULL) on the first call only; later
     * calls do nothing.
     */
    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) {
            DlPack.callDeleter(deleter, managedAddress);
        }
    }

    @Override
    public String toString() {
        return "DlTensorView[" + dtype + " " + Arrays.toString(shape) + " strides " + Arrays.toString(strides)
                + " on " + device + " @0x" + Long.toHexString(address()) + (closed.get() ? ", closed" : "") + "]";
    }
}
