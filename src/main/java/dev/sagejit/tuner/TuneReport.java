package dev.sagejit.tuner;

import dev.sagejit.bench.BenchCase;
import dev.sagejit.spec.KernelSpec;
import dev.sagejit.spec.TileConfig;
import dev.sagejit.tune.TunedConfig;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalDouble;

/**
 * The outcome of tuning one case: every candidate ranked by median time (failures last, with their
 * reason), the default's place among them, or the database record that answered instead.
 *
 * @param entries the candidates, fastest first; empty when {@code record} answered
 * @param record  the database record that answered without measuring, if any
 */
public record TuneReport(BenchCase bench, KernelSpec spec, String bucket, List<Entry> entries,
        Optional<TunedConfig> record) {

    public TuneReport {
        entries = List.copyOf(entries);
    }

    static TuneReport measured(BenchCase c, KernelSpec spec, String bucket, List<Entry> ranked) {
        return new TuneReport(c, spec, bucket, ranked, Optional.empty());
    }

    static TuneReport fromDatabase(BenchCase c, KernelSpec spec, String bucket, TunedConfig record) {
        return new TuneReport(c, spec, bucket, List.of(), Optional.of(record));
    }

    /** Whether the database answered (nothing was compiled or measured). */
    public boolean fromDatabase() {
        return record.isPresent();
    }

    /** The fastest candidate that passed its check, if any did. */
    public Optional<Entry> best() {
        return entries.stream().filter(e -> e.timing().isPresent()).findFirst();
    }

    /** The TileTable default's entry. */
    public Optional<Entry> defaultEntry() {
        return entries.stream().filter(Entry::isDefault).findFirst();
    }

    /** The winning tile config: the best measured one, or the database's. */
    public Optional<TileConfig> winner() {
        return record.map(TunedConfig::tileConfig).or(() -> best().map(Entry::tiles));
    }

    /** Default time / best time, when both were measured (or recorded). */
    public OptionalDouble speedupOverDefault() {
        if (record.isPresent()) {
            return record.get().speedup();
        }
        var b = best().flatMap(Entry::timing);
        var d = defaultEntry().flatMap(Entry::timing);
        return b.isPresent() && d.isPresent() ? OptionalDouble.of(d.get().medianMs() / b.get().medianMs())
                : OptionalDouble.empty();
    }

    /** TOPS of an entry on this case (FLOPs as in shared/RESULTS.md). */
    public double tops(Entry e) {
        return e.timing().map(t -> bench.flops() / (t.medianMs() * 1e-3) / 1e12).orElse(0.0);
    }

    /** The command line that measures the winner again. */
    public Optional<String> reproduce() {
        return winner().map(t -> "sagejit bench --shapes " + bench.shape() + " --precision " + bench.precision().id()
                + " --causal " + (bench.causal() ? 1 : 0) + " --layout " + bench.layout().name().toLowerCase(java.util.Locale.ROOT)
                + " --tiles " + t.key());
    }

    /** One row per candidate for CSV/JSON output (results-line keys plus the tuner's). */
    public List<Map<String, Object>> rows(String run, String gpu, String commit) {
        return entries.stream().map(e -> {
            Map<String, Object> line = new LinkedHashMap<>(bench.resultKeys(run, gpu, commit, e.tiles().key()));
            line.put("tuning", true);
            line.put("default", e.isDefault());
            e.timing().ifPresent(t -> {
                line.put("median_ms", t.medianMs());
                line.put("p20_ms", t.p20Ms());
                line.put("p80_ms", t.p80Ms());
                line.put("tops", tops(e));
            });
            e.failure().ifPresent(f -> line.put("error", f));
            return line;
        }).toList();
    }

    /**
     * One candidate: its tiles, whether it is the default, and either its timing or why it failed
     * (neither while it is still pending).
     */
    public record Entry(TileConfig tiles, boolean isDefault, Optional<Lab.Timing> timing, Optional<String> failure) {
        public static Entry pending(TileConfig t, boolean dflt) {
            return new Entry(t, dflt, Optional.empty(), Optional.empty());
        }

        public static Entry failed(TileConfig t, boolean dflt, String why) {
            return new Entry(t, dflt, Optional.empty(), Optional.of(why));
        }

        static Entry timed(TileConfig t, boolean dflt, Lab.Timing timing) {
            return new Entry(t, dflt, Optional.of(timing), Optional.empty());
        }

        /** Not yet compiled, checked or timed (and not pruned). */
        public boolean pending() {
            return timing.isEmpty() && failure.isEmpty();
        }

        /** Median milliseconds, +infinity for a candidate that failed or was not measured. */
        public double score() {
            return timing.map(Lab.Timing::medianMs).orElse(Double.POSITIVE_INFINITY);
        }
    }
}
