package dev.sagejit.cli;

import dev.sagejit.api.Precision;
import dev.sagejit.api.SageAttention;
import dev.sagejit.bench.BenchCase;
import dev.sagejit.bench.FwdBenchmark;
import dev.sagejit.bench.TimingProtocol;
import dev.sagejit.kernel.SageInternals;
import dev.sagejit.spec.Direction;
import dev.sagejit.spec.KernelSpec;
import dev.sagejit.spec.TileConfig;
import dev.sagejit.spec.TileTable;
import dev.sagejit.util.JsonLines;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** Times the forward kernel over shapes, masks, precisions and tile configs; appends JSON Lines. */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Benchmark the forward kernel and append one JSON line per case to --out.")
final class BenchCommand implements Callable<Integer> {
    @ParentCommand
    Main main;

    @Spec
    CommandSpec spec;

    @Mixin
    CaseGrid grid;

    @Mixin
    RunStamp stamp;

    @Option(names = "--precision", split = ",", defaultValue = "bf16,fp16",
            converter = Converters.PrecisionConverter.class, description = "Comma list of precisions (sagebwd:"
            + " the 8-bit training mode, timed as training forward, backward and step) (default ${DEFAULT-VALUE}).")
    List<Precision> precisions;

    @Option(names = "--tiles", defaultValue = "default",
            description = "Comma list of default, all (every TileTable candidate) and keys such as m128n64w4s2;"
                    + " a key a case cannot run is left out of that case (default ${DEFAULT-VALUE}).")
    String tiles;

    @Option(names = "--out", defaultValue = "results.jsonl", description = "JSON Lines file to append to.")
    Path outFile;

    @Option(names = "--min-ms", defaultValue = "300", description = "Timed milliseconds per case (default ${DEFAULT-VALUE}).")
    double minMs;

    @Option(names = "--warmup", defaultValue = "10", description = "Untimed launches per case.")
    int warmup;

    @Option(names = "--warmup-ms", defaultValue = "" + FwdBenchmark.DEFAULT_WARMUP_MS, description = "Then untimed launches for this many"
            + " milliseconds per case, so each case is timed at the GPU's steady clock (it dips for a few hundred"
            + " ms after idle) (default ${DEFAULT-VALUE}; the peers get the same).")
    double warmupMs;

    @Option(names = "--cooldown-ms", defaultValue = "0", description = "Idle milliseconds before each case, so"
            + " every case starts from a rested GPU: under sustained load the H200 reaches its power cap and"
            + " lowers its clock, more for some kernels than others (default ${DEFAULT-VALUE}; the peers get the"
            + " same).")
    double cooldownMs;

    @Option(names = "--gap-us", defaultValue = "0", description = "Idle microseconds before each timed launch"
            + " (default ${DEFAULT-VALUE}: back to back, as peers.py times the peers by default; "
            + TimingProtocol.PEER_SLEEP_GAP_US + " matches peers.py --sleep-every 1). Under the H200's power cap the"
            + " clock rises in such gaps' favour.")
    double gapUs;

    @Option(names = "--do-bench", description = "Time as triton.testing.do_bench does: a 256 MiB memset before"
            + " each timed launch (peers.py --do-bench times the peers with do_bench itself); give --warmup-ms 25"
            + " --min-ms 100 for its default warm-up and repetition.")
    boolean doBench;

    @Option(names = "--peers", defaultValue = "auto", description = "PyTorch SDPA flash and cuDNN on the same shapes,"
            + " in the same run (BF16): auto (when python3 with CUDA PyTorch is present), on, off (default ${DEFAULT-VALUE}).")
    String peers;

    @Option(names = "--python", defaultValue = "python3", description = "Python for the peers and plots (default ${DEFAULT-VALUE}).")
    String python;

    @Option(names = "--plot", description = "Also write a PNG plot of --out's timings here (needs matplotlib).")
    Path plot;

    @Option(names = "--direction", defaultValue = "fwd", description = "fwd, bwd (the backward of bf16, fp16 and"
            + " sagebwd cases, FLOPs 2.5x the forward's) or both (also the forward+backward step, 3.5x) (default"
            + " ${DEFAULT-VALUE}).")
    String direction;

    /** One row of the final table: a measurement or the error that replaced it. */
    private record Row(BenchCase bench, String config, FwdBenchmark.Scope scope, FwdBenchmark.Measurement m,
            String error) {
    }

