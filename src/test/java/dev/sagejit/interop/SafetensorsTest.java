package dev.sagejit.interop;

import dev.sagejit.testing.LittleEndian;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sagejit.api.DType;
import dev.sagejit.api.SageException;
import dev.sagejit.interop.Safetensors.Tensor;
import dev.sagejit.util.Half;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsTest {
    @TempDir
    Path dir;

    /** A safetensors file laid out by hand from the format description: u64 LE length, JSON, buffer. */
    private static byte[] handMade(String json, byte[] buffer) {
        byte[] header = json.getBytes(StandardCharsets.UTF_8);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(header.length).array());
        out.writeBytes(header);
        out.writeBytes(buffer);
        return out.toByteArray();
    }


    private Path file(String name, byte[] bytes) throws IOException {
        Path p = dir.resolve(name);
        Files.write(p, bytes);
        return p;
    }

    private String rejection(String json, byte[] buffer) throws IOException {
        Path p = file("bad.safetensors", handMade(json, buffer));
        return assertThrows(SageException.InvalidInput.class, () -> Safetensors.read(p)).getMessage();
    }

    @Test
    void readsAHandMadeFile() throws IOException {
        Path p = file("one.safetensors", handMade(
                "{\"__metadata__\":{\"format\":\"pt\"},\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}",
                LittleEndian.floats(1, 2, 3, -4, 5.5f, 6)));
        Map<String, Tensor> t = Safetensors.read(p);
        assertEquals(List.of("w"), List.copyOf(t.keySet()));
        Tensor w = t.get("w");
        assertEquals("F32", w.dtype());
        assertArrayEquals(new long[] {2, 3}, w.shape());
        assertArrayEquals(new float[] {1, 2, 3, -4, 5.5f, 6}, w.toFloats());
        assertEquals(Map.of("format", "pt"), Safetensors.readMetadata(p));
    }

    @Test
    void roundTripsSeveralDtypesAndMetadata() throws IOException {
        float[] bf = {1.0f, -2.5f, 3.14159f, 1e-3f};
        float[] f16 = {0.5f, -65504f, 1.0009765625f, 7f};
        Map<String, Tensor> in = new LinkedHashMap<>();
        in.put("a.f32", Tensor.ofFloats("a.f32", new long[] {2, 3}, new float[] {1, 2, 3, 4, 5, 6}));
        in.put("b.bf16", Tensor.ofHalfs("b.bf16", "BF16", new long[] {4}, bf));
        in.put("c.f16", Tensor.ofHalfs("c.f16", "F16", new long[] {2, 2}, f16));
        in.put("d.i64", Tensor.ofBytes("d.i64", "I64", new long[] {1}, new byte[] {1, 2, 3, 4, 5, 6, 7, -128}));
        in.put("e.u8", Tensor.ofBytes("e.u8", "U8", new long[] {3}, new byte[] {(byte) 255, 0, 7}));
        in.put("f.i32", Tensor.ofBytes("f.i32", "I32", new long[] {}, new byte[] {9, 0, 0, 0}));
        in.put("g.empty", Tensor.ofBytes("g.empty", "F64", new long[] {0, 4}, new byte[0]));
        in.put("h.i8", Tensor.ofBytes("h.i8", "I8", new long[] {1, 1}, new byte[] {-3}));
        Map<String, String> meta = Map.of("format", "pt", "note", "grüße, \"quoted\"");
        Path p = dir.resolve("sub/model.safetensors");
        Safetensors.write(p, in, meta);

        try (Arena arena = Arena.ofConfined()) {
            Safetensors.Contents back = Safetensors.readAll(p, arena);
            assertEquals(in.keySet(), back.tensors().keySet());
            for (Tensor t : in.values()) {
                assertEquals(t, back.tensors().get(t.name()), t.name());
            }
            assertEquals(meta, back.metadata());
            float[] bfBack = back.tensors().get("b.bf16").toFloats();
            assertArrayEquals(Half.round(bf, DType.BF16), bfBack);
            assertArrayEquals(Half.round(f16, DType.FP16), back.tensors().get("c.f16").toFloats());
            assertEquals(DType.BF16, back.tensors().get("b.bf16").sageDType().orElseThrow());
        }

        byte[] bytes = Files.readAllBytes(p);
        long n = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        assertEquals(0, n % 8, "header padded to a multiple of 8");
        assertEquals('{', bytes[8]);
        // largest element size first: every tensor starts on a multiple of its element size
        String header = new String(bytes, 8, (int) n, StandardCharsets.UTF_8);
        assertTrue(header.indexOf("\"d.i64\"") < header.indexOf("\"a.f32\""), header);
        try (Stream<Path> left = Files.list(p.getParent())) {
            assertEquals(List.of(p), left.toList(), "no temporary file left behind");
        }
    }

    @Test
    void rewriteReplacesTheFile() throws IOException {
        Path p = dir.resolve("x.safetensors");
        Safetensors.write(p, Map.of("x", Tensor.ofFloats("x", new long[] {1}, new float[] {1})), null);
        Safetensors.write(p, Map.of("y", Tensor.ofFloats("y", new long[] {2}, new float[] {2, 3})), Map.of());
        Map<String, Tensor> back = Safetensors.read(p);
        assertEquals(List.of("y"), List.copyOf(back.keySet()));
        assertEquals(Map.of(), Safetensors.readMetadata(p));
    }

    @Test
    void writeRejectsAMisnamedTensor() {
        var e = assertThrows(SageException.InvalidInput.class, () -> Safetensors.write(dir.resolve("m.safetensors"),
                Map.of("k", Tensor.ofFloats("other", new long[] {1}, new float[] {1})), null));
        assertTrue(e.getMessage().contains("'k'") && e.getMessage().contains("'other'"), e.getMessage());
    }

    @Test
    void tensorChecksItsSize() {
        var e = assertThrows(SageException.InvalidInput.class,
                () -> Tensor.ofBytes("t", "F32", new long[] {2, 3}, new byte[20]));
        assertTrue(e.getMessage().contains("needs 24 bytes"), e.getMessage());
        var dt = assertThrows(SageException.InvalidInput.class, () -> Tensor.ofBytes("t", "F12", new long[] {1}, new byte[1]));
        assertTrue(dt.getMessage().contains("'F12'"), dt.getMessage());
        var fl = assertThrows(SageException.InvalidInput.class,
                () -> Tensor.ofBytes("ints", "I32", new long[] {1}, new byte[4]).toFloats());
        assertTrue(fl.getMessage().contains("'ints' is I32"), fl.getMessage());
    }

    @Test
    void rejectsOverlappingOffsets() throws IOException {
        String m = rejection("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", new byte[12]);
        assertTrue(m.contains("'b'") && m.contains("overlap") && m.contains("'a'"), m);
    }

    @Test
    void rejectsATruncatedBuffer() throws IOException {
        String m = rejection("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", new byte[16]);
        assertTrue(m.contains("'w'") && m.contains("16-byte data buffer") && m.contains("truncated"), m);
    }

    @Test
    void rejectsABadDtype() throws IOException {
        String m = rejection("{\"w\":{\"dtype\":\"F17\",\"shape\":[1],\"data_offsets\":[0,4]}}", new byte[4]);
        assertTrue(m.contains("'w'") && m.contains("'F17'") && m.contains("BF16"), m);
    }

    @Test
    void rejectsAHugeHeaderLength() throws IOException {
        byte[] bytes = handMade("{}", new byte[0]);
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).putLong(0, 1L << 40);
        Path p = file("huge.safetensors", bytes);
        var e = assertThrows(SageException.InvalidInput.class, () -> Safetensors.read(p));
        assertTrue(e.getMessage().contains("exceeds the 100000000-byte limit"), e.getMessage());
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).putLong(0, -1L);
        Path q = file("negative.safetensors", bytes);
        var e2 = assertThrows(SageException.InvalidInput.class, () -> Safetensors.read(q));
        assertTrue(e2.getMessage().contains("18446744073709551615"), e2.getMessage());
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).putLong(0, 4096);
        Path r = file("short.safetensors", bytes);
        var e3 = assertThrows(SageException.InvalidInput.class, () -> Safetensors.read(r));
        assertTrue(e3.getMessage().contains("header length 4096 exceeds"), e3.getMessage());
    }

    @Test
    void rejectsOtherMalformedHeaders() throws IOException {
        String size = rejection("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", new byte[20]);
        assertTrue(size.contains("'w'") && size.contains("needs 24"), size);
        String gap = rejection("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", new byte[8]);
        assertTrue(gap.contains("'w'") && gap.contains("gap"), gap);
        String trailing = rejection("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", new byte[9]);
        assertTrue(trailing.contains("trailing"), trailing);
        String dup = rejection("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                + "\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", new byte[2]);
        assertTrue(dup.contains("Duplicate") && dup.contains("'w'"), dup);
        String meta = rejection("{\"__metadata__\":{\"n\":3}}", new byte[0]);
        assertTrue(meta.contains("'n'") && meta.contains("strings"), meta);
        String json = rejection("{\"w\":", new byte[0]);
        assertTrue(json.contains("not valid JSON"), json);
        String frac = rejection("{\"w\":{\"dtype\":\"U8\",\"shape\":[1.5],\"data_offsets\":[0,1]}}", new byte[1]);
        assertTrue(frac.contains("'w'") && frac.contains("shape[0]"), frac);
        String extra = rejection("{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"x\":1}}", new byte[1]);
        assertTrue(extra.contains("unknown field 'x'"), extra);
        Path tiny = file("tiny.safetensors", new byte[] {1, 2, 3});
        var e = assertThrows(SageException.InvalidInput.class, () -> Safetensors.read(tiny));
        assertTrue(e.getMessage().contains("shorter than the 8-byte header length"), e.getMessage());
    }
}
