package dev.sagejit.reference;

import java.util.function.Supplier;
import java.util.stream.IntStream;

/**
 * Runs per-query-row work of the emulated attentions in parallel: tasks of {@link #ROWS} rows of one
 * (batch, query head), each with its own scratch state from {@code scratch}.
 */
final class RowChunks {
    /** Query rows per parallel task. */
    static final int ROWS = 16;

    /** The work for one row: batch, query head, its kv head (flat b * Hkv + h / group), row, scratch. */
    interface Row<S> {
        void run(int b, int h, int kvh, int row, S scratch);
    }

    private RowChunks() {
    }

    static <S> void forEach(int batch, int hq, int hkv, int nq, Supplier<S> scratch, Row<S> row) {
        int chunks = (nq + ROWS - 1) / ROWS;
        int group = hq / hkv;
        IntStream.range(0, batch * hq * chunks).parallel().forEach(task -> {
            int bh = task / chunks;
            int chunk = task % chunks;
            int b = bh / hq;
            int h = bh % hq;
            S state = scratch.get();
            int end = Math.min(nq, (chunk + 1) * ROWS);
            for (int i = chunk * ROWS; i < end; i++) {
                row.run(b, h, b * hkv + h / group, i, state);
            }
        });
    }
}
