package dev.sagejit.interop;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sagejit.api.DType;
import dev.sagejit.api.SageException;
import dev.sagejit.util.Half;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.CharBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;

/**
 * Reads and writes the safetensors format used by Hugging Face checkpoints: an 8-byte little-endian
 * header length {@code N}, {@code N} bytes of UTF-8 JSON mapping each tensor name to
 * {@code {"dtype", "shape", "data_offsets": [begin, end]}} (plus an optional {@code "__metadata__"}
 * object of string to string), then the byte buffer the offsets index into. Data is little-endian and
 * C ordered.
 *
 * <p>{@link #read(Path)} memory-maps the file and checks the header strictly: every offset lies in
 * the buffer, the tensors tile the buffer exactly (contiguous, no overlap, no gap, nothing after the
 * last), each size equals {@code product(shape) * itemsize}, and the header is at most
 * {@value #MAX_HEADER_BYTES} bytes. {@link #write} writes to a temporary file beside the target and
 * renames it, so readers never see a half-written file.
 */
public final class Safetensors {
    /** Largest header accepted, as in the reference implementation (100 MB). */
    public static final long MAX_HEADER_BYTES = 100_000_000L;
    /** The header key that holds free-form string metadata. */
    public static final String METADATA_KEY = "__metadata__";

    /** Bytes per element of each supported safetensors dtype (sub-byte types are not supported). */
    private static final Map<String, Integer> ITEM_SIZE = Map.ofEntries(
            Map.entry("BOOL", 1), Map.entry("U8", 1), Map.entry("I8", 1),
            Map.entry("F8_E4M3", 1), Map.entry("F8_E5M2", 1),
            Map.entry("I16", 2), Map.entry("U16", 2), Map.entry("F16", 2), Map.entry("BF16", 2),
            Map.entry("I32", 4), Map.entry("U32", 4), Map.entry("F32", 4),
            Map.entry("I64", 8), Map.entry("U64", 8), Map.entry("F64", 8));
    private static final Set<String> ENTRY_KEYS = Set.of("dtype", "shape", "data_offsets");
    private static final ValueLayout.OfShort LE_SHORT =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat LE_FLOAT =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble LE_DOUBLE =
            ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
    /** Chunk size for copying tensor data to the output file. */
    private static final int COPY_CHUNK = 1 << 24;

    private Safetensors() {
    }

    /**
     * One named tensor: its safetensors dtype string, shape (C order, empty for a scalar) and exactly
     * {@code product(shape) * itemsize} bytes of little-endian data. Tensors returned by
     * {@link Safetensors#read} view the memory-mapped file (read-only); the others usually live on the
     * Java heap.
     *
     * @param name  tensor name, the key in the header
     * @param dtype safetensors dtype, e.g. {@code F32}, {@code BF16}
     * @param shape dimensions, each &ge; 0
     * @param data  the elements' bytes
     */
    public record Tensor(String name, String dtype, long[] shape, MemorySegment data) {

        public Tensor {
            Objects.requireNonNull(name, "name");
            Objects.requireNonNull(data, "data");
            int item = Safetensors.itemSize(dtype, name);
            shape = shape.clone();
            long need = Math.multiplyExact(Safetensors.elementCount(shape, name), item);
            if (data.byteSize() != need) {
                throw new SageException.InvalidInput("tensor '" + name + "': shape " + Arrays.toString(shape)
                        + " of " + dtype + " needs " + need + " bytes, data has " + data.byteSize()
                        + "; pass exactly product(shape) * " + item + " bytes");
            }
        }

        /** A tensor over a copy of {@code bytes} (little-endian element data). */
        public static Tensor ofBytes(String name, String dtype, long[] shape, byte[] bytes) {
            return new Tensor(name, dtype, shape, MemorySegment.ofArray(bytes.clone()));
        }

        /** An {@code F32} tensor holding {@code values}. */
        public static Tensor ofFloats(String name, long[] shape, float[] values) {
            MemorySegment seg = MemorySegment.ofArray(new byte[Math.multiplyExact(values.length, 4)]);
            for (int i = 0; i < values.length; i++) {
                seg.setAtIndex(LE_FLOAT, i, values[i]);
            }
            return new Tensor(name, "F32", shape, seg);
        }

