package dev.sagejit.interop;

import static java.lang.foreign.MemoryLayout.PathElement.groupElement;
import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sagejit.api.DType;
import dev.sagejit.api.DeviceTensor;
import dev.sagejit.api.Layout;
import dev.sagejit.api.SageException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemoryLayout.PathElement;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

@SuppressWarnings("restricted")
class DlPackTest {
    private static final MethodHandle CALL_VOID_PTR = Linker.nativeLinker().downcallHandle(
            FunctionDescriptor.ofVoid(ADDRESS));

    private static long offset(MemoryLayout layout, String... path) {
        PathElement[] p = new PathElement[path.length];
        for (int i = 0; i < path.length; i++) {
            p[i] = groupElement(path[i]);
        }
        return layout.byteOffset(p);
    }

    @Test
    void layoutsMatchTheCAbiOnX8664() {
        assertEquals(8, ADDRESS.byteSize(), "these offsets hold for 64-bit targets");
        assertEquals(8, DlPack.DL_DEVICE.byteSize());
        assertEquals(0, offset(DlPack.DL_DEVICE, "device_type"));
        assertEquals(4, offset(DlPack.DL_DEVICE, "device_id"));
        assertEquals(4, DlPack.DL_DATA_TYPE.byteSize());
        assertEquals(0, offset(DlPack.DL_DATA_TYPE, "code"));
        assertEquals(1, offset(DlPack.DL_DATA_TYPE, "bits"));
        assertEquals(2, offset(DlPack.DL_DATA_TYPE, "lanes"));

        assertEquals(48, DlPack.DL_TENSOR.byteSize());
        assertEquals(8, DlPack.DL_TENSOR.byteAlignment());
        assertEquals(0, offset(DlPack.DL_TENSOR, "data"));
        assertEquals(8, offset(DlPack.DL_TENSOR, "device"));
        assertEquals(16, offset(DlPack.DL_TENSOR, "ndim"));
        assertEquals(20, offset(DlPack.DL_TENSOR, "dtype"));
        assertEquals(24, offset(DlPack.DL_TENSOR, "shape"));
        assertEquals(32, offset(DlPack.DL_TENSOR, "strides"));
        assertEquals(40, offset(DlPack.DL_TENSOR, "byte_offset"));

        assertEquals(64, DlPack.DL_MANAGED_TENSOR.byteSize());
        assertEquals(0, offset(DlPack.DL_MANAGED_TENSOR, "dl_tensor"));
        assertEquals(48, offset(DlPack.DL_MANAGED_TENSOR, "manager_ctx"));
        assertEquals(56, offset(DlPack.DL_MANAGED_TENSOR, "deleter"));

        assertEquals(8, DlPack.DL_PACK_VERSION.byteSize());
        assertEquals(4, offset(DlPack.DL_PACK_VERSION, "minor"));
        assertEquals(80, DlPack.DL_MANAGED_TENSOR_VERSIONED.byteSize());
        assertEquals(0, offset(DlPack.DL_MANAGED_TENSOR_VERSIONED, "version"));
        assertEquals(8, offset(DlPack.DL_MANAGED_TENSOR_VERSIONED, "manager_ctx"));
        assertEquals(16, offset(DlPack.DL_MANAGED_TENSOR_VERSIONED, "deleter"));
        assertEquals(24, offset(DlPack.DL_MANAGED_TENSOR_VERSIONED, "flags"));
        assertEquals(32, offset(DlPack.DL_MANAGED_TENSOR_VERSIONED, "dl_tensor"));
    }

