package dev.sagejit.cli;

import dev.sagejit.api.Precision;
import dev.sagejit.api.SageAttention;
import dev.sagejit.bench.BenchCase;
import dev.sagejit.kernel.SageInternals;
import dev.sagejit.spec.Arch;
import dev.sagejit.spec.Direction;
import dev.sagejit.spec.KernelSpec;
import dev.sagejit.tuner.GpuLab;
import dev.sagejit.tuner.Lab;
import dev.sagejit.tuner.TuneReport;
import dev.sagejit.tuner.Tuner;
import dev.sagejit.util.JsonLines;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;

/**
 * {@code sagejit tune}: finds the fastest correct tile config per case and records it in the tuning
 * database of this GPU, which every later call consults. Progress goes to stderr; stdout gets the
 * final table and the reproducing command lines.
 */
@Command(name = "tune", mixinStandardHelpOptions = true,
        description = "Tune tile configs per spec and shape; the runtime uses the results.")
final class TuneCommand implements Callable<Integer> {
    @ParentCommand
    Main main;

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Mixin
    CaseGrid grid;

    @Mixin
    RunStamp stamp;

    @Option(names = "--precision", split = ",", defaultValue = "bf16", converter = Converters.PrecisionConverter.class,
            description = "Comma list (default ${DEFAULT-VALUE}).")
    List<Precision> precisions;

    @Option(names = "--cases", description = "File of cases, one per line: SHAPE PRECISION [causal] (# comments);"
            + " replaces --shapes/--precision/--causal.")
    Path casesFile;

    @Option(names = "--dry-run", description = "List each case's candidates and why some are pruned; nothing runs.")
    boolean dryRun;

    @Option(names = "--arch", description = "With --dry-run on a machine without a GPU: sm_80, sm_89, sm_90a, sm_120a.")
    String arch;

    @Option(names = "--force", description = "Tune again even when the database has the case.")
    boolean force;

    @Option(names = "--min-ms", defaultValue = "200", description = "Timed milliseconds per candidate (default ${DEFAULT-VALUE}).")
    double minMs;

    @Option(names = "--jobs", description = "Parallel compiles (default: available processors).")
    Integer jobs;

    @Option(names = "--gpus", split = ",", description = "GPU ordinals to spread candidates over, one worker each"
            + " (default: the one SAGEJIT_DEVICE names).")
    List<Integer> gpus;

    @Option(names = "--json", description = "Append every candidate's row (results-line format) to this JSONL file.")
    Path json;

    @Option(names = "--csv", description = "Write every candidate's row to this CSV file.")
    Path csv;

    @Override
    public Integer call() {
        List<BenchCase> cases = cases();
        PrintWriter out = spec.commandLine().getOut();
        if (dryRun) {
            return dryRun(out, cases);
        }
        String run = stamp.run();
        var options = new Tuner.Options(force, minMs, jobs != null ? jobs : Runtime.getRuntime().availableProcessors(),
                Tuner.DEFAULT_MAX_SPILL_BYTES, run);
        List<Integer> ordinals = gpus == null || gpus.isEmpty() ? List.of(main.knobs().deviceOrdinal()) : gpus;
        var engines = new ArrayList<SageAttention>();
        var reports = new ArrayList<TuneReport>();
        String gpu;
        try {
            for (int ordinal : ordinals) {
                engines.add(SageInternals.open(main.knobs().withDevice(ordinal)));
            }
            gpu = engines.get(0).device().name();
            String sha = stamp.commit();
            List<Lab> labs = engines.stream().map(s -> (Lab) new GpuLab(s)).toList();
            var tuner = new Tuner(labs, SageInternals.launcher(engines.get(0)).tuning());
            for (int i = 0; i < cases.size(); i++) {
                BenchCase c = cases.get(i);
                var bar = new ProgressBar(spec.commandLine().getErr(), String.format(Locale.ROOT, "[%d/%d] %s %s %s",
                        i + 1, cases.size(), c.shape(), c.precision().id(), c.mask()));
                TuneReport report;
                try {
                    report = tuner.tune(c, options, bar::update);
                } finally {
                    bar.finish();
                }
                reports.add(report);
                // Each case is reported and written as soon as it is done: nothing is lost if a later one fails.
                printReports(out, List.of(report));
                appendJson(report, run, gpu, sha);
            }
            writeCsv(reports, run, gpu, sha);
        } finally {
            engines.forEach(SageAttention::close);
        }
        printSummary(out, reports);
        return reports.stream().allMatch(r -> r.winner().isPresent()) ? 0 : 1;
    }

    private List<BenchCase> cases() {
        var out = new ArrayList<BenchCase>();
        if (casesFile != null) {
            List<String> lines;
            try {
                lines = Files.readAllLines(casesFile);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read --cases file " + casesFile, e);
            }
            for (String raw : lines) {
                String line = raw.replaceFirst("#.*", "").trim();
                if (line.isEmpty()) {
                    continue;
                }
                String[] f = line.split("\\s+");
                if (f.length < 2 || f.length > 3 || (f.length == 3 && !f[2].equals("causal"))) {
                    throw new IllegalArgumentException("--cases line '" + raw + "' is not SHAPE PRECISION [causal]");
                }
                out.add(BenchCase.parse(f[0], f.length == 3, Precision.parse(f[1]), grid.layout));
            }
            return out;
        }
        return grid.cases(precisions);
    }