        /**
         * A 16-bit float tensor ({@code F16} or {@code BF16}) holding {@code values} rounded to nearest
         * even, exactly as the GPU would round them.
         */
        public static Tensor ofHalfs(String name, String dtype, long[] shape, float[] values) {
            DType t = switch (dtype) {
                case "F16" -> DType.FP16;
                case "BF16" -> DType.BF16;
                default -> throw new SageException.InvalidInput("tensor '" + name + "': ofHalfs takes F16 or BF16, not "
                        + dtype + "; use ofFloats for F32");
            };
            MemorySegment seg = MemorySegment.ofArray(new byte[Math.multiplyExact(values.length, 2)]);
            for (int i = 0; i < values.length; i++) {
                seg.setAtIndex(LE_SHORT, i, Half.toBits(values[i], t));
            }
            return new Tensor(name, dtype, shape, seg);
        }

        @Override
        public long[] shape() {
            return shape.clone();
        }

        /** Number of elements, {@code product(shape)}. */
        public long elementCount() {
            return Safetensors.elementCount(shape, name);
        }

        /** Bytes per element of {@link #dtype()}. */
        public int itemSize() {
            return Safetensors.itemSize(dtype, name);
        }

        /** The sagejit element type of this tensor, when it has one ({@code F32}, {@code F16}, {@code BF16}). */
        public Optional<DType> sageDType() {
            return Optional.ofNullable(switch (dtype) {
                case "F32" -> DType.FP32;
                case "F16" -> DType.FP16;
                case "BF16" -> DType.BF16;
                default -> null;
            });
        }

        /** A heap copy of the data bytes. */
        public byte[] toBytes() {
            return data.toArray(ValueLayout.JAVA_BYTE);
        }

        /**
         * The elements widened to float: exact for {@code F32}, {@code F16} and {@code BF16},
         * rounded for {@code F64}.
         *
         * @throws SageException.InvalidInput for other dtypes or tensors too large for a Java array
         */
        public float[] toFloats() {
            long count = elementCount();
            if (count > Integer.MAX_VALUE - 8) {
                throw new SageException.InvalidInput("tensor '" + name + "' has " + count
                        + " elements, more than a Java array holds; read it in slices through data()");
            }
            int n = (int) count;
            float[] out = new float[n];
            switch (dtype) {
                case "F32" -> {
                    for (int i = 0; i < n; i++) {
                        out[i] = data.getAtIndex(LE_FLOAT, i);
                    }
                }
                case "F16" -> {
                    for (int i = 0; i < n; i++) {
                        out[i] = Half.fp16ToFloat(data.getAtIndex(LE_SHORT, i));
                    }
                }
                case "BF16" -> {
                    for (int i = 0; i < n; i++) {
                        out[i] = Half.bf16ToFloat(data.getAtIndex(LE_SHORT, i));
                    }
                }
                case "F64" -> {
                    for (int i = 0; i < n; i++) {
                        out[i] = (float) data.getAtIndex(LE_DOUBLE, i);
                    }
                }
                default -> throw new SageException.InvalidInput("tensor '" + name + "' is " + dtype
                        + "; toFloats needs F32, F16, BF16 or F64 (read integers through data())");
            }
            return out;
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Tensor t && t.name.equals(name) && t.dtype.equals(dtype)
                    && Arrays.equals(t.shape, shape) && t.data.mismatch(data) == -1;
        }

        @Override
        public int hashCode() {
            return Objects.hash(name, dtype, Arrays.hashCode(shape), data.byteSize());
        }

        @Override
        public String toString() {
            return "Tensor[" + name + " " + dtype + " " + Arrays.toString(shape) + ", " + data.byteSize() + " bytes]";
        }
    }

    /**
     * The contents of a safetensors file: tensors in file order (by data offset) and the
     * {@code __metadata__} strings (empty when absent).
     *
     * @param tensors  tensors by name, in the order their data appears in the file
     * @param metadata the header's metadata
     */
    public record Contents(Map<String, Tensor> tensors, Map<String, String> metadata) {
        public Contents {
            tensors = Collections.unmodifiableMap(new LinkedHashMap<>(tensors));
            metadata = Collections.unmodifiableMap(new LinkedHashMap<>(metadata));
        }
    }

