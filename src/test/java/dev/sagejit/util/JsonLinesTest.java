package dev.sagejit.util;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class JsonLinesTest {
    @TempDir
    Path dir;

    @Test
    void appendsFlatLinesInInsertionOrder() throws IOException {
        Path file = dir.resolve("benchmarks/results/run.jsonl");
        Map<String, Object> line = new LinkedHashMap<>();
        line.put("run", "2025-01-01T00:00:00Z");
        line.put("impl", "sagejit");
        line.put("B", 2);
        line.put("causal", true);
        line.put("median_ms", 1.25);
        JsonLines.append(file, line);
        line.put("median_ms", 1.5);
        JsonLines.append(file, line);
        List<String> text = Files.readAllLines(file);
        assertEquals(2, text.size());
        assertEquals("{\"run\":\"2025-01-01T00:00:00Z\",\"impl\":\"sagejit\",\"B\":2,\"causal\":true,\"median_ms\":1.25}",
                text.get(0));
        List<Map<String, Object>> back = JsonLines.read(file);
        assertEquals(List.of("run", "impl", "B", "causal", "median_ms"), List.copyOf(back.get(1).keySet()));
        assertEquals(1.5, back.get(1).get("median_ms"));
    }

    @Test
    void concurrentAppendsNeverInterleave() throws IOException {
        Path file = dir.resolve("c.jsonl");
        IntStream.range(0, 200).parallel().forEach(i -> {
            Map<String, Object> line = new LinkedHashMap<>();
            line.put("i", i);
            line.put("pad", "x".repeat(500));
            JsonLines.append(file, line);
        });
        List<Map<String, Object>> back = JsonLines.read(file);
        assertEquals(200, back.size());
        assertEquals(200, back.stream().map(m -> m.get("i")).distinct().count());
    }

    @Test
    void rejectsNestedValues() {
        Map<String, Object> line = new LinkedHashMap<>();
        line.put("shape", List.of(1, 2));
        assertThrows(IllegalArgumentException.class, () -> JsonLines.append(dir.resolve("n.jsonl"), line));
    }
}