    private int dryRun(PrintWriter out, List<BenchCase> cases) {
        Arch target = arch != null ? Arch.parse(arch) : null;
        SageAttention sage = null;
        try {
            if (target == null) {
                sage = SageInternals.open(main.knobs());
                target = SageInternals.arch(sage);
            }
            for (BenchCase c : cases) {
                var s = new KernelSpec(Direction.FWD, target, c.precision(), c.headDim(), c.causal(), false);
                out.printf(Locale.ROOT, "%s %s %s (%s): candidates%n", c.shape(), c.precision().id(),
                        c.mask(), s.key());
                for (TuneReport.Entry e : Tuner.candidates(s, c.nk())) {
                    out.printf(Locale.ROOT, "  %-16s %s%s%n", e.tiles().key(), e.isDefault() ? "(default) " : "",
                            e.failure().orElse("compile, check, time"));
                }
            }
        } finally {
            if (sage != null) {
                sage.close();
            }
        }
        out.flush();
        return 0;
    }

    private static void printReports(PrintWriter out, List<TuneReport> reports) {
        for (TuneReport r : reports) {
            var c = r.bench();
            out.printf(Locale.ROOT, "%n%s %s %s (%s, bucket %s)%s%n", c.shape(), c.precision().id(),
                    c.mask(), r.spec().key(), r.bucket(),
                    r.fromDatabase() ? ": from the tuning database (nothing compiled or measured; --force tunes again)" : "");
            if (r.fromDatabase()) {
                var rec = r.record().orElseThrow();
                out.printf(Locale.ROOT, "  %-16s %10.4f ms %8.1f TOPS%s%n", rec.tiles(), rec.medianMs(), rec.tops(),
                        rec.speedup().isPresent() ? String.format(Locale.ROOT, "  %.3fx the default", rec.speedup().getAsDouble()) : "");
            } else {
                double dflt = r.defaultEntry().map(TuneReport.Entry::score).orElse(Double.NaN);
                out.printf(Locale.ROOT, "  %-16s %10s %8s %9s  %s%n", "config", "median_ms", "TOPS", "vs default", "");
                for (TuneReport.Entry e : r.entries()) {
                    if (e.timing().isPresent()) {
                        out.printf(Locale.ROOT, "  %-16s %10.4f %8.1f %8.3fx  %s%n", e.tiles().key(), e.score(), r.tops(e),
                                dflt / e.score(), e.isDefault() ? "(default)" : "");
                    } else {
                        out.printf(Locale.ROOT, "  %-16s %10s %8s %9s  %s%s%n", e.tiles().key(), "-", "-", "-",
                                e.isDefault() ? "(default) " : "", e.failure().orElse(""));
                    }
                }
            }
            r.reproduce().ifPresent(cmd -> out.println("  reproduce: " + cmd));
        }
        out.flush();
    }

    /** The cases tuned in this call, the largest gains first: where tuning paid most. */
    private static void printSummary(PrintWriter out, List<TuneReport> reports) {
        if (reports.size() < 2) {
            return;
        }
        out.printf(Locale.ROOT, "%nsummary (largest gain over the default first)%n");
        reports.stream().filter(r -> r.winner().isPresent())
                .sorted(java.util.Comparator.comparingDouble((TuneReport r) -> -r.speedupOverDefault().orElse(1.0)))
                .forEach(r -> out.printf(Locale.ROOT, "  %-16s %-13s %-6s %-16s %s%n", r.bench().shape(),
                        r.bench().precision().id(), r.bench().mask(), r.winner().get().key(),
                        r.speedupOverDefault().isPresent()
                                ? String.format(Locale.ROOT, "%.3fx the default", r.speedupOverDefault().getAsDouble())
                                : "(default not measured)"));
        out.flush();
    }

    private void appendJson(TuneReport report, String run, String gpu, String sha) {
        if (json != null) {
            report.rows(run, gpu, sha).forEach(row -> JsonLines.append(json, row));
        }
    }

    private void writeCsv(List<TuneReport> reports, String run, String gpu, String sha) {
        var rows = reports.stream().flatMap(r -> r.rows(run, gpu, sha).stream()).toList();
        if (csv != null) {
            var keys = new java.util.LinkedHashSet<String>();
            rows.forEach(row -> keys.addAll(row.keySet()));
            var lines = new ArrayList<String>();
            lines.add(String.join(",", keys));
            for (var row : rows) {
                lines.add(keys.stream().map(k -> csvField(row.get(k))).reduce((a, b) -> a + "," + b).orElse(""));
            }
            try {
                Files.write(csv, lines);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot write --csv file " + csv, e);
            }
        }
    }

    private static String csvField(Object v) {
        if (v == null) {
            return "";
        }
        String s = v.toString();
        return s.contains(",") || s.contains("\"") ? "\"" + s.replace("\"", "\"\"") + "\"" : s;
    }
}
