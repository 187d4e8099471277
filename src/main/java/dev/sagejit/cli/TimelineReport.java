package dev.sagejit.cli;

import dev.sagejit.kernel.Timeline;
import dev.sagejit.util.JsonLines;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;

/** {@code sagejit run --timeline}: the phase timeline's rows as JSON Lines and the median cycles per step. */
final class TimelineReport {
    private TimelineReport() {
    }

    static void write(PrintWriter out, List<Timeline.Row> rows, Path file) {
        if (rows.isEmpty()) {
            out.println("timeline: no rows (only the int8-fp8 wgmma kernels record one, over their steady key loop)");
            return;
        }
        try {
            Files.deleteIfExists(file);
        } catch (IOException e) {
            throw new UncheckedIOException("could not replace " + file + ": " + e.getMessage(), e);
        }
        var steps = Timeline.STEPS;
        for (var r : rows) {
            var line = new LinkedHashMap<String, Object>();
            line.put("cta", r.cta());
            line.put("consumer", r.consumer());
            line.put("block", r.block());
            line.put("smid", r.smid());
            line.put("global_ns", r.globalNs());
            for (int i = 0; i < steps.size(); i++) {
                line.put(steps.get(i), r.clocks()[i]);
            }
            JsonLines.append(file, line);
        }
        // Cycles from each step to the next, and from block_end to the next block's top, over every row.
        int n = steps.size();
        var spans = new ArrayList<long[]>();
        for (int i = 0; i < n; i++) {
            spans.add(new long[rows.size()]);
        }
        int[] counts = new int[n];
        for (int k = 0; k < rows.size(); k++) {
            var r = rows.get(k);
            for (int i = 0; i + 1 < n; i++) {
                spans.get(i)[counts[i]++] = r.clocks()[i + 1] - r.clocks()[i];
            }
            if (k + 1 < rows.size() && rows.get(k + 1).cta() == r.cta() && rows.get(k + 1).consumer() == r.consumer()
                    && rows.get(k + 1).block() == r.block() + 1) {
                spans.get(n - 1)[counts[n - 1]++] = rows.get(k + 1).clocks()[0] - r.clocks()[n - 1];
            }
        }
        out.printf(Locale.ROOT, "timeline: %d rows written to %s; median cycles (p20-p80) per step:%n", rows.size(), file);
        for (int i = 0; i < n; i++) {
            long[] v = Arrays.copyOf(spans.get(i), counts[i]);
            if (v.length == 0) {
                continue;
            }
            Arrays.sort(v);
            String to = i + 1 < n ? steps.get(i + 1) : "next top";
            out.printf(Locale.ROOT, "  %-15s -> %-15s %7d (%d-%d)%n", steps.get(i), to, v[v.length / 2],
                    v[v.length / 5], v[v.length * 4 / 5]);
        }
    }
}
