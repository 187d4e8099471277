package dev.sagejit.util;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Append-only writer of results files in the format of {@code RESULTS.md}: one flat JSON object per
 * line, fields in the map's iteration order (pass a {@link LinkedHashMap}). Appends to one file are
 * serialised within the process, and each line is written with a single call, so lines never
 * interleave.
 */
public final class JsonLines {
    private static final ObjectMapper MAPPER = new ObjectMapper();
    private static final Map<Path, Object> LOCKS = new ConcurrentHashMap<>();

    private JsonLines() {
    }

    /**
     * Appends {@code line} as one JSON object, creating the file and its parent folders if needed.
     * Values must be scalars (strings, numbers, booleans, enums or null): the format is flat.
     */
    public static void append(Path file, Map<String, Object> line) {
        String json = toJson(line);
        Path key = file.toAbsolutePath().normalize();
        synchronized (LOCKS.computeIfAbsent(key, k -> new Object())) {
            try {
                Path parent = key.getParent();
                if (parent != null) {
                    Files.createDirectories(parent);
                }
                Files.writeString(key, json + "\n", StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                        StandardOpenOption.APPEND, StandardOpenOption.WRITE);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot append a result line to " + key, e);
            }
        }
    }

    /** The JSON text of one line, without the newline. */
    public static String toJson(Map<String, Object> line) {
        for (Map.Entry<String, Object> e : line.entrySet()) {
            Object v = e.getValue();
            if (v instanceof Map<?, ?> || v instanceof Collection<?> || (v != null && v.getClass().isArray())) {
                throw new IllegalArgumentException("results lines are flat; field '" + e.getKey() + "' holds a "
                        + v.getClass().getSimpleName() + " (flatten it into separate fields)");
            }
        }
        try {
            return MAPPER.writeValueAsString(line);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("cannot serialise result line " + line + ": " + e.getMessage(), e);
        }
    }

    /** Reads every line of a results file, each as an insertion-ordered map. */
    public static List<Map<String, Object>> read(Path file) throws IOException {
        List<Map<String, Object>> out = new ArrayList<>();
        TypeReference<LinkedHashMap<String, Object>> type = new TypeReference<>() {
        };
        for (String text : Files.readAllLines(file, StandardCharsets.UTF_8)) {
            if (!text.isBlank()) {
                out.add(MAPPER.readValue(text, type));
            }
        }
        return out;
    }
}