    /**
     * Reads the tensors of a safetensors file. The data is memory-mapped and unmapped when the tensors
     * become unreachable; use {@link #read(Path, Arena)} to unmap at a known time.
     *
     * @throws SageException.InvalidInput when the file breaks the format; the message names the tensor
     * @throws IOException                when the file cannot be read
     */
    public static Map<String, Tensor> read(Path file) throws IOException {
        return readAll(file, Arena.ofAuto()).tensors();
    }

    /** Like {@link #read(Path)}, mapping into {@code arena}: the tensors are valid until it closes. */
    public static Map<String, Tensor> read(Path file, Arena arena) throws IOException {
        return readAll(file, arena).tensors();
    }

    /** Reads only the {@code __metadata__} strings of a safetensors file (the header is still validated). */
    public static Map<String, String> readMetadata(Path file) throws IOException {
        return readAll(file, Arena.ofAuto()).metadata();
    }

    /** Reads tensors and metadata, mapping the data into {@code arena}. */
    public static Contents readAll(Path file, Arena arena) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long fileSize = ch.size();
            if (fileSize < 8) {
                throw invalid(file, "file is " + fileSize + " bytes, shorter than the 8-byte header length; "
                        + "it is not a safetensors file or it was truncated");
            }
            ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(ch, lenBuf, 0);
            long headerLen = lenBuf.getLong(0);
            if (Long.compareUnsigned(headerLen, MAX_HEADER_BYTES) > 0) {
                throw invalid(file, "header length " + Long.toUnsignedString(headerLen) + " exceeds the "
                        + MAX_HEADER_BYTES + "-byte limit; the file is corrupt or not safetensors");
            }
            if (headerLen > fileSize - 8) {
                throw invalid(file, "header length " + headerLen + " exceeds the " + (fileSize - 8)
                        + " bytes after the length field; the file was truncated");
            }
            ByteBuffer headerBuf = ByteBuffer.allocate((int) headerLen);
            readFully(ch, headerBuf, 8);
            String header = decodeUtf8(file, headerBuf.flip());
            long dataStart = 8 + headerLen;
            long bufferLen = fileSize - dataStart;
            Map<String, String> metadata = new LinkedHashMap<>();
            List<Span> spans = parseHeader(file, header, bufferLen, metadata);
            MemorySegment buffer = bufferLen == 0 ? MemorySegment.ofArray(new byte[0])
                    : ch.map(FileChannel.MapMode.READ_ONLY, dataStart, bufferLen, arena);
            Map<String, Tensor> out = new LinkedHashMap<>();
            for (Span s : spans) {
                out.put(s.name(), new Tensor(s.name(), s.dtype(), s.shape(),
                        buffer.asSlice(s.begin(), s.end() - s.begin())));
            }
            return new Contents(out, metadata);
        }
    }

    /**
     * Writes {@code tensors} (keyed by their names) and {@code metadata} to {@code file}, replacing it
     * atomically. Tensors are laid out largest element size first, then by name, so each starts on a
     * multiple of its element size; the header is padded with spaces to a multiple of 8 bytes.
     *
     * @param metadata strings for {@code __metadata__}; empty or null writes none
     * @throws SageException.InvalidInput when a key differs from its tensor's name
     */
    public static void write(Path file, Map<String, Tensor> tensors, Map<String, String> metadata)
            throws IOException {
        List<Tensor> order = new ArrayList<>();
        for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
            if (!e.getKey().equals(e.getValue().name())) {
                throw new SageException.InvalidInput("map key '" + e.getKey() + "' holds tensor '"
                        + e.getValue().name() + "'; key each tensor by its own name");
            }
            if (e.getKey().equals(METADATA_KEY)) {
                throw new SageException.InvalidInput("'" + METADATA_KEY + "' is reserved for metadata; rename the tensor");
            }
            order.add(e.getValue());
        }
        order.sort(Comparator.comparingInt(Tensor::itemSize).reversed().thenComparing(Tensor::name));
        byte[] header = encodeHeader(order, metadata == null ? Map.of() : metadata);

        Path target = file.toAbsolutePath();
        Path dir = target.getParent();
        Files.createDirectories(dir);
        Path tmp = Files.createTempFile(dir, "." + target.getFileName(), ".tmp");
        boolean moved = false;
        try {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, header.length);
                writeFully(ch, len);
                writeFully(ch, ByteBuffer.wrap(header));
                for (Tensor t : order) {
                    MemorySegment d = t.data();
                    for (long off = 0; off < d.byteSize(); off += COPY_CHUNK) {
                        long n = Math.min(COPY_CHUNK, d.byteSize() - off);
                        writeFully(ch, d.asSlice(off, n).asByteBuffer());
                    }
                }
                ch.force(true);
            }
            try {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
            }
            moved = true;
        } finally {
            if (!moved) {
                Files.deleteIfExists(tmp);
            }
        }
    }

    /** The JSON header bytes, space-padded to a multiple of 8. */
    static byte[] encodeHeader(List<Tensor> order, Map<String, String> metadata) {
        ObjectNode root = JSON.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode meta = root.putObject(METADATA_KEY);
            new TreeMap<>(metadata).forEach(meta::put);
        }
        long offset = 0;
        for (Tensor t : order) {
            ObjectNode entry = root.putObject(t.name());
            entry.put("dtype", t.dtype());
            ArrayNode shape = entry.putArray("shape");
            for (long d : t.shape()) {
                shape.add(d);
            }
            long end = offset + t.data().byteSize();
            entry.putArray("data_offsets").add(offset).add(end);
            offset = end;
        }
        byte[] json;
        try {
            json = JSON.writeValueAsBytes(root);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot encode a safetensors header", e);
        }
        int padded = (json.length + 7) / 8 * 8;
        byte[] out = Arrays.copyOf(json, padded);
        Arrays.fill(out, json.length, padded, (byte) ' ');
        return out;
    }

    /** One header entry: where a tensor's bytes lie in the data buffer. */
    private record Span(String name, String dtype, long[] shape, long begin, long end) {
    }

    /**
     * Parses and validates the header against a data buffer of {@code bufferLen} bytes, returning the
     * tensors sorted by offset and adding the metadata strings to {@code metadata}.
     */
    private static List<Span> parseHeader(Path file, String header, long bufferLen, Map<String, String> metadata) {
        JsonNode root;
        try {
            root = JSON.readTree(header);
        } catch (JsonProcessingException e) {
            throw invalid(file, "header is not valid JSON (" + e.getOriginalMessage() + ")");
        }
        if (root == null || !root.isObject()) {
            throw invalid(file, "header must be a JSON object mapping tensor names to entries");
        }
        List<Span> spans = new ArrayList<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.properties().iterator(); it.hasNext();) {
            Map.Entry<String, JsonNode> e = it.next();
            String name = e.getKey();
            JsonNode v = e.getValue();
            if (name.equals(METADATA_KEY)) {
                if (!v.isObject()) {
                    throw invalid(file, METADATA_KEY + " must be an object of strings");
                }
                v.properties().forEach(m -> {
                    if (!m.getValue().isTextual()) {
                        throw invalid(file, METADATA_KEY + " value of '" + m.getKey() + "' is "
                                + m.getValue().getNodeType() + "; metadata values must be strings");
                    }
                    metadata.put(m.getKey(), m.getValue().textValue());
                });
                continue;
            }
            if (!v.isObject()) {
                throw invalid(file, "tensor '" + name + "': entry must be an object with dtype, shape and data_offsets");
            }
            for (Iterator<String> k = v.fieldNames(); k.hasNext();) {
                String key = k.next();
                if (!ENTRY_KEYS.contains(key)) {
                    throw invalid(file, "tensor '" + name + "': unknown field '" + key
                            + "'; entries hold only dtype, shape and data_offsets");
                }
            }
            JsonNode dt = v.get("dtype");
            if (dt == null || !dt.isTextual()) {
                throw invalid(file, "tensor '" + name + "': missing or non-string dtype");
            }
            String dtype = dt.textValue();
            if (!ITEM_SIZE.containsKey(dtype)) {
                throw invalid(file, "tensor '" + name + "': unsupported dtype '" + dtype + "'; expected one of "
                        + new TreeMap<>(ITEM_SIZE).keySet());
            }
            long[] shape = longs(file, name, "shape", v.get("shape"), -1);
            long[] offsets = longs(file, name, "data_offsets", v.get("data_offsets"), 2);
            long begin = offsets[0];
            long end = offsets[1];
            if (begin > end) {
                throw invalid(file, "tensor '" + name + "': data_offsets [" + begin + ", " + end + "] end before they begin");
            }
            if (end > bufferLen) {
                throw invalid(file, "tensor '" + name + "': data_offsets [" + begin + ", " + end
                        + "] run past the " + bufferLen + "-byte data buffer; the file was truncated");
            }
            long need;
            try {
                need = Math.multiplyExact(elementCount(shape, name), ITEM_SIZE.get(dtype));
            } catch (ArithmeticException ex) {
                throw invalid(file, "tensor '" + name + "': shape " + Arrays.toString(shape) + " overflows 64 bits");
            }
            if (end - begin != need) {
                throw invalid(file, "tensor '" + name + "': data_offsets [" + begin + ", " + end + "] hold "
                        + (end - begin) + " bytes but shape " + Arrays.toString(shape) + " of " + dtype
                        + " needs " + need);
            }
            spans.add(new Span(name, dtype, shape, begin, end));
        }
        spans.sort(Comparator.comparingLong(Span::begin).thenComparingLong(Span::end));
        long expected = 0;
        String previous = null;
        for (Span s : spans) {
            if (s.begin() < expected) {
                throw invalid(file, "tensor '" + s.name() + "': data_offsets [" + s.begin() + ", " + s.end()
                        + "] overlap tensor '" + previous + "', which ends at " + expected);
            }
            if (s.begin() > expected) {
                throw invalid(file, "tensor '" + s.name() + "': data_offsets begin at " + s.begin() + " but "
                        + (previous == null ? "the buffer starts at 0" : "tensor '" + previous + "' ends at " + expected)
                        + "; the buffer has a gap of unindexed bytes");
            }
            expected = s.end();
            previous = s.name();
        }
        if (expected != bufferLen) {
            throw invalid(file, "the tensors cover " + expected + " bytes but the data buffer has " + bufferLen
                    + (previous == null ? "" : " (last tensor '" + previous + "')")
                    + "; the file has trailing bytes or a wrong header");
        }
        return spans;
    }

    private static long[] longs(Path file, String name, String field, JsonNode node, int length) {
        if (node == null || !node.isArray()) {
            throw invalid(file, "tensor '" + name + "': missing or non-array " + field);
        }
        if (length >= 0 && node.size() != length) {
            throw invalid(file, "tensor '" + name + "': " + field + " has " + node.size() + " entries, expected " + length);
        }
        long[] out = new long[node.size()];
        for (int i = 0; i < out.length; i++) {
            JsonNode x = node.get(i);
            if (!x.isIntegralNumber() || !x.canConvertToLong() || x.longValue() < 0) {
                throw invalid(file, "tensor '" + name + "': " + field + "[" + i + "] = " + x
                        + " is not a non-negative 64-bit integer");
            }
            out[i] = x.longValue();
        }
        return out;
    }

    static int itemSize(String dtype, String name) {
        Integer size = dtype == null ? null : ITEM_SIZE.get(dtype);
        if (size == null) {
            throw new SageException.InvalidInput("tensor '" + name + "': unsupported dtype '" + dtype
                    + "'; expected one of " + new TreeMap<>(ITEM_SIZE).keySet());
        }
        return size;
    }

    static long elementCount(long[] shape, String name) {
        long n = 1;
        for (long d : shape) {
            if (d < 0) {
                throw new SageException.InvalidInput("tensor '" + name + "': negative dimension in shape "
                        + Arrays.toString(shape));
            }
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    private static String decodeUtf8(Path file, ByteBuffer bytes) {
        try {
            CharBuffer chars = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(bytes);
            return chars.toString();
        } catch (CharacterCodingException e) {
            throw invalid(file, "header is not valid UTF-8; the file is corrupt or not safetensors");
        }
    }

    private static void readFully(FileChannel ch, ByteBuffer buf, long position) throws IOException {
        long pos = position;
        while (buf.hasRemaining()) {
            int n = ch.read(buf, pos);
            if (n < 0) {
                throw new IOException("unexpected end of file at byte " + pos);
            }
            pos += n;
        }
    }

    private static void writeFully(FileChannel ch, ByteBuffer buf) throws IOException {
        while (buf.hasRemaining()) {
            ch.write(buf);
        }
    }

    private static SageException.InvalidInput invalid(Path file, String message) {
        return new SageException.InvalidInput(file + ": not a valid safetensors file: " + message);
    }
}
