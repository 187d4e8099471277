package dev.sagejit.tuner;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sagejit.api.Layout;
import dev.sagejit.api.Precision;
import dev.sagejit.bench.BenchCase;
import dev.sagejit.spec.Arch;
import dev.sagejit.spec.Direction;
import dev.sagejit.spec.KernelSpec;
import dev.sagejit.spec.TileConfig;
import dev.sagejit.spec.TileTable;
import dev.sagejit.tune.DeviceFingerprint;
import dev.sagejit.tune.TuningDatabase;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The tuner's logic on a scripted lab: no GPU, no NVRTC. */
class TunerTest {
    static final BenchCase CASE = new BenchCase(4, 32, 32, 4096, 4096, 128, false, Precision.BF16, Layout.BHSD);
    static final DeviceFingerprint H200 = DeviceFingerprint.current("NVIDIA H200", "sm90a", 132, 13000, "13.0");

    /** A lab whose timings, failures and spills are scripted per tile key; it counts what it was asked. */
    static final class ScriptedLab implements Lab {
        final Map<String, Double> ms = new ConcurrentHashMap<>();
        final Map<String, String> compileErrors = new ConcurrentHashMap<>();
        final Map<String, String> wrong = new ConcurrentHashMap<>();
        final Map<String, Integer> spills = new ConcurrentHashMap<>();
        final AtomicInteger compiles = new AtomicInteger();
        final AtomicInteger timings = new AtomicInteger();
        final AtomicInteger checks = new AtomicInteger();
        double otherMs = 5.0;

        @Override
        public KernelSpec spec(BenchCase c) {
            return new KernelSpec(Direction.FWD, Arch.SM90A, c.precision(), c.headDim(), c.causal(), false);
        }

        @Override
        public Optional<String> whyNot(BenchCase c, TileConfig tiles) {
            return Optional.empty();
        }

        @Override
        public int compile(KernelSpec spec, TileConfig tiles) {
            compiles.incrementAndGet();
            String err = compileErrors.get(tiles.key());
            if (err != null) {
                throw new IllegalStateException(err + "\nsecond line of the log");
            }
            return spills.getOrDefault(tiles.key(), 0);
        }

        @Override
        public Optional<String> check(BenchCase c, TileConfig tiles) {
            checks.incrementAndGet();
            return Optional.ofNullable(wrong.get(tiles.key()));
        }

        @Override
        public Timing time(BenchCase c, TileConfig tiles, double minTotalMs) {
            timings.incrementAndGet();
            double t = ms.getOrDefault(tiles.key(), otherMs);
            return new Timing(t, t * 0.99, t * 1.01);
        }
    }

    static TuningDatabase database(Path dir) {
        return new TuningDatabase(dir, H200, Duration.ZERO);
    }

    static Tuner.Options options() {
        return new Tuner.Options(false, 50, 2, Tuner.DEFAULT_MAX_SPILL_BYTES, "test-run");
    }

    static KernelSpec spec() {
        return new ScriptedLab().spec(CASE);
    }

    static List<TileConfig> valid() {
        return TileTable.candidates(spec()).stream().filter(t -> TileTable.whyInvalid(spec(), t).isEmpty()).toList();
    }

