package dev.sagejit.runtime;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import dev.sagejit.api.SageException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.util.Arrays;
import java.util.Optional;

/**
 * A TMA tensor map ({@code CUtensorMap}, 128 bytes) encoded by the driver's
 * {@code cuTensorMapEncodeTiled}, which JCuda does not bind: it is called through
 * {@code java.lang.foreign} from libcuda.so.1. The bytes are passed to a kernel by value as a
 * {@code const __grid_constant__} parameter ({@link KernelArgs.Builder#blob}).
 *
 * @param bytes the encoded map
 */
public record TensorMap(byte[] bytes) {
    /** Size of a CUtensorMap. */
    public static final int BYTES = 128;

    /** CUtensorMapDataType values sagejit uses (8-bit integer and FP8 data travel as UINT8). */
    public enum DataType {
        UINT8(0), UINT16(1), FLOAT16(6), FLOAT32(7), BFLOAT16(9);

        final int code;

        DataType(int code) {
            this.code = code;
        }

        /** Bytes per element. */
        public int bytes() {
            return switch (this) {
                case UINT8 -> 1;
                case UINT16, FLOAT16, BFLOAT16 -> 2;
                case FLOAT32 -> 4;
            };
        }
    }

    /** CUtensorMapSwizzle values; the 128-byte pattern is the one wgmma's 128B descriptors read. */
    public enum Swizzle {
        NONE(0, 0), B32(1, 32), B64(2, 64), B128(3, 128);

        final int code;
        final int spanBytes;

        Swizzle(int code, int spanBytes) {
            this.code = code;
            this.spanBytes = spanBytes;
        }

        /** The swizzle whose span is a tile row of {@code rowBytes} (32, 64 or 128), as wgmma reads it. */
        public static Swizzle forRowBytes(int rowBytes) {
            for (Swizzle s : values()) {
                if (s != NONE && s.spanBytes == rowBytes) {
                    return s;
                }
            }
            throw new IllegalArgumentException("no swizzle spans rows of " + rowBytes + " bytes (32, 64 or 128)");
        }
    }

    private static final int L2_PROMOTION_128B = 2;

    public TensorMap {
        if (bytes.length != BYTES) {
            throw new IllegalArgumentException("a CUtensorMap is " + BYTES + " bytes, got " + bytes.length);
        }
        bytes = bytes.clone();
    }

    @Override
    public byte[] bytes() {
        return bytes.clone();
    }

    /**
     * Why a tiled map with these arguments cannot be encoded, or empty: the driver's documented
     * limits (16-byte aligned base, byte strides multiples of 16 below 2^40, boxes of 1 to 256, the
     * innermost box row a multiple of 16 bytes and within the swizzle span). Checked before the
     * driver is called so the message names the argument.
     */
    public static Optional<String> whyInvalid(DataType type, long address, long[] dims, long[] byteStrides, int[] box,
            Swizzle swizzle) {
        int rank = dims.length;
        if (rank < 1 || rank > 5 || byteStrides.length != rank - 1 || box.length != rank) {
            return Optional.of("rank " + rank + " with " + byteStrides.length + " strides and " + box.length
                    + " box sizes (want rank 1..5, rank-1 strides, rank box sizes)");
        }
        if (address % 16 != 0) {
            return Optional.of("base address 0x" + Long.toHexString(address) + " is not 16-byte aligned");
        }
        for (long d : dims) {
            if (d < 1 || d > (1L << 32)) {
                return Optional.of("dimension " + d + " outside 1..2^32 in " + Arrays.toString(dims));
            }
        }
        for (long s : byteStrides) {
            if (s <= 0 || s % 16 != 0 || s >= (1L << 40)) {
                return Optional.of("byte stride " + s + " in " + Arrays.toString(byteStrides)
                        + " is not a positive multiple of 16 below 2^40");
            }
        }
        for (int b : box) {
            if (b < 1 || b > 256) {
                return Optional.of("box size " + b + " outside 1..256 in " + Arrays.toString(box));
            }
        }
        int rowBytes = box[0] * type.bytes();
        if (rowBytes % 16 != 0) {
            return Optional.of("innermost box row of " + rowBytes + " bytes is not a multiple of 16");
        }
        if (swizzle != Swizzle.NONE && rowBytes > swizzle.spanBytes) {
            return Optional.of("innermost box row of " + rowBytes + " bytes exceeds the " + swizzle.spanBytes
                    + "-byte swizzle span");
        }
        return Optional.empty();
    }

    /**
     * Encodes a tiled map: {@code dims} innermost first (in elements), {@code byteStrides} of dims
     * 1.. in bytes, {@code box} the tile loaded per TMA instruction. Out-of-bounds elements load as
     * zeros.
     *
     * @throws SageException.InvalidInput when the arguments break the driver's limits
     * @throws SageException.Launch       when the driver rejects them anyway
     */
    public static TensorMap encodeTiled(DataType type, long address, long[] dims, long[] byteStrides, int[] box,
            Swizzle swizzle) {
        whyInvalid(type, address, dims, byteStrides, box, swizzle).ifPresent(why -> {
            throw new SageException.InvalidInput("cannot build a TMA tensor map: " + why);
        });
        MethodHandle encode = Binding.ENCODE;
        int rank = dims.length;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment map = arena.allocate(BYTES, 128);
            MemorySegment d = arena.allocateFrom(JAVA_LONG, dims);
            MemorySegment s = arena.allocateFrom(JAVA_LONG, rank > 1 ? byteStrides : new long[] {0});
            MemorySegment b = arena.allocateFrom(JAVA_INT, box);
            int[] ones = new int[rank];
            Arrays.fill(ones, 1);
            MemorySegment e = arena.allocateFrom(JAVA_INT, ones);
            int rc;
            try {
                rc = (int) encode.invokeExact(map, type.code, rank, MemorySegment.ofAddress(address), d, s, b, e,
                        0, swizzle.code, L2_PROMOTION_128B, 0);
            } catch (Throwable t) {
                throw new IllegalStateException("calling cuTensorMapEncodeTiled failed", t);
            }
            if (rc != 0) {
                throw new SageException.Launch("cuTensorMapEncodeTiled(" + type + ", dims " + Arrays.toString(dims)
                        + ", strides " + Arrays.toString(byteStrides) + ", box " + Arrays.toString(box) + ", "
                        + swizzle + ")", rc, "CUresult " + rc);
            }
            return new TensorMap(map.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE));
        }
    }

    /** The driver entry point, bound on first use (the JVM must run with --enable-native-access). */
    @SuppressWarnings("restricted")
    private static final class Binding {
        static final MethodHandle ENCODE = bind();

        private static MethodHandle bind() {
            SymbolLookup cuda;
            try {
                cuda = SymbolLookup.libraryLookup("libcuda.so.1", Arena.global());
            } catch (IllegalArgumentException e) {
                throw new SageException.Unsupported("libcuda.so.1 (the NVIDIA driver) could not be loaded: "
                        + e.getMessage() + "; TMA kernels need a GPU with its driver installed");
            }
            var symbol = cuda.find("cuTensorMapEncodeTiled").orElseThrow(() -> new SageException.Unsupported(
                    "libcuda.so.1 has no cuTensorMapEncodeTiled; TMA needs an R520+ driver (CUDA 12)"));
            var fd = FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                    ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT);
            return Linker.nativeLinker().downcallHandle(symbol, fd);
        }
    }
}
