package dev.sagejit.reference;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.sagejit.api.DType;
import dev.sagejit.api.Layout;
import dev.sagejit.util.Half;
import org.junit.jupiter.api.Test;

class HostTensorTest {

    @Test
    void indexFollowsLayout() {
        HostTensor bhsd = HostTensor.zeros(2, 3, 4, 5, Layout.BHSD);
        HostTensor bshd = HostTensor.zeros(2, 3, 4, 5, Layout.BSHD);
        assertEquals(((1 * 3 + 2) * 4 + 3) * 5 + 4, bhsd.index(1, 2, 3, 4));
        assertEquals(((1 * 4 + 3) * 3 + 2) * 5 + 4, bshd.index(1, 2, 3, 4));
        assertEquals(5, bhsd.seqStride());
        assertEquals(15, bshd.seqStride());
        assertArrayEquals(new long[] {2, 4, 3, 5}, bshd.shape());
        long[] strides = Layout.BSHD.contiguousStrides(3, 4, 5);
        assertEquals(strides[0] + 2 * strides[1] + 3 * strides[2] + 4, bshd.index(1, 2, 3, 4));
    }

    @Test
    void toLayoutKeepsLogicalValues() {
        HostTensor a = HostTensor.zeros(2, 3, 4, 5, Layout.BHSD);
        for (int i = 0; i < a.data().length; i++) {
            a.data()[i] = i;
        }
        HostTensor b = a.toLayout(Layout.BSHD);
        assertSame(a, a.toLayout(Layout.BHSD));
        for (int bb = 0; bb < 2; bb++) {
            for (int h = 0; h < 3; h++) {
                for (int n = 0; n < 4; n++) {
                    for (int d = 0; d < 5; d++) {
                        assertEquals(a.get(bb, h, n, d), b.get(bb, h, n, d));
                    }
                }
            }
        }
        assertArrayEquals(a.data(), b.toLayout(Layout.BHSD).data());
        b.set(1, 1, 1, 1, -7f);
        assertEquals(-7f, b.get(1, 1, 1, 1));
    }

    @Test
    void roundToAndBitsAgreeWithHalf() {
        HostTensor t = new HostTensor(new float[] {1.0001f, -3.3f, 70000f, 1e-6f}, 1, 1, 2, 2, Layout.BHSD);
        assertArrayEquals(Half.toBits(t.data(), DType.FP16), t.bits(DType.FP16));
        assertArrayEquals(Half.fromBits(t.bits(DType.BF16), DType.BF16), t.roundTo(DType.BF16).data());
        assertEquals(Float.POSITIVE_INFINITY, t.roundTo(DType.FP16).get(0, 0, 1, 0));
        assertEquals(1.0001f, t.get(0, 0, 0, 0)); // original untouched
        HostTensor back = HostTensor.fromBits(t.bits(DType.BF16), DType.BF16, 1, 1, 2, 2, Layout.BHSD);
        assertArrayEquals(t.roundTo(DType.BF16).data(), back.data());
    }

    @Test
    void rejectsWrongSizes() {
        assertThrows(IllegalArgumentException.class, () -> new HostTensor(new float[5], 1, 1, 2, 2, Layout.BHSD));
        assertThrows(IllegalArgumentException.class, () -> HostTensor.zeros(1, 1, 0, 2, Layout.BHSD));
    }
}
