package dev.sagejit.runtime;

import dev.sagejit.api.SageException;
import dev.sagejit.runtime.NativePointers.DevicePtr;
import dev.sagejit.runtime.NativePointers.HostPtr;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.ref.Reference;
import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicBoolean;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.JCudaDriver;

/**
 * A range of device memory. Copies take host arrays (offsets in elements), host memory segments and
 * byte buffers (offsets in bytes); every range is checked before the driver sees it. Synchronous
 * copies run on the legacy default stream. Async variants accept only off-heap host memory (Java
 * arrays may move during garbage collection) and the caller keeps that memory alive until the stream
 * is synchronised.
 */
public final class DeviceBuffer implements AutoCloseable {
    /** Heap memory that has no stable address is staged through chunks of this size. */
    private static final int STAGING_CHUNK = 64 << 20;

    private final Device device;
    private final DevicePtr ptr;
    private final long bytes;
    private final boolean owned;
    private final AtomicBoolean freed = new AtomicBoolean();

    private DeviceBuffer(Device device, DevicePtr ptr, long bytes, boolean owned) {
        this.device = device;
        this.ptr = ptr;
        this.bytes = bytes;
        this.owned = owned;
    }

    static DeviceBuffer allocate(Device device, long bytes) {
        if (bytes < 0) {
            throw new SageException.InvalidInput("cannot allocate a negative number of bytes (" + bytes + ")");
        }
        device.makeCurrent();
        DevicePtr p = new DevicePtr();
        if (bytes == 0) {
            return new DeviceBuffer(device, new DevicePtr(0L), 0, false);
        }
        int r = JCudaDriver.cuMemAlloc(p, bytes);
        if (r == jcuda.driver.CUresult.CUDA_ERROR_OUT_OF_MEMORY) {
            String free;
            try {
                free = Cu.bytes(device.freeMemory()) + " free of " + Cu.bytes(device.totalMemory());
            } catch (RuntimeException e) {
                free = "free memory unknown";
            }
            throw new SageException.OutOfResources("cuMemAlloc(" + bytes + " bytes) failed with CUDA_ERROR_OUT_OF_MEMORY: "
                    + "requested " + Cu.bytes(bytes) + " (" + bytes + " bytes) on device " + device.ordinal() + " ("
                    + device.name() + "), " + free + "; use smaller inputs or free other buffers");
        }
        Cu.check(r, "cuMemAlloc(" + bytes + " bytes, device " + device.ordinal() + ")");
        return new DeviceBuffer(device, p, bytes, true);
    }

    /**
     * Views {@code bytes} of device memory at {@code address} owned by someone else (PyTorch, another
     * buffer); closing the view does not free the memory.
     */
    public static DeviceBuffer wrap(Device device, long address, long bytes) {
        java.util.Objects.requireNonNull(device, "device");
        if (bytes < 0 || (address == 0 && bytes > 0)) {
            throw new SageException.InvalidInput("cannot wrap " + bytes + " bytes at address 0x"
                    + Long.toHexString(address) + ": need a non-null address and a size >= 0");
        }
        return new DeviceBuffer(device, new DevicePtr(address), bytes, false);
    }

    /** A non-owning view of {@code length} bytes starting {@code byteOffset} into this buffer. */
    public DeviceBuffer view(long byteOffset, long length) {
        checkRange(byteOffset, length, "view");
        return new DeviceBuffer(device, new DevicePtr(address() + byteOffset), length, false);
    }

    /** Raw device address (what a kernel's pointer parameter receives). */
    public long address() {
        ensureLive();
        return ptr.address();
    }

    public long bytes() {
        return bytes;
    }

    public Device device() {
        return device;
    }

    /** The JCuda pointer; JCuda types stay inside this package. */
    CUdeviceptr pointer() {
        ensureLive();
        return ptr;
    }

    // ---- host arrays (offsets in elements of the array, device offsets in bytes) ----

    public void copyFromHost(byte[] src) {
        copyFromHost(src, 0, src.length, 0);
    }

    public void copyFromHost(byte[] src, int srcIndex, int count, long dstByteOffset) {
        checkArray(src.length, srcIndex, count, "byte[]");
        upload(Pointer.to(src).withByteOffset(srcIndex), dstByteOffset, count, "byte[]");
    }