    @Test
    void exportThenImportSharesTheData() {
        AtomicInteger released = new AtomicInteger();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment data = arena.allocate(2 * 5 * 3 * 8 * 2L, 256);
            long[] shape = {2, 5, 3, 8};
            long[] strides = {200, 40, 8, 1}; // a [B, N, H, D] slice with padded rows
            MemorySegment m = DlPack.exportTensor(data.address(), DType.BF16, shape, strides, DlPack.KDL_CPU, 0,
                    released::incrementAndGet, arena);
            assertEquals(64, m.byteSize());
            DlTensorView v = DlPack.importTensor(m);
            assertArrayEquals(shape, v.shape());
            assertArrayEquals(strides, v.strides());
            assertFalse(v.stridesWereNull());
            assertEquals(new DlPack.DataType(DlPack.KDL_BFLOAT, 16, 1), v.dtype());
            assertEquals(DType.BF16, v.sageDType().orElseThrow());
            assertEquals(new DlPack.Device(DlPack.KDL_CPU, 0), v.device());
            assertEquals(0, v.byteOffset());
            assertEquals(data.address(), v.address(), "zero copy: the same data pointer");
            assertFalse(v.versioned());
            assertEquals(0, released.get());
            v.close();
            assertEquals(1, released.get());
            v.close();
            assertEquals(1, released.get(), "close twice, deleter once");
            assertTrue(v.isClosed());
        }
    }

    @Test
    void compactStridesAreWrittenWhenNoneAreGiven() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment m = DlPack.exportTensor(0x1000, DType.FP16, new long[] {2, 3, 4}, null, DlPack.KDL_CUDA, 3,
                    null, arena);
            assertTrue(m.get(ADDRESS, 32).address() != 0, "strides pointer is set");
            try (DlTensorView v = DlPack.importTensor(m)) {
                assertArrayEquals(new long[] {12, 4, 1}, v.strides());
                assertEquals(new DlPack.DataType(DlPack.KDL_FLOAT, 16, 1), v.dtype());
                assertEquals(new DlPack.Device(DlPack.KDL_CUDA, 3), v.device());
                assertTrue(v.isRowMajorContiguous());
            }
        }
    }

    @Test
    void versionedRoundTrip() {
        AtomicInteger released = new AtomicInteger();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment m = DlPack.exportVersioned(0x2000, DType.FP32, new long[] {4}, null, DlPack.KDL_CUDA, 1,
                    DlPack.FLAG_READ_ONLY, released::incrementAndGet, arena);
            assertEquals(80, m.byteSize());
            try (DlTensorView v = DlPack.importVersioned(m)) {
                assertTrue(v.versioned());
                assertEquals(new DlPack.Version(1, 1), v.version().orElseThrow());
                assertTrue(v.readOnly());
                assertEquals(0x2000, v.address());
                assertEquals(new DlPack.DataType(DlPack.KDL_FLOAT, 32, 1), v.dtype());
                assertArrayEquals(new long[] {1}, v.strides());
            }
            assertEquals(1, released.get());
        }
    }

    @Test
    void exportedDeleterRunsOnceWhenTheConsumerCallsItTwice() throws Throwable {
        AtomicInteger released = new AtomicInteger();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment m = DlPack.exportTensor(0x3000, DType.FP32, new long[] {1}, null, DlPack.KDL_CPU, 0,
                    released::incrementAndGet, arena);
            MemorySegment deleter = m.get(ADDRESS, 56);
            MemorySegment self = MemorySegment.ofAddress(m.address());
            CALL_VOID_PTR.invokeExact(deleter, self);
            assertEquals(1, released.get());
            assertThrows(IllegalStateException.class, () -> m.get(JAVA_INT, 16), "the struct was freed");
            CALL_VOID_PTR.invokeExact(deleter, self);
            assertEquals(1, released.get());
        }
    }

    @Test
    void onReleaseExceptionsDoNotCrossIntoNativeCode() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment m = DlPack.exportTensor(0x3000, DType.FP32, new long[] {1}, null, DlPack.KDL_CPU, 0,
                    () -> {
                        throw new IllegalStateException("boom");
                    }, arena);
            DlPack.importTensor(m).close(); // logged, not propagated (it would kill the JVM)
        }
    }

    /** Records the {@code self} pointers a hand-built struct's deleter receives. */
    static final class Recorder {
        final List<Long> calls = new ArrayList<>();

        void delete(MemorySegment self) {
            calls.add(self.address());
        }

        MemorySegment stub(Arena arena) throws ReflectiveOperationException {
            MethodHandle h = MethodHandles.lookup().findVirtual(Recorder.class, "delete",
                    MethodType.methodType(void.class, MemorySegment.class)).bindTo(this);
            return Linker.nativeLinker().upcallStub(h, FunctionDescriptor.ofVoid(ADDRESS), arena);
        }
    }

    /** A DLManagedTensor written field by field at the C offsets, as a C producer would. */
    private static MemorySegment handBuilt(Arena arena, long data, int deviceType, int deviceId, int code, int bits,
            int lanes, long[] shape, long[] strides, long byteOffset, MemorySegment deleter) {
        MemorySegment m = arena.allocate(64, 8);
        MemorySegment shapeSeg = arena.allocateFrom(JAVA_LONG, shape);
        m.set(JAVA_LONG, 0, data);
        m.set(JAVA_INT, 8, deviceType);
        m.set(JAVA_INT, 12, deviceId);
        m.set(JAVA_INT, 16, shape.length);
        m.set(JAVA_BYTE, 20, (byte) code);
        m.set(JAVA_BYTE, 21, (byte) bits);
        m.set(JAVA_SHORT, 22, (short) lanes);
        m.set(ADDRESS, 24, shapeSeg);
        m.set(ADDRESS, 32, strides == null ? MemorySegment.NULL : arena.allocateFrom(JAVA_LONG, strides));
        m.set(JAVA_LONG, 40, byteOffset);
        m.set(ADDRESS, 48, MemorySegment.NULL);
        m.set(ADDRESS, 56, deleter);
        return MemorySegment.ofAddress(m.address()); // as native code would hand it over: size 0
    }

    @Test
    void importsAHandBuiltTensorWithNullStrides() throws Exception {
        Recorder rec = new Recorder();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment m = handBuilt(arena, 0x7f00_0000_0000L, DlPack.KDL_CUDA, 1, DlPack.KDL_BFLOAT, 16, 1,
                    new long[] {2, 3, 5, 8}, null, 256, rec.stub(arena));
            DlTensorView v = DlPack.importTensor(m);
            assertTrue(v.stridesWereNull());
            assertArrayEquals(new long[] {120, 40, 8, 1}, v.strides());
            assertEquals(0x7f00_0000_0000L, v.dataPointer());
            assertEquals(256, v.byteOffset());
            assertEquals(0x7f00_0000_0100L, v.address());

            DeviceTensor bhsd = v.toDeviceTensor(Layout.BHSD);
            assertEquals(DeviceTensor.contiguous(0x7f00_0000_0100L, DType.BF16, Layout.BHSD, 2, 3, 5, 8), bhsd);
            DeviceTensor bshd = v.toDeviceTensor(Layout.BSHD); // the same memory read as [B, N=3, H=5, D]
            assertEquals(DeviceTensor.contiguous(0x7f00_0000_0100L, DType.BF16, Layout.BSHD, 2, 5, 3, 8), bshd);

            v.close();
            v.close();
            assertEquals(List.of(m.address()), rec.calls, "deleter called once, on the struct itself");
        }
    }

    @Test
    void nullDeleterIsAllowed() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment m = handBuilt(arena, 0x1000, DlPack.KDL_CPU, 0, DlPack.KDL_FLOAT, 32, 1, new long[] {3},
                    null, 0, MemorySegment.NULL);
            DlTensorView v = DlPack.importTensor(m);
            v.close();
            assertTrue(v.isClosed());
        }
    }

    private static String rejection(long[] shape, long[] strides, int deviceType, int code, int bits, int lanes) {
        try (Arena arena = Arena.ofConfined(); DlTensorView v = DlPack.importTensor(handBuilt(arena, 0x1000, deviceType,
                0, code, bits, lanes, shape, strides, 0, MemorySegment.NULL))) {
            return assertThrows(SageException.InvalidInput.class, () -> v.toDeviceTensor(Layout.BHSD)).getMessage();
        }
    }

    @Test
    void toDeviceTensorRejectsWhatSagejitCannotRead() {
        long[] shape = {1, 2, 3, 4};
        String cpu = rejection(shape, null, DlPack.KDL_CPU, DlPack.KDL_FLOAT, 16, 1);
        assertTrue(cpu.contains("kDLCPU") && cpu.contains("kDLCUDA"), cpu);
        String rank = rejection(new long[] {2, 3, 4}, null, DlPack.KDL_CUDA, DlPack.KDL_FLOAT, 16, 1);
        assertTrue(rank.contains("rank 3") && rank.contains("rank 4"), rank);
        String inner = rejection(shape, new long[] {48, 24, 8, 2}, DlPack.KDL_CUDA, DlPack.KDL_FLOAT, 16, 1);
        assertTrue(inner.contains("innermost") && inner.contains("stride is 2"), inner);
        String lanes = rejection(shape, null, DlPack.KDL_CUDA, DlPack.KDL_FLOAT, 16, 4);
        assertTrue(lanes.contains("4 lanes"), lanes);
        String dtype = rejection(shape, null, DlPack.KDL_CUDA, DlPack.KDL_INT, 32, 1);
        assertTrue(dtype.contains("int32") && dtype.contains("bfloat16"), dtype);
        String negative = rejection(shape, new long[] {-24, 12, 4, 1}, DlPack.KDL_CUDA, DlPack.KDL_BFLOAT, 16, 1);
        assertTrue(negative.contains("negative strides"), negative);
    }

    @Test
    void rejectedImportsReleaseTheTensor() throws Exception {
        var nul = assertThrows(SageException.InvalidInput.class, () -> DlPack.importTensor(MemorySegment.NULL));
        assertTrue(nul.getMessage().contains("NULL"), nul.getMessage());

        Recorder rec = new Recorder();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment m = handBuilt(arena, 0x1000, DlPack.KDL_CUDA, 0, DlPack.KDL_FLOAT, 32, 1, new long[] {1},
                    null, 0, rec.stub(arena));
            MemorySegment.ofAddress(m.address()).reinterpret(64).set(JAVA_INT, 16, -1);
            var e = assertThrows(SageException.InvalidInput.class, () -> DlPack.importTensor(m));
            assertTrue(e.getMessage().contains("ndim is -1"), e.getMessage());
            assertEquals(List.of(m.address()), rec.calls);

            MemorySegment noShape = handBuilt(arena, 0x1000, DlPack.KDL_CUDA, 0, DlPack.KDL_FLOAT, 32, 1,
                    new long[] {1}, null, 0, rec.stub(arena));
            MemorySegment.ofAddress(noShape.address()).reinterpret(64).set(ADDRESS, 24, MemorySegment.NULL);
            var s = assertThrows(SageException.InvalidInput.class, () -> DlPack.importTensor(noShape));
            assertTrue(s.getMessage().contains("shape is NULL"), s.getMessage());
            assertEquals(2, rec.calls.size());

            MemorySegment v = arena.allocate(DlPack.DL_MANAGED_TENSOR_VERSIONED);
            v.set(JAVA_INT, 0, 2);
            v.set(ADDRESS, 16, rec.stub(arena));
            var u = assertThrows(SageException.Unsupported.class, () -> DlPack.importVersioned(v));
            assertTrue(u.getMessage().contains("version 2.0") && u.getMessage().contains("released"), u.getMessage());
            assertEquals(List.of(m.address(), noShape.address(), v.address()), rec.calls);
        }
    }

    @Test
    void exportRejectsMismatchedStrides() {
        try (Arena arena = Arena.ofConfined()) {
            var e = assertThrows(SageException.InvalidInput.class, () -> DlPack.exportTensor(0, DType.FP32,
                    new long[] {2, 2}, new long[] {1}, DlPack.KDL_CPU, 0, null, arena));
            assertTrue(e.getMessage().contains("1 strides for rank 2"), e.getMessage());
        }
    }

    @Test
    void closingTheArenaFirstFreesAnUnreleasedExport() {
        AtomicInteger released = new AtomicInteger();
        MemorySegment m;
        try (Arena arena = Arena.ofConfined()) {
            m = DlPack.exportTensor(0x1000, DType.FP32, new long[] {1}, null, DlPack.KDL_CPU, 0,
                    released::incrementAndGet, arena);
        }
        assertThrows(IllegalStateException.class, () -> m.get(JAVA_INT, 16));
        assertEquals(0, released.get(), "no consumer released it, so onRelease does not run");
    }
}
