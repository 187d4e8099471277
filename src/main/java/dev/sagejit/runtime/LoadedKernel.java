package dev.sagejit.runtime;

import dev.sagejit.api.SageException;
import jcuda.driver.CUfunction;
import jcuda.driver.CUfunction_attribute;
import jcuda.driver.JCudaDriver;

/**
 * One kernel of a {@link LoadedModule}. Launches check the block size and shared memory against the
 * kernel's and device's limits first, so a misfit reads as OutOfResources with numbers rather than a
 * bare driver code.
 */
public final class LoadedKernel {
    /** Dynamic shared memory every kernel may use without opting in. */
    static final int DEFAULT_DYNAMIC_SMEM_LIMIT = 48 * 1024;

    private final Device device;
    private final LoadedModule module;
    private final CUfunction function;
    private final String name;
    private final int maxThreadsPerBlock;
    private final int numRegs;
    private final int staticSharedBytes;
    /** Largest dynamic shared memory opted in to so far; guarded by this. */
    private int dynamicSmemLimit = DEFAULT_DYNAMIC_SMEM_LIMIT;

    LoadedKernel(Device device, LoadedModule module, CUfunction function, String name) {
        this.device = device;
        this.module = module;
        this.function = function;
        this.name = name;
        this.maxThreadsPerBlock = attribute(CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, "MAX_THREADS_PER_BLOCK");
        this.numRegs = attribute(CUfunction_attribute.CU_FUNC_ATTRIBUTE_NUM_REGS, "NUM_REGS");
        this.staticSharedBytes = attribute(CUfunction_attribute.CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, "SHARED_SIZE_BYTES");
    }

    public String name() {
        return name;
    }

    /** The module this kernel belongs to (its globals, e.g. a diagnostic timeline). */
    public LoadedModule module() {
        return module;
    }

    /** Most threads a block of this kernel may have (limited by its register use). */
    public int maxThreadsPerBlock() {
        return maxThreadsPerBlock;
    }

    /** Registers per thread. */
    public int numRegs() {
        return numRegs;
    }

    /** Static shared memory the kernel declares, bytes. */
    public int staticSharedBytes() {
        return staticSharedBytes;
    }

    /**
     * Lets launches use up to {@code bytes} of dynamic shared memory (needed above 48 KiB).
     *
     * @throws SageException.OutOfResources when bytes plus the kernel's static shared memory exceed
     *                                      the device's opt-in limit
     */
    public synchronized void setMaxDynamicSharedMemory(int bytes) {
        if (bytes < 0) {
            throw new SageException.InvalidInput("dynamic shared memory must be >= 0, got " + bytes);
        }
        int limit = device.maxSharedPerBlockOptin();
        if ((long) bytes + staticSharedBytes > limit) {
            throw new SageException.OutOfResources("kernel " + name + " needs " + bytes + " bytes of dynamic shared memory"
                    + (staticSharedBytes > 0 ? " plus " + staticSharedBytes + " static" : "") + " (required "
                    + ((long) bytes + staticSharedBytes) + " bytes) but " + device.name() + " allows at most " + limit
                    + " bytes per block (limit); choose a tile config with fewer stages or smaller tiles");
        }
        module.ensureOpen();
        device.makeCurrent();
        Cu.check(JCudaDriver.cuFuncSetAttribute(function, CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                bytes), "cuFuncSetAttribute(" + name + ", MAX_DYNAMIC_SHARED_SIZE_BYTES, " + bytes + ")");
        dynamicSmemLimit = Math.max(dynamicSmemLimit, bytes);
    }

    /**
     * Enqueues the kernel on {@code stream} (null: default stream). Opts in to the geometry's dynamic
     * shared memory first when it is above what was set. Faults inside the kernel surface at the next
     * synchronisation.
     */
    public void launch(LaunchGeometry g, Stream stream, KernelArgs args) {
        java.util.Objects.requireNonNull(g, "geometry");
        java.util.Objects.requireNonNull(args, "args");
        module.ensureOpen();
        if (g.threadsPerBlock() > maxThreadsPerBlock) {
            throw new SageException.OutOfResources("kernel " + name + " launched with " + g.threadsPerBlock()
                    + " threads per block (required) but it allows at most " + maxThreadsPerBlock + " (limit; it uses "
                    + numRegs + " registers per thread); use fewer warps");
        }
        synchronized (this) {
            if (g.dynamicSmemBytes() > dynamicSmemLimit) {
                setMaxDynamicSharedMemory(g.dynamicSmemBytes());
            }
        }
        device.makeCurrent();
        Cu.check(JCudaDriver.cuLaunchKernel(function, g.gridX(), g.gridY(), g.gridZ(), g.blockX(), g.blockY(), g.blockZ(),
                g.dynamicSmemBytes(), stream == null ? null : stream.handle(), args.kernelParams(), null),
                "cuLaunchKernel(" + name + ", " + g + ", " + args.count() + " args)");
    }

    private int attribute(int attribute, String label) {
        device.makeCurrent();
        int[] value = {0};
        Cu.check(JCudaDriver.cuFuncGetAttribute(value, attribute, function), "cuFuncGetAttribute(" + name + ", " + label + ")");
        return value[0];
    }

    @Override
    public String toString() {
        return "LoadedKernel[" + name + ", " + numRegs + " regs, max " + maxThreadsPerBlock + " threads, "
                + staticSharedBytes + " B static smem]";
    }
}