    public void copyFromHost(short[] src) {
        copyFromHost(src, 0, src.length, 0);
    }

    public void copyFromHost(short[] src, int srcIndex, int count, long dstByteOffset) {
        checkArray(src.length, srcIndex, count, "short[]");
        upload(Pointer.to(src).withByteOffset(2L * srcIndex), dstByteOffset, 2L * count, "short[]");
    }

    public void copyFromHost(int[] src) {
        copyFromHost(src, 0, src.length, 0);
    }

    public void copyFromHost(int[] src, int srcIndex, int count, long dstByteOffset) {
        checkArray(src.length, srcIndex, count, "int[]");
        upload(Pointer.to(src).withByteOffset(4L * srcIndex), dstByteOffset, 4L * count, "int[]");
    }

    public void copyFromHost(float[] src) {
        copyFromHost(src, 0, src.length, 0);
    }

    public void copyFromHost(float[] src, int srcIndex, int count, long dstByteOffset) {
        checkArray(src.length, srcIndex, count, "float[]");
        upload(Pointer.to(src).withByteOffset(4L * srcIndex), dstByteOffset, 4L * count, "float[]");
    }

    public void copyToHost(byte[] dst) {
        copyToHost(dst, 0, dst.length, 0);
    }

    public void copyToHost(byte[] dst, int dstIndex, int count, long srcByteOffset) {
        checkArray(dst.length, dstIndex, count, "byte[]");
        download(Pointer.to(dst).withByteOffset(dstIndex), srcByteOffset, count, "byte[]");
    }

    public void copyToHost(short[] dst) {
        copyToHost(dst, 0, dst.length, 0);
    }

    public void copyToHost(short[] dst, int dstIndex, int count, long srcByteOffset) {
        checkArray(dst.length, dstIndex, count, "short[]");
        download(Pointer.to(dst).withByteOffset(2L * dstIndex), srcByteOffset, 2L * count, "short[]");
    }

    public void copyToHost(int[] dst) {
        copyToHost(dst, 0, dst.length, 0);
    }

    public void copyToHost(int[] dst, int dstIndex, int count, long srcByteOffset) {
        checkArray(dst.length, dstIndex, count, "int[]");
        download(Pointer.to(dst).withByteOffset(4L * dstIndex), srcByteOffset, 4L * count, "int[]");
    }

    public void copyToHost(float[] dst) {
        copyToHost(dst, 0, dst.length, 0);
    }

    public void copyToHost(float[] dst, int dstIndex, int count, long srcByteOffset) {
        checkArray(dst.length, dstIndex, count, "float[]");
        download(Pointer.to(dst).withByteOffset(4L * dstIndex), srcByteOffset, 4L * count, "float[]");
    }

    // ---- memory segments and byte buffers (all of the segment / the buffer's remaining bytes) ----

    /** Copies all of {@code src} to the start of this buffer. */
    public void copyFromHost(MemorySegment src) {
        copyFromHost(src, 0);
    }

    public void copyFromHost(MemorySegment src, long dstByteOffset) {
        long n = src.byteSize();
        checkRange(dstByteOffset, n, "copy from a " + n + "-byte host segment");
        if (src.isNative()) {
            upload(new HostPtr(src.address()), dstByteOffset, n, "MemorySegment");
            Reference.reachabilityFence(src);
            return;
        }
        byte[] chunk = new byte[(int) Math.min(n, STAGING_CHUNK)];
        for (long done = 0; done < n; done += chunk.length) {
            int len = (int) Math.min(chunk.length, n - done);
            MemorySegment.copy(src, ValueLayout.JAVA_BYTE, done, chunk, 0, len);
            upload(Pointer.to(chunk), dstByteOffset + done, len, "heap MemorySegment");
        }
    }

    /** Fills all of {@code dst} from the start of this buffer. */
    public void copyToHost(MemorySegment dst) {
        copyToHost(dst, 0);
    }

