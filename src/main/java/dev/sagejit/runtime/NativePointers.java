package dev.sagejit.runtime;

import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;

/**
 * JCuda pointer objects built from and read back as raw addresses. JCuda keeps these constructors and
 * getters protected; subclasses are the supported way in. JCuda's native side resolves every pointer
 * as {@code nativePointer + byteOffset}, which both classes rely on.
 */
final class NativePointers {
    private NativePointers() {
    }

    /** A device pointer whose raw value can be read; cuMemAlloc fills in its native pointer. */
    static final class DevicePtr extends CUdeviceptr {
        /** Empty, to be filled by cuMemAlloc. */
        DevicePtr() {
        }

        /** A pointer to an address allocated by someone else (native pointer 0 plus the address as offset). */
        DevicePtr(long address) {
            super(new CUdeviceptr(), address);
        }

        long address() {
            return getNativePointer() + getByteOffset();
        }
    }

    /** A pointer to host (off-heap) memory at a raw address, e.g. a native MemorySegment. */
    static final class HostPtr extends Pointer {
        HostPtr(long address) {
            super(address);
        }
    }
}
