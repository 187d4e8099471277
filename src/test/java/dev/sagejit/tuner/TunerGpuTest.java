package dev.sagejit.tuner;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sagejit.api.AttentionOptions;
import dev.sagejit.api.DType;
import dev.sagejit.api.DeviceTensor;
import dev.sagejit.api.Layout;
import dev.sagejit.api.Precision;
import dev.sagejit.bench.BenchCase;
import dev.sagejit.kernel.SageInternals;
import dev.sagejit.spec.TileConfig;
import dev.sagejit.tune.TunedConfig;
import dev.sagejit.tune.TuningDatabase;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The tuner on the GPU: real compiles, checks and timings; the runtime follows the database. */
@Tag("gpu")
class TunerGpuTest extends dev.sagejit.testing.GpuSession {

    @Test
    void tunesACaseRecordsTheWinnerAndAnswersTheSecondRunFromTheDatabase(@TempDir Path dir) {
        var c = new BenchCase(2, 8, 8, 1024, 1024, 64, false, Precision.INT8_FP8, Layout.BHSD);
        var db = new TuningDatabase(dir, SageInternals.launcher(sage).tuning().fingerprint(), Duration.ZERO);
        var options = new Tuner.Options(false, 20, Runtime.getRuntime().availableProcessors(),
                Tuner.DEFAULT_MAX_SPILL_BYTES, "gpu-test");
        var report = new Tuner(new GpuLab(sage), db).tune(c, options, Tuner.Progress.NONE);
        var best = report.best().orElseThrow(() -> new AssertionError("no candidate passed: " + report.entries()));
        var dflt = report.defaultEntry().orElseThrow();
        assertTrue(dflt.timing().isPresent(), "the default is measured: " + dflt);
        assertTrue(best.score() <= dflt.score(), "the winner is at least as fast as the default");
        assertTrue(report.entries().stream().filter(e -> e.timing().isPresent()).count() >= 2,
                "several candidates measured: " + report.entries());
        assertEquals(best.tiles().key(), db.lookup(report.spec().key(), report.bucket()).orElseThrow().tiles());

        var counting = new CountingLab(new GpuLab(sage));
        var again = new Tuner(counting, db).tune(c, options, Tuner.Progress.NONE);
        assertTrue(again.fromDatabase());
        assertEquals(0, counting.calls, "no compile, check or timing on the second run");
    }

    @Test
    void theRuntimeRunsWithTheTunedTiles() {
        // A shape no other test uses, so its bucket's record changes nothing else.
        int b = 1, h = 3, n = 777, d = 128;
        var opts = AttentionOptions.builder().precision(Precision.BF16).build();
        var t = DeviceTensor.contiguous(0x10000L, DType.BF16, Layout.BHSD, b, h, n, d);
        TileConfig before = SageInternals.plan(sage, opts, t, t, t, t, 0L).tiles();
        TileConfig other = TileConfig.wgmma(128, 64, 2).equals(before) ? TileConfig.wgmma(128, 128, 3)
                : TileConfig.wgmma(128, 64, 2);
        var spec = SageInternals.plan(sage, opts, t, t, t, t, 0L).spec();
        String bucket = dev.sagejit.tune.ShapeBucket.keyOf(b, h, n, n);
        TuningDatabase db = SageInternals.launcher(sage).tuning();
        db.record(new TunedConfig(spec.key(), bucket, other.key(), 1.0, 1.0, "2026-11-30T12:00:00Z", "gpu-test"), true);
        TileConfig after = SageInternals.plan(sage, opts, t, t, t, t, 0L).tiles();
        assertNotEquals(before, after);
        assertEquals(other, after);
        assertFalse(db.records().isEmpty());
    }

    /** Counts every call that would compile, check or time. */
    static final class CountingLab implements Lab {
        final Lab inner;
        int calls;

        CountingLab(Lab inner) {
            this.inner = inner;
        }

        @Override
        public dev.sagejit.spec.KernelSpec spec(BenchCase c) {
            return inner.spec(c);
        }

        @Override
        public java.util.Optional<String> whyNot(BenchCase c, TileConfig tiles) {
            return inner.whyNot(c, tiles);
        }

        @Override
        public int compile(dev.sagejit.spec.KernelSpec spec, TileConfig tiles) {
            calls++;
            return inner.compile(spec, tiles);
        }

        @Override
        public java.util.Optional<String> check(BenchCase c, TileConfig tiles) {
            calls++;
            return inner.check(c, tiles);
        }

        @Override
        public Timing time(BenchCase c, TileConfig tiles, double minTotalMs) {
            calls++;
            return inner.time(c, tiles, minTotalMs);
        }
    }
}