    @Override
    public Integer call() {
        var parsed = new ArrayList<String>();
        for (String t : tiles.split(",")) {
            String key = t.trim();
            parsed.add(key.equals("default") || key.equals("all") ? key
                    : Converters.guard(() -> TileConfig.parse(key).key()));
        }
        tiles = String.join(",", parsed);
        protocol(); // bad timing flags fail before the GPU is opened
        List<BenchCase> cases = grid.cases(precisions);
        String runId = stamp.run();
        String sha = stamp.commit();
        PrintWriter err = spec.commandLine().getErr();
        var rows = new ArrayList<Row>();
        try (SageAttention sage = SageInternals.open(main.knobs())) {
            String gpu = sage.device().name();
            record Work(BenchCase bench, String tiles, FwdBenchmark.Scope scope) {
            }
            var work = new ArrayList<Work>();
            if (!List.of("fwd", "bwd", "both").contains(direction)) {
                throw new IllegalArgumentException("--direction must be fwd, bwd or both, got '" + direction + "'");
            }
            for (BenchCase c : cases) {
                boolean sageBwd = c.precision().sageBwd();
                if (!direction.equals("bwd")) {
                    if (sageBwd) {
                        work.add(new Work(c, "default", FwdBenchmark.Scope.TRAINING_FORWARD));
                    } else {
                        for (String t : configs(sage, c)) {
                            FwdBenchmark.Scope.forPrecision(c.precision()).forEach(sc -> work.add(new Work(c, t, sc)));
                        }
                    }
                }
                if (!direction.equals("fwd") && c.precision().trainable()) {
                    work.add(new Work(c, "default", FwdBenchmark.Scope.BACKWARD));
                }
                if (direction.equals("both") && c.precision().trainable()) {
                    work.add(new Work(c, "default", FwdBenchmark.Scope.TRAINING_STEP));
                }
                if (sageBwd && direction.equals("fwd")) {
                    err.println(c.precision().id() + " is a training mode: its forward is timed as the training"
                            + " forward (quantizers included); --direction both adds the backward and the step");
                }
            }
            for (int i = 0; i < work.size(); i++) {
                Work w = work.get(i);
                BenchCase c = w.bench();
                String label = String.format(Locale.ROOT, "[%d/%d] %s %s %s %s %s", i + 1, work.size(), c.shape(),
                        c.mask(), c.precision().id(), w.tiles(), label(w.scope()));
                err.print(label + " ... ");
                err.flush();
                rows.add(measure(sage, c, w.tiles(), w.scope(), runId, gpu, sha, err));
            }
        }
        printTable(spec.commandLine().getOut(), rows);
        long ok = rows.stream().filter(r -> r.error() == null).count();
        boolean peersOk = runPeersAndPlot(runId, sha, err);
        return (ok > 0 || rows.isEmpty()) && peersOk ? 0 : 1;
    }

    /** The PyTorch peers (per --peers) and the plot (per --plot); false when a required one failed. */
    private boolean runPeersAndPlot(String runId, String sha, PrintWriter err) {
        if (!List.of("auto", "on", "off").contains(peers)) {
            throw new IllegalArgumentException("--peers must be auto, on or off, got '" + peers + "'");
        }
        if (peers.equals("off") && plot == null) {
            return true;
        }
        var tools = dev.sagejit.bench.PythonTools.unpack(python);
        boolean ok = true;
        if (!peers.equals("off")) {
            var why = tools.whyNoPeers();
            if (why.isPresent()) {
                err.println("peers " + (peers.equals("on") ? "FAILED" : "skipped") + ": " + why.get()
                        + (peers.equals("on") ? "" : " (--peers on makes this an error)"));
                ok = !peers.equals("on");
            } else {
                err.println("peers: PyTorch SDPA flash and cuDNN on the same shapes ...");
                var args = new ArrayList<>(List.of("--out", outFile.toString(), "--run", runId, "--commit", sha,
                        "--shapes", String.join(",", grid.shapes), "--causal", grid.causal, "--dtype", "bf16", "--backends",
                        "flash,cudnn", "--warmup-time", Double.toString(warmupMs / 1e3), "--cooldown-time",
                        Double.toString(cooldownMs / 1e3), "--sleep-every", gapUs > 0 ? "1" : "0"));
                if (doBench) {
                    args.add("--do-bench");
                }
                if (!direction.equals("fwd")) {
                    args.add("--backward"); // PyTorch's bwd and fwd+bwd beside sagejit's backward
                }
                if (direction.equals("bwd")) {
                    args.add("--no-forward");
                }
                var r = tools.script("peers.py", args, 1800);
                err.print(r.output());
                ok = r.code() == 0;
            }
        }
        if (plot != null) {
            var r = tools.script("plot.py", List.of(outFile.toString(), "--out", plot.toString()), 300);
            err.print(r.output());
            if (r.code() != 0) {
                err.println("plot FAILED (exit " + r.code() + "); matplotlib is needed");
                ok = false;
            }
        }
        err.flush();
        return ok;
    }

