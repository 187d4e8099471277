package dev.sagejit.api;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;

/**
 * Q, K, V and the output O in host memory: any {@link MemorySegment} (heap, native, memory-mapped) or
 * NIO buffer, holding the precision's 16-bit input type (BF16 or FP16 bits, little-endian, 2 bytes
 * per element), dense in the shape's layout. Nothing is copied on the host: the call copies the
 * segments to the GPU and O back into {@code o}.
 */
public record HostSegments(HostShape shape, MemorySegment q, MemorySegment k, MemorySegment v, MemorySegment o) {

    public HostSegments {
        java.util.Objects.requireNonNull(shape, "shape");
        expect("q", q, shape.qElements());
        expect("k", k, shape.kvElements());
        expect("v", v, shape.kvElements());
        expect("o", o, shape.qElements());
        if (o.isReadOnly()) {
            throw new SageException.InvalidInput("o is read-only; pass a writable segment or buffer for the output");
        }
    }

    /**
     * The same over NIO buffers (direct or heap; each buffer's position..limit is the tensor).
     *
     * @throws SageException.InvalidInput when a buffer's remaining bytes do not match the shape
     */
    public static HostSegments of(HostShape shape, ByteBuffer q, ByteBuffer k, ByteBuffer v, ByteBuffer o) {
        return new HostSegments(shape, segment("q", q), segment("k", k), segment("v", v), segment("o", o));
    }

    private static MemorySegment segment(String name, ByteBuffer b) {
        if (b == null) {
            throw new SageException.InvalidInput(name + " must not be null");
        }
        return MemorySegment.ofBuffer(b);
    }

    private static void expect(String name, MemorySegment s, long elements) {
        if (s == null) {
            throw new SageException.InvalidInput(name + " must not be null");
        }
        if (s.byteSize() != 2 * elements) {
            throw new SageException.InvalidInput(name + " has " + s.byteSize() + " bytes, expected " + 2 * elements
                    + " (" + elements + " 16-bit values)");
        }
    }
}