    public void copyToHost(MemorySegment dst, long srcByteOffset) {
        long n = dst.byteSize();
        checkRange(srcByteOffset, n, "copy to a " + n + "-byte host segment");
        if (dst.isReadOnly()) {
            throw new SageException.InvalidInput("cannot copy device memory into a read-only host segment");
        }
        if (dst.isNative()) {
            download(new HostPtr(dst.address()), srcByteOffset, n, "MemorySegment");
            Reference.reachabilityFence(dst);
            return;
        }
        byte[] chunk = new byte[(int) Math.min(n, STAGING_CHUNK)];
        for (long done = 0; done < n; done += chunk.length) {
            int len = (int) Math.min(chunk.length, n - done);
            download(Pointer.to(chunk), srcByteOffset + done, len, "heap MemorySegment");
            MemorySegment.copy(chunk, 0, dst, ValueLayout.JAVA_BYTE, done, len);
        }
    }

    /** Copies {@code src.remaining()} bytes to the start of this buffer; the buffer's position is unchanged. */
    public void copyFromHost(ByteBuffer src) {
        copyFromHost(src, 0);
    }

    public void copyFromHost(ByteBuffer src, long dstByteOffset) {
        if (src.hasArray()) {
            int n = src.remaining();
            checkRange(dstByteOffset, n, "copy from a " + n + "-byte heap ByteBuffer");
            upload(Pointer.to(src.array()).withByteOffset((long) src.arrayOffset() + src.position()),
                    dstByteOffset, n, "ByteBuffer");
        } else {
            copyFromHost(MemorySegment.ofBuffer(src), dstByteOffset);
        }
    }

    /** Fills {@code dst.remaining()} bytes from the start of this buffer; the buffer's position is unchanged. */
    public void copyToHost(ByteBuffer dst) {
        copyToHost(dst, 0);
    }

    public void copyToHost(ByteBuffer dst, long srcByteOffset) {
        if (dst.isReadOnly()) {
            throw new SageException.InvalidInput("cannot copy device memory into a read-only ByteBuffer");
        }
        if (dst.hasArray()) {
            int n = dst.remaining();
            checkRange(srcByteOffset, n, "copy to a " + n + "-byte heap ByteBuffer");
            download(Pointer.to(dst.array()).withByteOffset((long) dst.arrayOffset() + dst.position()),
                    srcByteOffset, n, "ByteBuffer");
        } else {
            copyToHost(MemorySegment.ofBuffer(dst), srcByteOffset);
        }
    }

    // ---- asynchronous copies (off-heap host memory only) ----

    /** Enqueues a copy of all of {@code src} (off-heap) on {@code stream}; keep src alive until the stream syncs. */
    public void copyFromHostAsync(MemorySegment src, long dstByteOffset, Stream stream) {
        requireNative(src, "copyFromHostAsync");
        long n = src.byteSize();
        checkRange(dstByteOffset, n, "async copy from a " + n + "-byte host segment");
        if (n == 0) {
            return;
        }
        device.makeCurrent();
        Cu.check(JCudaDriver.cuMemcpyHtoDAsync(ptr.withByteOffset(dstByteOffset), new HostPtr(src.address()), n,
                stream.handle()), "cuMemcpyHtoDAsync(" + n + " bytes at device offset " + dstByteOffset + ")");
    }

    /** Enqueues a copy into all of {@code dst} (off-heap) on {@code stream}; read dst only after the stream syncs. */
    public void copyToHostAsync(MemorySegment dst, long srcByteOffset, Stream stream) {
        requireNative(dst, "copyToHostAsync");
        long n = dst.byteSize();
        checkRange(srcByteOffset, n, "async copy to a " + n + "-byte host segment");
        if (n == 0) {
            return;
        }
        device.makeCurrent();
        Cu.check(JCudaDriver.cuMemcpyDtoHAsync(new HostPtr(dst.address()), ptr.withByteOffset(srcByteOffset), n,
                stream.handle()), "cuMemcpyDtoHAsync(" + n + " bytes at device offset " + srcByteOffset + ")");
    }

    // ---- device to device, fill ----

    /** Copies all of {@code src} to the start of this buffer (device to device, default stream). */
    public void copyFrom(DeviceBuffer src) {
        copyFromAsync(src, null);
    }