    /** The timing protocol of every case (the peers get the same through peers.py's flags). */
    private TimingProtocol protocol() {
        return new TimingProtocol(warmupMs, cooldownMs, gapUs, doBench ? TimingProtocol.DO_BENCH_FLUSH_BYTES : 0);
    }

    private Row measure(SageAttention sage, BenchCase c, String t, FwdBenchmark.Scope scope, String runId,
            String gpu, String sha, PrintWriter err) {
        try {
            var m = new FwdBenchmark(sage, protocol()).measure(c, t, scope, warmup, minMs);
            JsonLines.append(outFile, FwdBenchmark.toResultLine(m, runId, gpu, sha));
            err.printf(Locale.ROOT, "%.1f TOPS%n", m.tops());
            return new Row(c, m.config(), scope, m, null);
        } catch (RuntimeException e) {
            String why = e.getClass().getSimpleName() + ": " + e.getMessage();
            err.println("FAILED (skipped): " + why);
            var line = errorLine(c, t, runId, gpu, sha, why);
            line.put("scope", scope.id());
            JsonLines.append(outFile, line);
            return new Row(c, t, scope, null, why);
        } finally {
            err.flush();
        }
    }

    private List<String> configs(SageAttention sage, BenchCase c) {
        return configs(tiles, spec(sage, c), c.nk());
    }

    /**
     * Tile keys to time for one case ({@code spec} on {@code keys} key tokens), in --tiles order
     * without repeats: the default, the candidates, and the named keys its kernel can run (a single
     * named key is kept even if it cannot, so its run fails with the reason).
     */
    static List<String> configs(String tiles, KernelSpec spec, int keys) {
        var out = new java.util.LinkedHashSet<String>();
        String[] items = tiles.split(",");
        for (String t : items) {
            if (t.equals("default")) {
                out.add(TileTable.choose(spec, keys).tiles().key());
            } else if (t.equals("all")) {
                TileTable.candidates(spec).forEach(x -> out.add(x.key()));
            } else if (items.length == 1 || TileTable.whyInvalid(spec, TileConfig.parse(t)).isEmpty()) {
                out.add(t);
            }
        }
        return List.copyOf(out);
    }

    private static KernelSpec spec(SageAttention sage, BenchCase c) {
        return new KernelSpec(Direction.FWD, SageInternals.arch(sage), c.precision(), c.headDim(), c.causal(), false);
    }

    private static Map<String, Object> errorLine(BenchCase c, String config, String runId, String gpu, String sha,
            String error) {
        var line = c.resultKeys(runId, gpu, sha, config);
        line.put("error", error);
        return line;
    }

    /** A scope as the table shows it: the backward is "bwd" (its results lines say direction bwd). */
    private static String label(FwdBenchmark.Scope scope) {
        return switch (scope) {
            case BACKWARD -> "bwd";
            case TRAINING_STEP -> "fwd+bwd";
            case TRAINING_FORWARD -> "train-fwd";
            default -> scope.id();
        };
    }

    private static void printTable(PrintWriter out, List<Row> rows) {
        out.printf(Locale.ROOT, "%-22s %-6s %-13s %-15s %-10s %10s %8s %5s %6s%n", "shape", "mask", "prec", "config",
                "scope", "median_ms", "TOPS", "regs", "spill");
        for (Row r : rows) {
            String head = String.format(Locale.ROOT, "%-22s %-6s %-13s %-15s %-10s", r.bench().shape(),
                    r.bench().mask(), r.bench().precision().id(), r.config(), label(r.scope()));
            if (r.m() == null) {
                out.println(head + " error: " + r.error());
            } else {
                out.printf(Locale.ROOT, "%s %10.4f %8.1f %5d %6d%n", head, r.m().timing().medianMs(), r.m().tops(),
                        r.m().registers(), r.m().spillBytes());
            }
        }
        out.flush();
    }
}
