package dev.sagejit.runtime;

import java.util.concurrent.atomic.AtomicBoolean;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;
import jcuda.driver.JCudaDriver;

/** A module loaded into a device's context; its kernels are valid until it is closed. */
public final class LoadedModule implements AutoCloseable {
    private final Device device;
    private final CUmodule module;
    private final AtomicBoolean closed = new AtomicBoolean();

    LoadedModule(Device device, CUmodule module) {
        this.device = device;
        this.module = module;
    }

    /** Looks up the kernel named {@code entry} (its extern "C" or mangled name). */
    public LoadedKernel function(String entry) {
        ensureOpen();
        device.makeCurrent();
        CUfunction f = new CUfunction();
        Cu.check(JCudaDriver.cuModuleGetFunction(f, module, entry), "cuModuleGetFunction(" + entry
                + ") (is the kernel extern \"C\" and is the name spelled as in the source?)");
        return new LoadedKernel(device, this, f, entry);
    }

    /**
     * The module's {@code __device__} variable {@code name} (an extern "C" or unmangled global), as a
     * non-owning buffer valid while the module is loaded.
     */
    public DeviceBuffer global(String name) {
        ensureOpen();
        device.makeCurrent();
        var ptr = new NativePointers.DevicePtr();
        long[] bytes = new long[1];
        Cu.check(JCudaDriver.cuModuleGetGlobal(ptr, bytes, module, name), "cuModuleGetGlobal(" + name
                + ") (is the variable __device__ and spelled as in the source?)");
        return DeviceBuffer.wrap(device, ptr.address(), bytes[0]);
    }

    public Device device() {
        return device;
    }

    /** Unloads the module once; kernels from it must not be launched afterwards. */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true) || !device.isOpen()) {
            return;
        }
        device.makeCurrent();
        Cu.check(JCudaDriver.cuModuleUnload(module), "cuModuleUnload");
    }

    void ensureOpen() {
        if (closed.get()) {
            throw new IllegalStateException("module unloaded");
        }
    }
}
