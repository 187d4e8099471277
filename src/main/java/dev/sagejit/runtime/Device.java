package dev.sagejit.runtime;

import dev.sagejit.api.SageException;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.atomic.AtomicBoolean;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUmodule;
import jcuda.driver.CUstream;
import jcuda.driver.JCudaDriver;

/**
 * One CUDA device and its primary context (the context the CUDA runtime, PyTorch and others share).
 * Every public operation first makes the context current on the calling thread, so many Java threads
 * may share one {@code Device}. Close buffers, modules and streams before the device: closing the
 * last retain of the primary context destroys what was allocated in it.
 */
public final class Device implements AutoCloseable {
    private final int ordinal;
    private final CUdevice device;
    private final CUcontext context;
    private final String name;
    private final int major;
    private final int minor;
    private final int smCount;
    private final long totalMemory;
    private final int maxSharedPerBlockOptin;
    private final int l2Bytes;
    private final int driverVersion;
    private final AtomicBoolean closed = new AtomicBoolean();

    private Device(int ordinal, CUdevice device, CUcontext context) {
        this.ordinal = ordinal;
        this.device = device;
        this.context = context;
        byte[] nameBytes = new byte[256];
        Cu.check(JCudaDriver.cuDeviceGetName(nameBytes, nameBytes.length, device), "cuDeviceGetName(" + ordinal + ")");
        int end = 0;
        while (end < nameBytes.length && nameBytes[end] != 0) {
            end++;
        }
        this.name = new String(nameBytes, 0, end, StandardCharsets.UTF_8);
        this.major = attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, "COMPUTE_CAPABILITY_MAJOR");
        this.minor = attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, "COMPUTE_CAPABILITY_MINOR");
        this.smCount = attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, "MULTIPROCESSOR_COUNT");
        this.maxSharedPerBlockOptin = attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN,
                "MAX_SHARED_MEMORY_PER_BLOCK_OPTIN");
        this.l2Bytes = attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE, "L2_CACHE_SIZE");
        long[] total = {0};
        Cu.check(JCudaDriver.cuDeviceTotalMem(total, device), "cuDeviceTotalMem(" + ordinal + ")");
        this.totalMemory = total[0];
        int[] version = {0};
        Cu.check(JCudaDriver.cuDriverGetVersion(version), "cuDriverGetVersion");
        this.driverVersion = version[0];
    }

    /**
     * Opens device {@code ordinal}: initialises the driver, retains the device's primary context and
     * makes it current on this thread.
     *
     * @throws SageException.Unsupported when this machine has no usable GPU or driver
     * @throws SageException.InvalidInput when the ordinal names no device
     */
    public static Device open(int ordinal) {
        CudaDriver.requireAvailable("open CUDA device " + ordinal);
        int count = CudaDriver.deviceCount();
        if (ordinal < 0 || ordinal >= count) {
            throw new SageException.InvalidInput("CUDA device " + ordinal + " does not exist; this machine has "
                    + count + " device(s), ordinals 0.." + (count - 1) + " (set SAGEJIT_DEVICE)");
        }
        Cu.check(JCudaDriver.cuInit(0), "cuInit(0)");
        CUdevice dev = new CUdevice();
        Cu.check(JCudaDriver.cuDeviceGet(dev, ordinal), "cuDeviceGet(" + ordinal + ")");
        CUcontext ctx = new CUcontext();
        Cu.check(JCudaDriver.cuDevicePrimaryCtxRetain(ctx, dev), "cuDevicePrimaryCtxRetain(" + ordinal + ")");
        try {
            Cu.check(JCudaDriver.cuCtxSetCurrent(ctx), "cuCtxSetCurrent(device " + ordinal + ")");
            return new Device(ordinal, dev, ctx);
        } catch (RuntimeException e) {
            JCudaDriver.cuDevicePrimaryCtxRelease(dev);
            throw e;
        }
    }

    /** Makes this device's primary context current on the calling thread. */
    public void makeCurrent() {
        ensureOpen();
        Cu.check(JCudaDriver.cuCtxSetCurrent(context), "cuCtxSetCurrent(device " + ordinal + ")");
    }

    public String name() {
        return name;
    }

    public int ordinal() {
        return ordinal;
    }

    /** Compute capability major, e.g. 9 on an H100/H200. */
    public int major() {
        return major;
    }

    public int minor() {
        return minor;
    }

    public int smCount() {
        return smCount;
    }

    public long totalMemory() {
        return totalMemory;
    }

    /** Largest shared memory one block may use after opting in (dynamic plus static), in bytes. */
    public int maxSharedPerBlockOptin() {
        return maxSharedPerBlockOptin;
    }

    public int l2Bytes() {
        return l2Bytes;
    }

    /** CUDA driver API version, e.g. 13000. */
    public int driverVersion() {
        return driverVersion;
    }

    /** Device memory free now (cuMemGetInfo), in bytes. */
    public long freeMemory() {
        makeCurrent();
        long[] free = {0};
        long[] total = {0};
        Cu.check(JCudaDriver.cuMemGetInfo(free, total), "cuMemGetInfo(device " + ordinal + ")");
        return free[0];
    }

    /**
     * Allocates {@code bytes} of device memory (uninitialised). Zero bytes gives an empty buffer
     * with address 0.
     *
     * @throws SageException.OutOfResources when the device has not enough free memory
     */
    public DeviceBuffer allocate(long bytes) {
        return DeviceBuffer.allocate(this, bytes);
    }

    /** A new stream that synchronises with the legacy default stream (flags 0). */
    public Stream createStream() {
        makeCurrent();
        CUstream s = new CUstream();
        Cu.check(JCudaDriver.cuStreamCreate(s, 0), "cuStreamCreate(device " + ordinal + ")");
        return new Stream(this, s, true);
    }

    /** The legacy default (null) stream; closing it does nothing. */
    public Stream defaultStream() {
        return new Stream(this, new CUstream(), false);
    }

    /**
     * Checks that the {@code bytes} from {@code address} lie in one live device allocation
     * (cuPointerGetAttribute: its range), so a freed buffer, host memory or a view running past its
     * allocation is refused before a kernel reads or writes it. Memory a caching allocator keeps
     * (e.g. PyTorch's) stays allocated and passes.
     *
     * @throws SageException.InvalidInput naming {@code what} and the reason
     */
    public void requireAllocated(long address, long bytes, String what) {
        if (bytes <= 0) {
            return;
        }
        makeCurrent();
        var ptr = new NativePointers.DevicePtr(address);
        long[] start = {0};
        long[] size = {0};
        int r = JCudaDriver.cuPointerGetAttribute(jcuda.Pointer.to(start),
                jcuda.driver.CUpointer_attribute.CU_POINTER_ATTRIBUTE_RANGE_START_ADDR, ptr);
        if (r == jcuda.driver.CUresult.CUDA_SUCCESS) {
            r = JCudaDriver.cuPointerGetAttribute(jcuda.Pointer.to(size),
                    jcuda.driver.CUpointer_attribute.CU_POINTER_ATTRIBUTE_RANGE_SIZE, ptr);
        }
        if (r != jcuda.driver.CUresult.CUDA_SUCCESS) {
            throw new SageException.InvalidInput(String.format(java.util.Locale.ROOT,
                    "%s at 0x%x is not live device memory (%s): freed, host memory, or never allocated; pass the"
                            + " address of a buffer allocated on the GPU and still owned", what, address,
                    jcuda.driver.CUresult.stringFor(r)));
        }
        long end = start[0] + size[0];
        if (Long.compareUnsigned(address + bytes, end) > 0) {
            throw new SageException.InvalidInput(String.format(java.util.Locale.ROOT,
                    "%s needs %d bytes from 0x%x but its allocation ends %d bytes after that address; check the"
                            + " shape and strides against the buffer", what, bytes, address, end - address));
        }
    }

    /** Waits for all work on this device's context (cuCtxSynchronize); surfaces asynchronous kernel faults. */
    public void synchronize() {
        makeCurrent();
        Cu.check(JCudaDriver.cuCtxSynchronize(), "cuCtxSynchronize(device " + ordinal + ")");
    }

    /**
     * Loads a CUBIN, fatbin or PTX image (cuModuleLoadData). PTX text is NUL-terminated here if the
     * caller did not do it; PTX is JIT-compiled by the driver for this device.
     */
    public LoadedModule load(byte[] cubinOrPtx) {
        if (cubinOrPtx == null || cubinOrPtx.length == 0) {
            throw new SageException.InvalidInput("cannot load an empty module image");
        }
        makeCurrent();
        boolean binary = isElf(cubinOrPtx) || isFatbin(cubinOrPtx);
        byte[] image = cubinOrPtx;
        if (!binary && image[image.length - 1] != 0) {
            image = java.util.Arrays.copyOf(image, image.length + 1);
        }
        CUmodule module = new CUmodule();
        String kind = binary ? (isElf(image) ? "CUBIN" : "fatbin") : "PTX";
        Cu.check(JCudaDriver.cuModuleLoadData(module, image), "cuModuleLoadData(" + kind + ", " + cubinOrPtx.length
                + " bytes, on " + name + " sm_" + major + minor + ")");
        return new LoadedModule(this, module);
    }

    private static boolean isElf(byte[] b) {
        return b.length >= 4 && b[0] == 0x7f && b[1] == 'E' && b[2] == 'L' && b[3] == 'F';
    }

    private static boolean isFatbin(byte[] b) {
        // fatbin magic 0xBA55ED50, little endian
        return b.length >= 4 && (b[0] & 0xff) == 0x50 && (b[1] & 0xff) == 0xED && (b[2] & 0xff) == 0x55
                && (b[3] & 0xff) == 0xBA;
    }

    /** Releases this handle's retain of the primary context; later calls are harmless. */
    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) {
            Cu.check(JCudaDriver.cuDevicePrimaryCtxRelease(device), "cuDevicePrimaryCtxRelease(" + ordinal + ")");
        }
    }

    boolean isOpen() {
        return !closed.get();
    }

    void ensureOpen() {
        if (closed.get()) {
            throw new IllegalStateException("device " + ordinal + " (" + name + ") is closed");
        }
    }

    private int attribute(int attribute, String label) {
        int[] value = {0};
        Cu.check(JCudaDriver.cuDeviceGetAttribute(value, attribute, device),
                "cuDeviceGetAttribute(" + label + ", device " + ordinal + ")");
        return value[0];
    }

    @Override
    public String toString() {
        return "Device[" + ordinal + ": " + name + ", sm_" + major + minor + ", " + smCount + " SMs, "
                + Cu.bytes(totalMemory) + "]";
    }
}