    @Test
    void ranksByMedianKeepsFailuresWithReasonsAndRecordsTheWinner(@TempDir Path dir) {
        var lab = new ScriptedLab();
        var ok = valid();
        assertTrue(ok.size() >= 4, "the sm_90a bf16 d128 space has several valid candidates: " + ok);
        TileConfig dflt = TileTable.choose(spec()).tiles();
        var others = ok.stream().filter(t -> !t.equals(dflt)).toList();
        lab.ms.put(dflt.key(), 2.0);
        lab.ms.put(others.get(0).key(), 1.5);                         // the winner
        lab.compileErrors.put(others.get(1).key(), "NVRTC error: bad");  // fails to compile
        lab.wrong.put(others.get(2).key(), "cosine 0.5");               // fails its check
        lab.ms.put(others.get(3).key(), 1.0);
        lab.spills.put(others.get(3).key(), 4096);                       // fastest, but spills: pruned
        var db = database(dir);
        var report = new Tuner(lab, db).tune(CASE, options(), Tuner.Progress.NONE);

        assertFalse(report.fromDatabase());
        assertEquals(others.get(0), report.winner().orElseThrow());
        assertEquals(2.0 / 1.5, report.speedupOverDefault().orElseThrow(), 1e-9);
        var byKey = new java.util.HashMap<String, TuneReport.Entry>();
        report.entries().forEach(e -> byKey.put(e.tiles().key(), e));
        assertTrue(byKey.get(others.get(1).key()).failure().orElseThrow().startsWith("compile: NVRTC error: bad"));
        assertFalse(byKey.get(others.get(1).key()).failure().orElseThrow().contains("second line"));
        assertEquals("check: cosine 0.5", byKey.get(others.get(2).key()).failure().orElseThrow());
        assertTrue(byKey.get(others.get(3).key()).failure().orElseThrow().contains("4096 bytes of register spills"));
        // Failures rank last, scored +infinity; every invalid candidate is pruned with TileTable's reason.
        var scores = report.entries().stream().mapToDouble(TuneReport.Entry::score).toArray();
        for (int i = 1; i < scores.length; i++) {
            assertTrue(scores[i - 1] <= scores[i], "ranked by median");
        }
        TileTable.candidates(spec()).stream().filter(t -> TileTable.whyInvalid(spec(), t).isPresent()).forEach(t ->
                assertTrue(byKey.get(t.key()).failure().orElseThrow().startsWith("pruned: "), t.key()));
        // Only valid candidates compiled; only those that compiled cleanly were checked and timed.
        assertEquals(ok.size(), lab.compiles.get());
        assertEquals(ok.size() - 2, lab.checks.get());
        assertEquals(ok.size() - 3, lab.timings.get());

        var rec = db.lookup(spec().key(), report.bucket()).orElseThrow();
        assertEquals(others.get(0).key(), rec.tiles());
        assertEquals(1.5, rec.medianMs());
        assertEquals(2.0, rec.defaultMedianMs().getAsDouble());
        assertEquals("sagejit bench --shapes 4x32x4096x128 --precision bf16 --causal 0 --layout bhsd --tiles "
                + others.get(0).key(), report.reproduce().orElseThrow());
    }

    @Test
    void aSecondRunAnswersFromTheDatabaseWithoutCompilingOrMeasuring(@TempDir Path dir) {
        var first = new ScriptedLab();
        new Tuner(first, database(dir)).tune(CASE, options(), Tuner.Progress.NONE);
        var second = new ScriptedLab();
        var report = new Tuner(second, database(dir)).tune(CASE, options(), Tuner.Progress.NONE);
        assertTrue(report.fromDatabase());
        assertEquals(0, second.compiles.get() + second.checks.get() + second.timings.get());
        assertTrue(report.winner().isPresent());
        // --force measures again.
        var third = new ScriptedLab();
        var forced = new Tuner(third, database(dir)).tune(CASE, options().forced(), Tuner.Progress.NONE);
        assertFalse(forced.fromDatabase());
        assertTrue(third.timings.get() > 0);
    }

    @Test
    void theDefaultIsAlwaysMeasuredSoTheWinnerIsNeverSlowerThanIt(@TempDir Path dir) {
        var lab = new ScriptedLab();
        TileConfig dflt = TileTable.choose(spec()).tiles();
        lab.spills.put(dflt.key(), 100_000);  // the default is measured whatever it spills
        lab.otherMs = 3.0;
        lab.ms.put(dflt.key(), 2.5);
        var report = new Tuner(lab, null).tune(CASE, options(), Tuner.Progress.NONE);
        assertEquals(dflt, report.winner().orElseThrow());
        assertEquals(1.0, report.speedupOverDefault().orElseThrow(), 1e-12);
        assertTrue(report.defaultEntry().orElseThrow().timing().isPresent());
    }

    @Test
    void noCorrectCandidateMeansNoWinnerAndNoRecord(@TempDir Path dir) {
        var lab = new ScriptedLab();
        valid().forEach(t -> lab.wrong.put(t.key(), "NaN output"));
        var db = database(dir);
        var report = new Tuner(lab, db).tune(CASE, options(), Tuner.Progress.NONE);
        assertTrue(report.winner().isEmpty());
        assertTrue(db.lookup(spec().key(), report.bucket()).isEmpty());
        assertTrue(report.entries().stream().allMatch(e -> e.failure().isPresent()));
    }

    @Test
    void severalGpusShareTheCandidatesAndTheProgressCountsThemAll(@TempDir Path dir) {
        var a = new ScriptedLab();
        var b = new ScriptedLab();
        var seen = new java.util.concurrent.CopyOnWriteArrayList<String>();
        var report = new Tuner(List.of(a, b), null).tune(CASE, options(),
                (phase, done, total, item) -> seen.add(phase + " " + done + "/" + total));
        int measured = (int) report.entries().stream().filter(e -> e.timing().isPresent()).count();
        assertEquals(valid().size(), measured);
        assertEquals(measured, a.timings.get() + b.timings.get());
        assertEquals(valid().size(), a.compiles.get(), "the first GPU's lab compiles");
        assertTrue(seen.contains("check+time " + measured + "/" + measured), seen.toString());
        assertTrue(seen.contains("compile " + valid().size() + "/" + valid().size()), seen.toString());
    }
}
