package dev.sagejit.api;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import dev.sagejit.util.Half;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** Host memory (native segments, heap NIO buffers) gives exactly the output of host arrays. */
@Tag("gpu")
class HostSegmentsGpuTest extends dev.sagejit.testing.GpuSession {

    @Test
    void segmentsAndBuffersMatchHostArraysBitForBit() {
        var shape = new HostShape(Layout.BSHD, 2, 4, 2, 100, 130, 128);
        var rnd = new Random(3);
        float[] q = gaussian(rnd, shape.qElements()), k = gaussian(rnd, shape.kvElements()), v = gaussian(rnd, shape.kvElements());
        for (Precision p : new Precision[] {Precision.BF16, Precision.INT8_FP8}) {
            var opts = AttentionOptions.builder().precision(p).causal(true).lse(true).build();
            DType t = p.inputType();
            HostResult want = sage.forward(opts, new HostQkv(shape.layout(), shape.batch(), shape.heads(), shape.kvHeads(),
                    shape.nq(), shape.nk(), shape.headDim(), q, k, v));
            short[] wantBits = Half.toBits(want.o(), t);
            try (var arena = Arena.ofConfined()) { // native segments
                var o = arena.allocate(2 * shape.qElements());
                float[] lse = sage.forward(opts, new HostSegments(shape, nativeBits(arena, q, t), nativeBits(arena, k, t),
                        nativeBits(arena, v, t), o));
                assertArrayEquals(wantBits, o.toArray(ValueLayout.JAVA_SHORT), p + " native segments");
                assertArrayEquals(want.lse(), lse, p + " LSE");
            }
            var o = ByteBuffer.allocate((int) (2 * shape.qElements())).order(ByteOrder.nativeOrder()); // heap buffers
            sage.forward(opts, HostSegments.of(shape, heapBits(q, t), heapBits(k, t), heapBits(v, t), o));
            short[] got = new short[wantBits.length];
            o.asShortBuffer().get(got);
            assertArrayEquals(wantBits, got, p + " heap ByteBuffers");
        }
    }

    private static float[] gaussian(Random rnd, long n) {
        float[] a = new float[(int) n];
        for (int i = 0; i < a.length; i++) {
            a[i] = (float) rnd.nextGaussian();
        }
        return a;
    }

    private static MemorySegment nativeBits(Arena arena, float[] x, DType t) {
        return arena.allocateFrom(ValueLayout.JAVA_SHORT, Half.toBits(x, t));
    }

    private static ByteBuffer heapBits(float[] x, DType t) {
        var b = ByteBuffer.allocate(2 * x.length).order(ByteOrder.nativeOrder());
        b.asShortBuffer().put(Half.toBits(x, t));
        return b;
    }
}
