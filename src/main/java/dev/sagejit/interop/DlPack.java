package dev.sagejit.interop;

import static java.lang.foreign.MemoryLayout.PathElement.groupElement;
import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import dev.sagejit.api.DType;
import dev.sagejit.api.SageException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.util.Arrays;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * DLPack interop through {@code java.lang.foreign}: the C structs of {@code dlpack.h} (ABI of
 * DLPack 0.8 and 1.x) as {@link MemoryLayout}s, import of a producer's {@code DLManagedTensor} or
 * {@code DLManagedTensorVersioned} as a {@link DlTensorView}, and export of memory sagejit knows as a
 * {@code DLManagedTensor} another library can consume. Nothing is copied either way: the tensors share
 * the data pointer.
 *
 * <p>Ownership, import: {@link #importTensor} takes the producer's tensor; the view's
 * {@link DlTensorView#close()} calls the producer's deleter exactly once. If the import is rejected,
 * the deleter has already been called when the exception is thrown.
 *
 * <p>Ownership, export: see {@link #exportTensor}; the {@code arena} passed there must stay open until
 * the consumer has called the deleter, because the deleter's code (an upcall stub) lives in it.
 */
// Reading foreign pointers and binding the deleter are this class's purpose; the JVM runs with
// --enable-native-access.
@SuppressWarnings("restricted")
public final class DlPack {
    private static final Logger LOG = LoggerFactory.getLogger(DlPack.class);

    /** {@code DLDeviceType kDLCPU}. */
    public static final int KDL_CPU = 1;
    /** {@code DLDeviceType kDLCUDA}. */
    public static final int KDL_CUDA = 2;
    /** {@code DLDeviceType kDLCUDAHost} (pinned host memory). */
    public static final int KDL_CUDA_HOST = 3;
    /** {@code DLDeviceType kDLCUDAManaged} (unified memory). */
    public static final int KDL_CUDA_MANAGED = 13;

    /** {@code DLDataTypeCode kDLInt}. */
    public static final int KDL_INT = 0;
    /** {@code DLDataTypeCode kDLUInt}. */
    public static final int KDL_UINT = 1;
    /** {@code DLDataTypeCode kDLFloat}. */
    public static final int KDL_FLOAT = 2;
    /** {@code DLDataTypeCode kDLBfloat}. */
    public static final int KDL_BFLOAT = 4;

    /** The DLPack ABI major version this code reads and writes ({@code DLPACK_MAJOR_VERSION}). */
    public static final int MAJOR_VERSION = 1;
    /** The DLPack minor version written on export. */
    public static final int MINOR_VERSION = 1;
    /** {@code DLPACK_FLAG_BITMASK_READ_ONLY} of {@code DLManagedTensorVersioned.flags}. */
    public static final long FLAG_READ_ONLY = 1L;
    /** {@code DLPACK_FLAG_BITMASK_IS_COPIED}. */
    public static final long FLAG_IS_COPIED = 1L << 1;

    /** Largest rank accepted on import; a larger {@code ndim} means the pointer is not a DLPack tensor. */
    public static final int MAX_NDIM = 1024;

    /** {@code DLDevice {int32 device_type; int32 device_id;}} (8 bytes). */
    public static final StructLayout DL_DEVICE = MemoryLayout.structLayout(
            JAVA_INT.withName("device_type"),
            JAVA_INT.withName("device_id")).withName("DLDevice");

    /** {@code DLDataType {uint8 code; uint8 bits; uint16 lanes;}} (4 bytes). */
    public static final StructLayout DL_DATA_TYPE = MemoryLayout.structLayout(
            JAVA_BYTE.withName("code"),
            JAVA_BYTE.withName("bits"),
            JAVA_SHORT.withName("lanes")).withName("DLDataType");

    /**
     * {@code DLTensor {void* data; DLDevice device; int32 ndim; DLDataType dtype; int64* shape;
     * int64* strides; uint64 byte_offset;}} (48 bytes on 64-bit targets).
     */
    public static final StructLayout DL_TENSOR = MemoryLayout.structLayout(
            ADDRESS.withName("data"),
            DL_DEVICE.withName("device"),
            JAVA_INT.withName("ndim"),
            DL_DATA_TYPE.withName("dtype"),
            ADDRESS.withName("shape"),
            ADDRESS.withName("strides"),
            JAVA_LONG.withName("byte_offset")).withName("DLTensor");

    /** {@code DLManagedTensor {DLTensor dl_tensor; void* manager_ctx; void (*deleter)(DLManagedTensor*);}} (64 bytes). */
    public static final StructLayout DL_MANAGED_TENSOR = MemoryLayout.structLayout(
            DL_TENSOR.withName("dl_tensor"),
            ADDRESS.withName("manager_ctx"),
            ADDRESS.withName("deleter")).withName("DLManagedTensor");

    /** {@code DLPackVersion {uint32 major; uint32 minor;}} (8 bytes, DLPack 1.x). */
    public static final StructLayout DL_PACK_VERSION = MemoryLayout.structLayout(
            JAVA_INT.withName("major"),
            JAVA_INT.withName("minor")).withName("DLPackVersion");

    /**
     * {@code DLManagedTensorVersioned {DLPackVersion version; void* manager_ctx; void (*deleter)(...);
     * uint64 flags; DLTensor dl_tensor;}} (80 bytes, DLPack 1.x).
     */
    public static final StructLayout DL_MANAGED_TENSOR_VERSIONED = MemoryLayout.structLayout(
            DL_PACK_VERSION.withName("version"),
            ADDRESS.withName("manager_ctx"),
            ADDRESS.withName("deleter"),
            JAVA_LONG.withName("flags"),
            DL_TENSOR.withName("dl_tensor")).withName("DLManagedTensorVersioned");

    // field offsets inside DLTensor
    private static final long T_DATA = DL_TENSOR.byteOffset(groupElement("data"));
    private static final long T_DEVICE_TYPE = DL_TENSOR.byteOffset(groupElement("device"), groupElement("device_type"));
    private static final long T_DEVICE_ID = DL_TENSOR.byteOffset(groupElement("device"), groupElement("device_id"));
    private static final long T_NDIM = DL_TENSOR.byteOffset(groupElement("ndim"));
    private static final long T_CODE = DL_TENSOR.byteOffset(groupElement("dtype"), groupElement("code"));
    private static final long T_BITS = DL_TENSOR.byteOffset(groupElement("dtype"), groupElement("bits"));
    private static final long T_LANES = DL_TENSOR.byteOffset(groupElement("dtype"), groupElement("lanes"));
    private static final long T_SHAPE = DL_TENSOR.byteOffset(groupElement("shape"));
    private static final long T_STRIDES = DL_TENSOR.byteOffset(groupElement("strides"));
    private static final long T_BYTE_OFFSET = DL_TENSOR.byteOffset(groupElement("byte_offset"));
    // field offsets of the two managed structs
    private static final long M_TENSOR = DL_MANAGED_TENSOR.byteOffset(groupElement("dl_tensor"));
    private static final long M_CTX = DL_MANAGED_TENSOR.byteOffset(groupElement("manager_ctx"));
    private static final long M_DELETER = DL_MANAGED_TENSOR.byteOffset(groupElement("deleter"));
    private static final long V_MAJOR = DL_MANAGED_TENSOR_VERSIONED.byteOffset(groupElement("version"), groupElement("major"));
    private static final long V_MINOR = DL_MANAGED_TENSOR_VERSIONED.byteOffset(groupElement("version"), groupElement("minor"));
    private static final long V_CTX = DL_MANAGED_TENSOR_VERSIONED.byteOffset(groupElement("manager_ctx"));
    private static final long V_DELETER = DL_MANAGED_TENSOR_VERSIONED.byteOffset(groupElement("deleter"));
    private static final long V_FLAGS = DL_MANAGED_TENSOR_VERSIONED.byteOffset(groupElement("flags"));
    private static final long V_TENSOR = DL_MANAGED_TENSOR_VERSIONED.byteOffset(groupElement("dl_tensor"));

    /** {@code void deleter(void* self)}: the signature of both managed structs' deleters. */
    private static final FunctionDescriptor DELETER_SIGNATURE = FunctionDescriptor.ofVoid(ADDRESS);
    /** Calls a deleter function pointer: {@code (MemorySegment fn, MemorySegment self) -> void}. */
    private static final MethodHandle CALL_DELETER = Linker.nativeLinker().downcallHandle(DELETER_SIGNATURE);
    private static final MethodHandle RELEASE;

    static {
        try {
            RELEASE = MethodHandles.lookup().findVirtual(Export.class, "release",
                    MethodType.methodType(void.class, MemorySegment.class));
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private static final Map<Integer, String> DEVICE_NAMES = Map.ofEntries(
            Map.entry(1, "kDLCPU"), Map.entry(2, "kDLCUDA"), Map.entry(3, "kDLCUDAHost"), Map.entry(4, "kDLOpenCL"),
            Map.entry(7, "kDLVulkan"), Map.entry(8, "kDLMetal"), Map.entry(9, "kDLVPI"), Map.entry(10, "kDLROCM"),
            Map.entry(11, "kDLROCMHost"), Map.entry(12, "kDLExtDev"), Map.entry(13, "kDLCUDAManaged"),
            Map.entry(14, "kDLOneAPI"), Map.entry(15, "kDLWebGPU"), Map.entry(16, "kDLHexagon"),
            Map.entry(17, "kDLMAIA"), Map.entry(18, "kDLTrn"));

    private DlPack() {
    }

    /**
     * A {@code DLDevice}.
     *
     * @param type {@code DLDeviceType} value, e.g. {@link #KDL_CUDA}
     * @param id   device ordinal (0 for host memory)
     */
    public record Device(int type, int id) {
        /** The enum constant's name, e.g. {@code kDLCUDA}, or {@code device_type N} for unknown values. */
        public String typeName() {
            return DEVICE_NAMES.getOrDefault(type, "device_type " + type);
        }

        @Override
        public String toString() {
            return typeName() + ":" + id;
        }
    }

    /**
     * A {@code DLDataType}.
     *
     * @param code  {@code DLDataTypeCode}, e.g. {@link #KDL_FLOAT}
     * @param bits  bits per lane
     * @param lanes lanes per element (1 for scalars)
     */
    public record DataType(int code, int bits, int lanes) {
        /** The DLPack type of a sagejit element type. */
        public static DataType of(DType t) {
            return switch (t) {
                case FP32 -> new DataType(KDL_FLOAT, 32, 1);
                case FP16 -> new DataType(KDL_FLOAT, 16, 1);
                case BF16 -> new DataType(KDL_BFLOAT, 16, 1);
            };
        }

        /** The sagejit element type, for scalar float32, float16 and bfloat16. */
        public Optional<DType> toSage() {
            if (lanes != 1) {
                return Optional.empty();
            }
            if (code == KDL_FLOAT && bits == 32) {
                return Optional.of(DType.FP32);
            }
            if (code == KDL_FLOAT && bits == 16) {
                return Optional.of(DType.FP16);
            }
            if (code == KDL_BFLOAT && bits == 16) {
                return Optional.of(DType.BF16);
            }
            return Optional.empty();
        }

        /** Bytes per element, {@code ceil(bits * lanes / 8)} as {@code dlpack.h} computes sizes. */
        public long elementBytes() {
            return ((long) bits * lanes + 7) / 8;
        }

        @Override
        public String toString() {
            String name = switch (code) {
                case KDL_INT -> "int";
                case KDL_UINT -> "uint";
                case KDL_FLOAT -> "float";
                case KDL_BFLOAT -> "bfloat";
                default -> "code" + code + "_";
            };
            return name + bits + (lanes == 1 ? "" : "x" + lanes);
        }
    }

    /**
     * A {@code DLPackVersion}.
     *
     * @param major ABI version; only {@link #MAJOR_VERSION} is readable
     * @param minor minor version (new enum values only)
     */
    public record Version(int major, int minor) {
    }

    /**
     * Imports a producer's {@code DLManagedTensor} (the legacy, unversioned struct that
     * {@code torch.utils.dlpack.to_dlpack} and {@code __dlpack__()} without {@code max_version}
     * produce). The view owns the tensor from now on; close it to call the producer's deleter.
     *
     * @param managedTensorPtr address of the {@code DLManagedTensor} (its size does not matter)
     * @throws SageException.InvalidInput when the struct is unreadable (NULL, negative or huge rank,
     *                                    NULL shape); the deleter has then been called already
     */
    public static DlTensorView importTensor(MemorySegment managedTensorPtr) {
        MemorySegment m = requireStruct(managedTensorPtr, DL_MANAGED_TENSOR, "DLManagedTensor");
        MemorySegment deleter = m.get(ADDRESS, M_DELETER);
        return read(m, M_TENSOR, deleter, false, null, 0);
    }

    /**
     * Imports a producer's {@code DLManagedTensorVersioned} (DLPack 1.x, what
     * {@code __dlpack__(max_version=(1, 0))} produces).
     *
     * @throws SageException.Unsupported  when the major version is not {@link #MAJOR_VERSION}; the
     *                                    deleter has been called, as the DLPack spec requires
     * @throws SageException.InvalidInput when the struct is unreadable; the deleter has been called
     */
    public static DlTensorView importVersioned(MemorySegment managedTensorPtr) {
        MemorySegment m = requireStruct(managedTensorPtr, DL_MANAGED_TENSOR_VERSIONED, "DLManagedTensorVersioned");
        MemorySegment deleter = m.get(ADDRESS, V_DELETER);
        Version version = new Version(m.get(JAVA_INT, V_MAJOR), m.get(JAVA_INT, V_MINOR));
        if (version.major() != MAJOR_VERSION) {
            callDeleter(deleter, m.address());
            throw new SageException.Unsupported("DLManagedTensorVersioned has DLPack version " + version.major()
                    + "." + version.minor() + " but sagejit reads major version " + MAJOR_VERSION
                    + "; the tensor was released. Ask the producer for max_version=(1, x) or a legacy DLManagedTensor");
        }
        return read(m, V_TENSOR, deleter, true, version, m.get(JAVA_LONG, V_FLAGS));
    }

    private static MemorySegment requireStruct(MemorySegment ptr, StructLayout layout, String what) {
        if (ptr == null || ptr.address() == 0) {
            throw new SageException.InvalidInput("the " + what + " pointer is NULL; pass the address the producer "
                    + "returned (for a PyCapsule, PyCapsule_GetPointer(capsule, \"dltensor\"))");
        }
        return MemorySegment.ofAddress(ptr.address()).reinterpret(layout.byteSize());
    }

    private static DlTensorView read(MemorySegment m, long tensorAt, MemorySegment deleter, boolean versioned,
            Version version, long flags) {
        MemorySegment t = m.asSlice(tensorAt, DL_TENSOR.byteSize());
        try {
            int ndim = t.get(JAVA_INT, T_NDIM);
            if (ndim < 0 || ndim > MAX_NDIM) {
                throw new SageException.InvalidInput("DLTensor.ndim is " + ndim + ", outside 0.." + MAX_NDIM
                        + "; the pointer is probably not a " + (versioned ? "DLManagedTensorVersioned" : "DLManagedTensor")
                        + (versioned ? "" : " (a DLPack 1.x producer may have handed a versioned struct: use importVersioned)"));
            }
            Device device = new Device(t.get(JAVA_INT, T_DEVICE_TYPE), t.get(JAVA_INT, T_DEVICE_ID));
            DataType dtype = new DataType(Byte.toUnsignedInt(t.get(JAVA_BYTE, T_CODE)),
                    Byte.toUnsignedInt(t.get(JAVA_BYTE, T_BITS)), Short.toUnsignedInt(t.get(JAVA_SHORT, T_LANES)));
            long[] shape = longs(t.get(ADDRESS, T_SHAPE), ndim, "shape");
            for (long d : shape) {
                if (d < 0) {
                    throw new SageException.InvalidInput("DLTensor.shape " + Arrays.toString(shape)
                            + " has a negative dimension");
                }
            }
            MemorySegment stridesPtr = t.get(ADDRESS, T_STRIDES);
            long[] strides = stridesPtr.address() == 0 ? compactStrides(shape) : longs(stridesPtr, ndim, "strides");
            long data = t.get(ADDRESS, T_DATA).address();
            long byteOffset = t.get(JAVA_LONG, T_BYTE_OFFSET);
            return new DlTensorView(m.address(), deleter, versioned, version, flags, data, byteOffset, device, dtype,
                    shape, strides, stridesPtr.address() == 0);
        } catch (RuntimeException e) {
            callDeleter(deleter, m.address());
            throw e;
        }
    }

    private static long[] longs(MemorySegment ptr, int n, String field) {
        if (n == 0) {
            return new long[0];
        }
        if (ptr.address() == 0) {
            throw new SageException.InvalidInput("DLTensor." + field + " is NULL for a rank-" + n
                    + " tensor; the producer must provide " + n + " int64 values");
        }
        return ptr.reinterpret(8L * n).toArray(JAVA_LONG);
    }

    /** Element strides of a compact row-major (C order) tensor. */
    public static long[] compactStrides(long[] shape) {
        long[] s = new long[shape.length];
        long step = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            s[i] = step;
            step *= Math.max(shape[i], 1);
        }
        return s;
    }

    /** Calls a producer's deleter on {@code self}; a NULL deleter means there is nothing to release. */
    static void callDeleter(MemorySegment deleter, long self) {
        if (deleter.address() == 0) {
            return;
        }
        try {
            CALL_DELETER.invokeExact(deleter, MemorySegment.ofAddress(self));
        } catch (Throwable e) {
            throw new IllegalStateException("the DLPack deleter at 0x" + Long.toHexString(deleter.address())
                    + " failed", e);
        }
    }

    /**
     * Exports memory as a legacy {@code DLManagedTensor} (what most consumers accept, e.g.
     * {@code torch.utils.dlpack.from_dlpack} on a capsule). No data is copied.
     *
     * <p>Ownership: the struct, shape and strides are allocated here in memory of their own; the
     * deleter, an upcall stub allocated in {@code arena}, runs {@code onRelease} exactly once (however
     * often the consumer calls it) and then frees that memory. {@code arena} must stay open until the
     * consumer has called the deleter: a consumer calling it after {@code arena} closed jumps into freed
     * code. If {@code arena} closes first, the struct memory is freed then and {@code onRelease} does
     * not run. The data at {@code address} stays the caller's: keep it alive until {@code onRelease}.
     * {@code onRelease} may run on any thread, including a foreign one; exceptions it throws are logged,
     * since none may cross back into native code.
     *
     * @param address    data pointer (device pointer for CUDA, host address for CPU)
     * @param dtype      element type
     * @param shape      dimensions
     * @param strides    element strides, one per dimension; null for compact row-major (written out
     *                   explicitly, since DLPack 1.1 consumers may reject NULL strides)
     * @param deviceType {@code DLDeviceType}, e.g. {@link #KDL_CUDA}
     * @param deviceId   device ordinal
     * @param onRelease  run when the consumer is done (may be null)
     * @param arena      holds the deleter stub; must outlive the consumer's use of the tensor
     * @return the {@code DLManagedTensor}; pass {@code .address()} to native consumers
     */
    public static MemorySegment exportTensor(long address, DType dtype, long[] shape, long[] strides, int deviceType,
            int deviceId, Runnable onRelease, Arena arena) {
        return export(false, address, dtype, shape, strides, deviceType, deviceId, 0, onRelease, arena);
    }

    /**
     * Exports memory as a {@code DLManagedTensorVersioned} (DLPack {@value #MAJOR_VERSION}.{@value #MINOR_VERSION})
     * with the given {@code flags} (e.g. {@link #FLAG_READ_ONLY}); ownership as in {@link #exportTensor}.
     */
    public static MemorySegment exportVersioned(long address, DType dtype, long[] shape, long[] strides,
            int deviceType, int deviceId, long flags, Runnable onRelease, Arena arena) {
        return export(true, address, dtype, shape, strides, deviceType, deviceId, flags, onRelease, arena);
    }

    private static MemorySegment export(boolean versioned, long address, DType dtype, long[] shape, long[] strides,
            int deviceType, int deviceId, long flags, Runnable onRelease, Arena arena) {
        if (dtype == null || shape == null || arena == null) {
            throw new SageException.InvalidInput("exportTensor needs a dtype, a shape and an arena");
        }
        for (long d : shape) {
            if (d < 0) {
                throw new SageException.InvalidInput("cannot export shape " + Arrays.toString(shape)
                        + ": dimensions must be >= 0");
            }
        }
        if (strides != null && strides.length != shape.length) {
            throw new SageException.InvalidInput("cannot export: " + strides.length + " strides for rank "
                    + shape.length + "; pass one element stride per dimension, or null for row-major");
        }
        long[] st = strides == null ? compactStrides(shape) : strides.clone();
        StructLayout layout = versioned ? DL_MANAGED_TENSOR_VERSIONED : DL_MANAGED_TENSOR;

        Arena owned = Arena.ofShared();
        Export state = new Export(onRelease, owned);
        MemorySegment stub = Linker.nativeLinker().upcallStub(RELEASE.bindTo(state), DELETER_SIGNATURE, arena);
        // if the caller's arena closes before the consumer released the tensor, free our memory then
        MemorySegment.ofAddress(stub.address()).reinterpret(arena, s -> state.abandon());

        MemorySegment m = owned.allocate(layout);
        MemorySegment shapeSeg = owned.allocate(JAVA_LONG, Math.max(shape.length, 1));
        MemorySegment stridesSeg = owned.allocate(JAVA_LONG, Math.max(st.length, 1));
        MemorySegment.copy(shape, 0, shapeSeg, JAVA_LONG, 0, shape.length);
        MemorySegment.copy(st, 0, stridesSeg, JAVA_LONG, 0, st.length);

        long at = versioned ? V_TENSOR : M_TENSOR;
        DataType dt = DataType.of(dtype);
        m.set(ADDRESS, at + T_DATA, MemorySegment.ofAddress(address));
        m.set(JAVA_INT, at + T_DEVICE_TYPE, deviceType);
        m.set(JAVA_INT, at + T_DEVICE_ID, deviceId);
        m.set(JAVA_INT, at + T_NDIM, shape.length);
        m.set(JAVA_BYTE, at + T_CODE, (byte) dt.code());
        m.set(JAVA_BYTE, at + T_BITS, (byte) dt.bits());
        m.set(JAVA_SHORT, at + T_LANES, (short) dt.lanes());
        m.set(ADDRESS, at + T_SHAPE, shapeSeg);
        m.set(ADDRESS, at + T_STRIDES, stridesSeg);
        m.set(JAVA_LONG, at + T_BYTE_OFFSET, 0L);
        if (versioned) {
            m.set(JAVA_INT, V_MAJOR, MAJOR_VERSION);
            m.set(JAVA_INT, V_MINOR, MINOR_VERSION);
            m.set(ADDRESS, V_CTX, MemorySegment.NULL);
            m.set(ADDRESS, V_DELETER, stub);
            m.set(JAVA_LONG, V_FLAGS, flags);
        } else {
            m.set(ADDRESS, M_CTX, MemorySegment.NULL);
            m.set(ADDRESS, M_DELETER, stub);
        }
        return m;
    }

    /** What one export must release: the caller's callback and the memory export allocated. */
    private static final class Export {
        private final AtomicBoolean done = new AtomicBoolean();
        private final Runnable onRelease;
        private final Arena owned;

        Export(Runnable onRelease, Arena owned) {
            this.onRelease = onRelease;
            this.owned = owned;
        }

        /** The deleter's body: runs at most once, never throws (it is called from native code). */
        @SuppressWarnings("unused")
        void release(MemorySegment self) {
            if (!done.compareAndSet(false, true)) {
                return;
            }
            try {
                if (onRelease != null) {
                    onRelease.run();
                }
            } catch (Throwable e) {
                LOG.error("onRelease of an exported DLPack tensor threw; the tensor is released anyway", e);
            } finally {
                closeQuietly();
            }
        }

        /** The caller's arena closed first: free the struct without signalling a release. */
        void abandon() {
            if (done.compareAndSet(false, true)) {
                closeQuietly();
            }
        }

        private void closeQuietly() {
            try {
                owned.close();
            } catch (RuntimeException e) {
                LOG.error("could not free an exported DLPack tensor's struct", e);
            }
        }
    }
}
