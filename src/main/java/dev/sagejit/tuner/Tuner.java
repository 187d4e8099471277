package dev.sagejit.tuner;

import dev.sagejit.bench.BenchCase;
import dev.sagejit.spec.KernelSpec;
import dev.sagejit.spec.TileConfig;
import dev.sagejit.spec.TileTable;
import dev.sagejit.tune.ShapeBucket;
import dev.sagejit.tune.TunedConfig;
import dev.sagejit.tune.TuningDatabase;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Finds the fastest correct tile config for one case (spec and shape): the candidates of
 * {@link TileTable#candidates} minus those that cannot fit (shared memory, registers, the case's
 * shape), compiled in parallel on the CPU (a compile error or spills prune too), each checked against
 * the FP64 reference on a small problem before it may win, then timed with CUDA events. Failures
 * score +infinity and keep their reason. The winner goes to the tuning database, which later calls
 * (and {@code SageAttention}) consult; a case already in the database is answered from it without
 * compiling or measuring anything, unless {@link Options#force}.
 */
public final class Tuner {
    /** How to tune. */
    public record Options(boolean force, double minTotalMs, int compileThreads, int maxSpillBytes, String run) {
        public Options {
            if (!(minTotalMs > 0)) {
                throw new IllegalArgumentException("tuning: timed milliseconds per candidate must be > 0, got " + minTotalMs);
            }
            if (compileThreads < 1) {
                throw new IllegalArgumentException("tuning: compile threads must be >= 1, got " + compileThreads);
            }
            Objects.requireNonNull(run, "run");
        }

        /** A copy that ignores the database (tunes again and overwrites its record). */
        public Options forced() {
            return new Options(true, minTotalMs, compileThreads, maxSpillBytes, run);
        }

        /** Defaults: use the database, 200 ms of timed launches per candidate, one compile per processor. */
        public static Options defaults() {
            return new Options(false, 200, Runtime.getRuntime().availableProcessors(), DEFAULT_MAX_SPILL_BYTES,
                    Instant.now().truncatedTo(ChronoUnit.SECONDS).toString());
        }
    }

    /**
     * Spill bytes (stores + loads, ptxas report) above which a candidate is pruned: the int8-fp8
     * defaults spill a few words per tile outside their main loop, which costs nothing measurable.
     */
    public static final int DEFAULT_MAX_SPILL_BYTES = 256;

    /** Progress of a tuning run: {@code done} of {@code total} steps of a phase, and the current item. */
    @FunctionalInterface
    public interface Progress {
        void update(String phase, int done, int total, String item);

        Progress NONE = (phase, done, total, item) -> { };
    }

    private final List<Lab> labs;
    private final Lab lab;
    private final TuningDatabase database;

    /** A tuner over {@code lab} that records winners in {@code database} (null: records nothing). */
    public Tuner(Lab lab, TuningDatabase database) {
        this(List.of(lab), database);
    }

    /**
     * A tuner that spreads each case's candidates over several GPUs of one host, one worker per
     * {@link Lab} (they must be the same model: candidates timed on different ones are compared);
     * the first one compiles.
     */
    public Tuner(List<Lab> labs, TuningDatabase database) {
        if (labs.isEmpty()) {
            throw new IllegalArgumentException("tuning needs at least one GPU (lab)");
        }
        this.labs = List.copyOf(labs);
        this.lab = this.labs.get(0);
        this.database = database;
    }

    /** The candidates of a case, each with the reason it is pruned before compiling (if it is). */
    public List<TuneReport.Entry> candidates(BenchCase c) {
        return candidates(lab.spec(c), c.nk()).stream().map(e -> e.pending()
                ? lab.whyNot(c, e.tiles()).map(w -> TuneReport.Entry.failed(e.tiles(), e.isDefault(), "pruned: " + w))
                        .orElse(e)
                : e).toList();
    }

    /**
     * A spec's candidates from the TileTable alone (no GPU needed): every candidate, the default for
     * {@code keys} key tokens first if the table does not list it, those that cannot fit failed with "pruned: " and why.
     */
    public static List<TuneReport.Entry> candidates(KernelSpec spec, int keys) {
        TileConfig dflt = TileTable.choose(spec, keys).tiles();
        var all = new ArrayList<>(TileTable.candidates(spec));
        if (!all.contains(dflt)) {
            all.add(0, dflt);
        }
        return all.stream().map(t -> TileTable.whyInvalid(spec, t)
                .map(w -> TuneReport.Entry.failed(t, t.equals(dflt), "pruned: " + w))
                .orElseGet(() -> TuneReport.Entry.pending(t, t.equals(dflt)))).toList();
    }

    /** Tunes one case (see the class comment). */
    public TuneReport tune(BenchCase c, Options options, Progress progress) {
        KernelSpec spec = lab.spec(c);
        for (Lab other : labs) {
            if (!other.spec(c).equals(spec)) {
                throw new IllegalArgumentException("tuning over several GPUs needs one model; " + other.spec(c).key()
                        + " differs from " + spec.key() + " (pass --gpus with GPUs of one kind)");
            }
        }
        String bucket = ShapeBucket.of(c.batch(), c.heads(), c.nq(), c.nk()).key();
        if (!options.force() && database != null) {
            Optional<TunedConfig> known = database.lookup(spec.key(), bucket);
            if (known.isPresent()) {
                return TuneReport.fromDatabase(c, spec, bucket, known.get());
            }
        }
        List<TuneReport.Entry> entries = new ArrayList<>(candidates(c));
        compileAll(spec, entries, options, progress);
        measureAll(c, entries, options, progress);
        entries.sort(Comparator.comparingDouble(TuneReport.Entry::score));
        var report = TuneReport.measured(c, spec, bucket, entries);
        if (database != null && report.best().isPresent()) {
            var best = report.best().get();
            OptionalDouble dflt = report.defaultEntry().flatMap(TuneReport.Entry::timing)
                    .map(t -> OptionalDouble.of(t.medianMs())).orElse(OptionalDouble.empty());
            var record = new TunedConfig(spec.key(), bucket, best.tiles().key(), best.timing().orElseThrow().medianMs(),
                    report.tops(best),
                    Instant.now().truncatedTo(ChronoUnit.SECONDS).toString(), options.run(), dflt);
            database.record(record, true);
        }
        return report;
    }

    private void compileAll(KernelSpec spec, List<TuneReport.Entry> entries, Options options, Progress progress) {
        var pool = Executors.newFixedThreadPool(options.compileThreads());
        try {
            var futures = new ArrayList<Future<Integer>>();
            var indices = new ArrayList<Integer>();
            for (int i = 0; i < entries.size(); i++) {
                if (entries.get(i).pending()) {
                    TileConfig t = entries.get(i).tiles();
                    futures.add(pool.submit(() -> lab.compile(spec, t)));
                    indices.add(i);
                }
            }
            for (int f = 0; f < futures.size(); f++) {
                int i = indices.get(f);
                var e = entries.get(i);
                progress.update("compile", f, futures.size(), e.tiles().key());
                try {
                    int spills = futures.get(f).get();
                    if (spills > options.maxSpillBytes() && !e.isDefault()) {
                        entries.set(i, TuneReport.Entry.failed(e.tiles(), e.isDefault(),
                                "pruned: " + spills + " bytes of register spills"));
                    }
                } catch (ExecutionException ex) {
                    entries.set(i, TuneReport.Entry.failed(e.tiles(), e.isDefault(), "compile: " + message(ex.getCause())));
                }
            }
            progress.update("compile", futures.size(), futures.size(), "");
        } catch (InterruptedException ex) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("tuning interrupted while compiling", ex);
        } finally {
            pool.shutdownNow();
        }
    }

    /** Checks and times every pending entry, one worker per lab pulling from a shared queue. */
    private void measureAll(BenchCase c, List<TuneReport.Entry> entries, Options options, Progress progress) {
        var queue = new java.util.concurrent.ConcurrentLinkedQueue<Integer>();
        for (int i = 0; i < entries.size(); i++) {
            if (entries.get(i).pending()) {
                queue.add(i);
            }
        }
        int total = queue.size();
        var done = new java.util.concurrent.atomic.AtomicInteger();
        progress.update("check+time", 0, total, "");
        Runnable[] workers = labs.stream().map(l -> (Runnable) () -> {
            for (Integer i = queue.poll(); i != null; i = queue.poll()) {
                var e = entries.get(i);
                var measured = checkAndTime(l, c, e, options);
                synchronized (entries) {
                    entries.set(i, measured);
                }
                progress.update("check+time", done.incrementAndGet(), total, e.tiles().key());
            }
        }).toArray(Runnable[]::new);
        if (workers.length == 1) {
            workers[0].run();
            return;
        }
        var started = new ArrayList<Thread>();
        for (Runnable w : workers) {
            started.add(Thread.ofPlatform().name("sagejit-tune-worker").start(w));
        }
        for (Thread t : started) {
            try {
                t.join();
            } catch (InterruptedException ex) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("tuning interrupted while measuring", ex);
            }
        }
    }

    private static TuneReport.Entry checkAndTime(Lab lab, BenchCase c, TuneReport.Entry e, Options options) {
        try {
            Optional<String> wrong = lab.check(c, e.tiles());
            if (wrong.isPresent()) {
                return TuneReport.Entry.failed(e.tiles(), e.isDefault(), "check: " + wrong.get());
            }
            return TuneReport.Entry.timed(e.tiles(), e.isDefault(), lab.time(c, e.tiles(), options.minTotalMs()));
        } catch (RuntimeException ex) {
            return TuneReport.Entry.failed(e.tiles(), e.isDefault(), "run: " + message(ex));
        }
    }

    private static String message(Throwable t) {
        String m = t.getMessage();
        String first = m == null ? t.getClass().getSimpleName() : m.lines().findFirst().orElse(m);
        return first.length() > 200 ? first.substring(0, 200) + "..." : first;
    }
}
