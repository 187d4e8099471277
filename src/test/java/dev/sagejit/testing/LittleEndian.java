package dev.sagejit.testing;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** Hand-made file contents for the file-format tests. */
public final class LittleEndian {
    private LittleEndian() {
    }

    /** The bytes of FP32 values, little-endian. */
    public static byte[] floats(float... v) {
        ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float f : v) {
            b.putFloat(f);
        }
        return b.array();
    }
}