    /** Enqueues a device-to-device copy of all of {@code src} on {@code stream} (null: default stream). */
    public void copyFromAsync(DeviceBuffer src, Stream stream) {
        checkRange(0, src.bytes(), "copy from a " + src.bytes() + "-byte device buffer");
        if (src.bytes() == 0) {
            return;
        }
        device.makeCurrent();
        String call = "cuMemcpyDtoD" + (stream == null ? "" : "Async") + "(" + src.bytes() + " bytes)";
        if (stream == null) {
            Cu.check(JCudaDriver.cuMemcpyDtoD(pointer(), src.pointer(), src.bytes()), call);
        } else {
            Cu.check(JCudaDriver.cuMemcpyDtoDAsync(pointer(), src.pointer(), src.bytes(), stream.handle()), call);
        }
    }

    /** Sets every byte to {@code value} (cuMemsetD8). */
    public void fill(byte value) {
        ensureLive();
        if (bytes == 0) {
            return;
        }
        device.makeCurrent();
        Cu.check(JCudaDriver.cuMemsetD8(ptr, value, bytes), "cuMemsetD8(" + bytes + " bytes, value " + value + ")");
    }

    public void zero() {
        fill((byte) 0);
    }

    /** Enqueues setting every byte to {@code value} on {@code stream}. */
    public void fillAsync(byte value, Stream stream) {
        ensureLive();
        if (bytes == 0) {
            return;
        }
        device.makeCurrent();
        Cu.check(JCudaDriver.cuMemsetD8Async(ptr, value, bytes, stream.handle()),
                "cuMemsetD8Async(" + bytes + " bytes, value " + value + ")");
    }

    public void zeroAsync(Stream stream) {
        fillAsync((byte) 0, stream);
    }

    /** Frees owned memory once; views and wrapped memory are only forgotten. Later calls do nothing. */
    @Override
    public void close() {
        if (!freed.compareAndSet(false, true) || !owned || bytes == 0 || !device.isOpen()) {
            return;
        }
        device.makeCurrent();
        Cu.check(JCudaDriver.cuMemFree(ptr), "cuMemFree(" + bytes + " bytes at 0x" + Long.toHexString(ptr.address()) + ")");
    }

    @Override
    public String toString() {
        return "DeviceBuffer[" + bytes + " bytes at 0x" + Long.toHexString(ptr.address())
                + (owned ? "" : ", not owned") + (freed.get() ? ", freed" : "") + "]";
    }

    // ---- checks and the two copy primitives ----

    private void upload(Pointer host, long dstByteOffset, long count, String what) {
        checkRange(dstByteOffset, count, "copy of " + count + " bytes from " + what);
        if (count == 0) {
            return;
        }
        device.makeCurrent();
        Cu.check(JCudaDriver.cuMemcpyHtoD(ptr.withByteOffset(dstByteOffset), host, count),
                "cuMemcpyHtoD(" + count + " bytes from " + what + " to device offset " + dstByteOffset + ")");
    }

    private void download(Pointer host, long srcByteOffset, long count, String what) {
        checkRange(srcByteOffset, count, "copy of " + count + " bytes to " + what);
        if (count == 0) {
            return;
        }
        device.makeCurrent();
        Cu.check(JCudaDriver.cuMemcpyDtoH(host, ptr.withByteOffset(srcByteOffset), count),
                "cuMemcpyDtoH(" + count + " bytes from device offset " + srcByteOffset + " to " + what + ")");
    }

    private void checkRange(long offset, long count, String what) {
        ensureLive();
        if (offset < 0 || count < 0 || offset > bytes || count > bytes - offset) {
            throw new SageException.InvalidInput(what + " at device byte offset " + offset + " (" + count
                    + " bytes) does not fit the " + bytes + "-byte device buffer");
        }
    }

    private static void checkArray(int length, int index, int count, String type) {
        if (index < 0 || count < 0 || index > length || count > length - index) {
            throw new SageException.InvalidInput(type + " range [" + index + ", " + index + " + " + count
                    + ") does not fit the array of length " + length);
        }
    }

    private static void requireNative(MemorySegment s, String call) {
        if (!s.isNative()) {
            throw new SageException.InvalidInput(call + " needs off-heap host memory (Arena.allocate), got a heap "
                    + "segment of " + s.byteSize() + " bytes; use the synchronous copy for heap memory");
        }
    }

    private void ensureLive() {
        if (freed.get()) {
            throw new IllegalStateException("buffer freed");
        }
    }
}
