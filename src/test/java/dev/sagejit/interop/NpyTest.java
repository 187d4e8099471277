package dev.sagejit.interop;

import dev.sagejit.testing.LittleEndian;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sagejit.api.DType;
import dev.sagejit.util.Half;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class NpyTest {
    @TempDir
    Path dir;

    /** Builds a .npy file byte by byte, as NumPy lays it out. */
    private static byte[] handMade(int major, String dict, byte[] payload) {
        int preamble = major == 1 ? 10 : 12;
        int total = preamble + dict.length() + 1;
        int padTo = (total + 63) / 64 * 64;
        String header = dict + " ".repeat(padTo - total) + "\n";
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(new byte[] {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y', (byte) major, 0});
        int len = header.length();
        if (major == 1) {
            out.writeBytes(new byte[] {(byte) len, (byte) (len >>> 8)});
        } else {
            out.writeBytes(new byte[] {(byte) len, (byte) (len >>> 8), (byte) (len >>> 16), (byte) (len >>> 24)});
        }
        out.writeBytes(header.getBytes(StandardCharsets.US_ASCII));
        out.writeBytes(payload);
        return out.toByteArray();
    }


    @Test
    void readsHandWrittenVersion1File() {
        byte[] file = handMade(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                LittleEndian.floats(1, 2, 3, 4, 5, 6.5f));
        assertEquals(128, file.length - 24); // 64-byte aligned preamble + header
        Npy.NpyArray a = Npy.parse(file);
        assertEquals("<f4", a.dtype());
        assertArrayEquals(new long[] {2, 3}, a.shape());
        assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6.5f}, a.asFloats());
    }

    @Test
    void readsHandWrittenVersion2FileAndScalarAndOneDim() {
        byte[] v2 = handMade(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", LittleEndian.floats(7, 8, 9));
        assertArrayEquals(new float[] {7, 8, 9}, Npy.parse(v2).asFloats());
        byte[] scalar = handMade(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", LittleEndian.floats(42));
        Npy.NpyArray s = Npy.parse(scalar);
        assertEquals(0, s.shape().length);
        assertArrayEquals(new float[] {42}, s.asFloats());
    }

    @Test
    void rejectsFortranOrderBigEndianAndBadMagic() {
        byte[] fortran = handMade(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }", LittleEndian.floats(1));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Npy.parse(fortran));
        assertTrue(e.getMessage().contains("fortran_order"), e.getMessage());
        byte[] big = handMade(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", LittleEndian.floats(1));
        e = assertThrows(IllegalArgumentException.class, () -> Npy.parse(big));
        assertTrue(e.getMessage().contains("big-endian"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Npy.parse("not numpy at all".getBytes()));
        byte[] shortData = handMade(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", LittleEndian.floats(1));
        assertThrows(IllegalArgumentException.class, () -> Npy.parse(shortData));
    }

    @Test
    void writtenHeaderIsAlignedAndParsable() throws IOException {
        Path f = dir.resolve("sub/x.npy");
        Npy.writeFloats(f, new long[] {2, 2}, new float[] {1, -2, 3, -4});
        byte[] bytes = Files.readAllBytes(f);
        assertEquals(1, bytes[6]);
        int headerLen = (bytes[8] & 0xFF) | (bytes[9] & 0xFF) << 8;
        assertEquals(0, (10 + headerLen) % 64);
        assertEquals('\n', bytes[10 + headerLen - 1]);
        String header = new String(bytes, 10, headerLen, StandardCharsets.US_ASCII);
        assertTrue(header.startsWith("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }"), header);
        assertEquals(10 + headerLen + 16, bytes.length);
    }

    @Test
    void roundTripsEveryDtype() throws IOException {
        long[] shape = {3, 1, 2};
        float[] floats = {1.5f, -2f, 3.25f, 0f, 1e-3f, 65504f};
        Npy.writeFloats(dir.resolve("f4.npy"), shape, floats);
        Npy.NpyArray f4 = Npy.read(dir.resolve("f4.npy"));
        assertArrayEquals(shape, f4.shape());
        assertArrayEquals(floats, f4.asFloats());

        double[] doubles = {Math.PI, -1e300, 0, 1, 2, 3};
        Npy.writeDoubles(dir.resolve("f8.npy"), shape, doubles);
        assertArrayEquals(doubles, Npy.read(dir.resolve("f8.npy")).asDoubles());

        short[] f16 = Half.toBits(floats, DType.FP16);
        Npy.writeF16Bits(dir.resolve("f2.npy"), shape, f16);
        Npy.NpyArray f2 = Npy.read(dir.resolve("f2.npy"));
        assertEquals("<f2", f2.dtype());
        assertArrayEquals(f16, f2.asShortBits());
        assertArrayEquals(Half.fromBits(f16, DType.FP16), f2.asFloats());

        short[] bf16 = Half.toBits(floats, DType.BF16);
        Npy.writeBf16Bits(dir.resolve("bf16.npy"), shape, bf16);
        Npy.NpyArray u2 = Npy.read(dir.resolve("bf16.npy"));
        assertEquals("<u2", u2.dtype());
        assertArrayEquals(Half.fromBits(bf16, DType.BF16), u2.bf16AsFloats());
        assertThrows(IllegalStateException.class, u2::asFloats);

        int[] ints = {1, -2, 3, Integer.MAX_VALUE, Integer.MIN_VALUE, 0};
        Npy.writeInts(dir.resolve("i4.npy"), shape, ints);
        assertArrayEquals(ints, Npy.read(dir.resolve("i4.npy")).asInts());

        long[] longs = {1, -2, Long.MAX_VALUE, Long.MIN_VALUE, 0, 7};
        Npy.writeLongs(dir.resolve("i8.npy"), shape, longs);
        assertArrayEquals(longs, Npy.read(dir.resolve("i8.npy")).asLongs());

        assertThrows(IllegalArgumentException.class,
                () -> Npy.writeFloats(dir.resolve("bad.npy"), new long[] {4}, floats));
    }

    @Test
    void largeHeaderSwitchesToVersion2() {
        long[] shape = new long[25000];
        java.util.Arrays.fill(shape, 1);
        byte[] bytes = Npy.encode(new Npy.NpyArray("<f4", shape, ByteBuffer.wrap(LittleEndian.floats(5))));
        assertEquals(2, bytes[6]);
        Npy.NpyArray back = Npy.parse(bytes);
        assertEquals(25000, back.shape().length);
        assertArrayEquals(new float[] {5}, back.asFloats());
    }
}
