package dev.sagejit.interop;

import dev.sagejit.api.DType;
import dev.sagejit.util.Half;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reads and writes NumPy {@code .npy} files (format 1.0 and 2.0; 3.0 is read too), so tensors can be
 * exchanged with PyTorch/NumPy peers. Supported dtypes: {@code <f2}, {@code <f4}, {@code <f8},
 * {@code <i4}, {@code <i8} and {@code <u2}; NumPy has no bfloat16, so bf16 tensors travel as their raw
 * bits in {@code <u2} ({@link #writeBf16Bits}, {@link NpyArray#bf16AsFloats}). Only C order.
 */
public final class Npy {
    private static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
    /** The whole preamble plus header is padded to a multiple of this, as NumPy does. */
    private static final int ALIGN = 64;
    private static final Map<String, Integer> ITEM_SIZE =
            Map.of("<f2", 2, "<f4", 4, "<f8", 8, "<i4", 4, "<i8", 8, "<u2", 2);

    private static final Pattern DESCR = Pattern.compile("['\"]descr['\"]\\s*:\\s*['\"]([^'\"]*)['\"]");
    private static final Pattern FORTRAN = Pattern.compile("['\"]fortran_order['\"]\\s*:\\s*(True|False)");
    private static final Pattern SHAPE = Pattern.compile("['\"]shape['\"]\\s*:\\s*\\(([^)]*)\\)");

    private Npy() {
    }

    /**
     * An array read from or to be written to a {@code .npy} file.
     *
     * @param dtype NumPy type string, e.g. {@code <f4}
     * @param shape dimensions, C order (empty for a scalar)
     * @param data  the elements, little-endian, from position 0
     */
    public record NpyArray(String dtype, long[] shape, ByteBuffer data) {
        public NpyArray {
            itemSize(dtype);
            shape = shape.clone();
            data = data.slice().order(ByteOrder.LITTLE_ENDIAN);
            long need = Npy.count(shape) * itemSize(dtype);
            if (data.remaining() < need) {
                throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " of " + dtype + " needs "
                        + need + " bytes, data has " + data.remaining());
            }
        }

        /** Number of elements. */
        public long count() {
            return Npy.count(shape);
        }

        /** Elements as floats, converting from {@code <f2}, {@code <f4} or {@code <f8}. */
        public float[] asFloats() {
            int n = intCount();
            float[] out = new float[n];
            ByteBuffer b = data.duplicate().order(ByteOrder.LITTLE_ENDIAN);
            switch (dtype) {
                case "<f2" -> {
                    for (int i = 0; i < n; i++) {
                        out[i] = Half.fp16ToFloat(b.getShort(2 * i));
                    }
                }
                case "<f4" -> b.asFloatBuffer().get(out);
                case "<f8" -> {
                    for (int i = 0; i < n; i++) {
                        out[i] = (float) b.getDouble(8 * i);
                    }
                }
                default -> throw new IllegalStateException("asFloats needs <f2, <f4 or <f8, the array is " + dtype
                        + (dtype.equals("<u2") ? "; for bfloat16 bits use bf16AsFloats()" : ""));
            }
            return out;
        }

        /** Elements as doubles, from any float or integer dtype ({@code <u2} read as unsigned). */
        public double[] asDoubles() {
            int n = intCount();
            double[] out = new double[n];
            ByteBuffer b = data.duplicate().order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < n; i++) {
                out[i] = switch (dtype) {
                    case "<f2" -> Half.fp16ToFloat(b.getShort(2 * i));
                    case "<f4" -> b.getFloat(4 * i);
                    case "<f8" -> b.getDouble(8 * i);
                    case "<i4" -> b.getInt(4 * i);
                    case "<i8" -> b.getLong(8 * i);
                    default -> b.getShort(2 * i) & 0xFFFF;
                };
            }
            return out;
        }

        /** Elements of a {@code <i4} array. */
        public int[] asInts() {
            require("<i4");
            int[] out = new int[intCount()];
            data.duplicate().order(ByteOrder.LITTLE_ENDIAN).asIntBuffer().get(out);
            return out;
        }

        /** Elements of a {@code <i8} or {@code <i4} array, widened. */
        public long[] asLongs() {
            if (dtype.equals("<i4")) {
                return Arrays.stream(asInts()).asLongStream().toArray();
            }
            require("<i8");
            long[] out = new long[intCount()];
            data.duplicate().order(ByteOrder.LITTLE_ENDIAN).asLongBuffer().get(out);
            return out;
        }

        /** Raw 16-bit elements of a {@code <f2} or {@code <u2} array. */
        public short[] asShortBits() {
            if (!dtype.equals("<f2") && !dtype.equals("<u2")) {
                throw new IllegalStateException("asShortBits needs <f2 or <u2, the array is " + dtype);
            }
            short[] out = new short[intCount()];
            data.duplicate().order(ByteOrder.LITTLE_ENDIAN).asShortBuffer().get(out);
            return out;
        }

        /** A {@code <u2} array read as bfloat16 bits and widened to float. */
        public float[] bf16AsFloats() {
            require("<u2");
            return Half.fromBits(asShortBits(), DType.BF16);
        }

        private void require(String expected) {
            if (!dtype.equals(expected)) {
                throw new IllegalStateException("expected dtype " + expected + ", the array is " + dtype);
            }
        }

        private int intCount() {
            long n = count();
            if (n > Integer.MAX_VALUE - 8) {
                throw new IllegalStateException(n + " elements do not fit a Java array");
            }
            return (int) n;
        }
    }

    /** Reads a {@code .npy} file. */
    public static NpyArray read(Path file) throws IOException {
        try {
            return parse(Files.readAllBytes(file));
        } catch (IllegalArgumentException e) {
            throw new IOException(file + ": " + e.getMessage(), e);
        }
    }

    /** Parses the bytes of a {@code .npy} file. */
    public static NpyArray parse(byte[] bytes) {
        ByteBuffer buf = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        if (bytes.length < 10 || !Arrays.equals(Arrays.copyOf(bytes, MAGIC.length), MAGIC)) {
            throw new IllegalArgumentException("not a .npy file: missing the \\x93NUMPY magic");
        }
        int major = bytes[6] & 0xFF;
        int minor = bytes[7] & 0xFF;
        int headerLen;
        int headerStart;
        switch (major) {
            case 1 -> {
                headerLen = buf.getShort(8) & 0xFFFF;
                headerStart = 10;
            }
            case 2, 3 -> {
                if (bytes.length < 12) {
                    throw new IllegalArgumentException("truncated .npy preamble");
                }
                long len = buf.getInt(8) & 0xFFFFFFFFL;
                if (len > bytes.length) {
                    throw new IllegalArgumentException("header length " + len + " exceeds the file");
                }
                headerLen = (int) len;
                headerStart = 12;
            }
            default -> throw new IllegalArgumentException("unsupported .npy format version " + major + "." + minor
                    + "; expected 1.0 or 2.0");
        }
        if (headerStart + headerLen > bytes.length) {
            throw new IllegalArgumentException("truncated .npy header");
        }
        String header = new String(bytes, headerStart, headerLen,
                major == 3 ? StandardCharsets.UTF_8 : StandardCharsets.ISO_8859_1);
        String descr = group(DESCR, header, "descr");
        if (group(FORTRAN, header, "fortran_order").equals("True")) {
            throw new IllegalArgumentException("fortran_order True is not supported; save a C-ordered array "
                    + "(numpy.ascontiguousarray) instead");
        }
        long[] shape = parseShape(group(SHAPE, header, "shape"));
        itemSize(descr);
        ByteBuffer data = ByteBuffer.wrap(bytes, headerStart + headerLen, bytes.length - headerStart - headerLen)
                .slice().order(ByteOrder.LITTLE_ENDIAN);
        return new NpyArray(descr, shape, data);
    }

    /** Encodes an array as {@code .npy} bytes (format 1.0 unless the header needs 2.0). */
    public static byte[] encode(NpyArray array) {
        StringBuilder dims = new StringBuilder();
        for (long d : array.shape()) {
            dims.append(d).append(", ");
        }
        String shapeText = array.shape().length == 1 ? dims.substring(0, dims.length() - 1)
                : dims.length() == 0 ? "" : dims.substring(0, dims.length() - 2);
        String dict = "{'descr': '" + array.dtype() + "', 'fortran_order': False, 'shape': (" + shapeText + "), }";
        int preamble = 10;
        int headerLen = padded(preamble, dict.length());
        if (headerLen > 0xFFFF) {
            preamble = 12;
            headerLen = padded(preamble, dict.length());
        }
        String header = dict + " ".repeat(headerLen - dict.length() - 1) + "\n";
        long dataBytes = array.count() * itemSize(array.dtype());
        ByteBuffer out = ByteBuffer.allocate(Math.toIntExact(preamble + headerLen + dataBytes))
                .order(ByteOrder.LITTLE_ENDIAN);
        out.put(MAGIC).put((byte) (preamble == 10 ? 1 : 2)).put((byte) 0);
        if (preamble == 10) {
            out.putShort((short) headerLen);
        } else {
            out.putInt(headerLen);
        }
        out.put(header.getBytes(StandardCharsets.ISO_8859_1));
        ByteBuffer src = array.data().duplicate();
        src.limit(src.position() + (int) dataBytes);
        out.put(src);
        return out.array();
    }

    /** Writes an array, replacing the file. */
    public static void write(Path file, NpyArray array) throws IOException {
        Path parent = file.toAbsolutePath().getParent();
        if (parent != null) {
            Files.createDirectories(parent);
        }
        Files.write(file, encode(array));
    }

    public static void writeFloats(Path file, long[] shape, float[] data) throws IOException {
        write(file, "<f4", shape, data.length, b -> b.asFloatBuffer().put(data));
    }

    public static void writeDoubles(Path file, long[] shape, double[] data) throws IOException {
        write(file, "<f8", shape, data.length, b -> b.asDoubleBuffer().put(data));
    }

    /** Writes IEEE half bits as {@code <f2} (NumPy float16). */
    public static void writeF16Bits(Path file, long[] shape, short[] bits) throws IOException {
        requireCount(shape, bits.length);
        write(file, new NpyArray("<f2", shape, shorts(bits)));
    }

    /** Writes bfloat16 bits as {@code <u2}; read them in PyTorch with {@code .view(torch.bfloat16)}. */
    public static void writeBf16Bits(Path file, long[] shape, short[] bits) throws IOException {
        requireCount(shape, bits.length);
        write(file, new NpyArray("<u2", shape, shorts(bits)));
    }

    public static void writeInts(Path file, long[] shape, int[] data) throws IOException {
        write(file, "<i4", shape, data.length, b -> b.asIntBuffer().put(data));
    }

    public static void writeLongs(Path file, long[] shape, long[] data) throws IOException {
        write(file, "<i8", shape, data.length, b -> b.asLongBuffer().put(data));
    }

    /** Writes {@code length} elements of type {@code descr}, which {@code fill} puts into the buffer. */
    private static void write(Path file, String descr, long[] shape, int length, Consumer<ByteBuffer> fill)
            throws IOException {
        requireCount(shape, length);
        ByteBuffer b = allocate(length, ITEM_SIZE.get(descr));
        fill.accept(b);
        write(file, new NpyArray(descr, shape, b));
    }

    private static void requireCount(long[] shape, int length) {
        if (count(shape) != length) {
            throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " has " + count(shape)
                    + " elements, data has " + length);
        }
    }

    static long count(long[] shape) {
        long n = 1;
        for (long d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("negative dimension in shape " + Arrays.toString(shape));
            }
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    private static int itemSize(String dtype) {
        Integer size = ITEM_SIZE.get(dtype);
        if (size == null) {
            String hint = dtype != null && dtype.startsWith(">") ? " (big-endian data is not supported)" : "";
            throw new IllegalArgumentException("unsupported dtype '" + dtype + "'" + hint + "; expected one of "
                    + ITEM_SIZE.keySet().stream().sorted().toList());
        }
        return size;
    }

    /** Header length such that preamble + header is a multiple of 64, with room for the final '\n'. */
    private static int padded(int preamble, int dictLen) {
        int total = preamble + dictLen + 1;
        return (total + ALIGN - 1) / ALIGN * ALIGN - preamble;
    }

    private static long[] parseShape(String text) {
        String t = text.trim();
        if (t.isEmpty()) {
            return new long[0];
        }
        return Arrays.stream(t.split(",")).map(String::trim).filter(s -> !s.isEmpty()).mapToLong(s -> {
            try {
                return Long.parseLong(s.endsWith("L") ? s.substring(0, s.length() - 1) : s);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("bad shape entry '" + s + "' in (" + text + ")");
            }
        }).toArray();
    }

    private static String group(Pattern p, String header, String key) {
        Matcher m = p.matcher(header);
        if (!m.find()) {
            throw new IllegalArgumentException(".npy header lacks '" + key + "': " + header.trim());
        }
        return m.group(1);
    }

    private static ByteBuffer allocate(int count, int itemSize) {
        return ByteBuffer.allocate(Math.multiplyExact(count, itemSize)).order(ByteOrder.LITTLE_ENDIAN);
    }

    private static ByteBuffer shorts(short[] bits) {
        ByteBuffer b = allocate(bits.length, 2);
        b.asShortBuffer().put(bits);
        return b;
    }
}
