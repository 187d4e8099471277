package dev.sagejit.tune;

import java.nio.file.Path;
import java.time.Duration;

/**
 * Child process of {@link TuningDatabaseTest}: records {@code count} configs with distinct buckets
 * into the database in {@code args[0]}, as a separate tuner process would.
 */
final class TuningWriterMain {
    private TuningWriterMain() {
    }

    public static void main(String[] args) {
        Path dir = Path.of(args[0]);
        int id = Integer.parseInt(args[1]);
        int count = Integer.parseInt(args[2]);
        var db = new TuningDatabase(dir, TuningDatabaseTest.H200, Duration.ZERO);
        for (int i = 0; i < count; i++) {
            db.record(new TunedConfig("fwd_bf16_d64_sm90a", new ShapeBucket(128 << i, 128 << id, 1).key(),
                    "m128n64w4s2", 1.0 + i, 100.0, "2025-06-01T12:00:00Z", "process-" + id));
        }
    }
}
