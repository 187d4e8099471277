package dev.sagejit.bench;

import dev.sagejit.api.SageAttention;
import dev.sagejit.spec.Direction;
import dev.sagejit.spec.KernelSpec;
import dev.sagejit.spec.TileConfig;
import dev.sagejit.spec.TileTable;
import dev.sagejit.util.JsonLines;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Runs a list of benchmark cases, each with its default tiles or with every candidate tile config,
 * appending one JSON line per measurement (or per failure, with an {@code error} field) and printing
 * progress to stderr. A config that fails to compile or launch is recorded and skipped.
 */
public final class BenchSuite {
    /** Which tiles each case runs with. */
    public enum TileChoice { DEFAULT, ALL }

    /** Identifies the run in every line. */
    public record RunInfo(String run, String gpu, String commit) {
    }

    private final SageAttention sage;
    private final PrintStream progress;

    public BenchSuite(SageAttention sage, PrintStream progress) {
        this.sage = sage;
        this.progress = progress;
    }

    /** The tile configs a case runs with; null stands for the default choice. */
    public List<String> tilesFor(BenchCase c, TileChoice choice) {
        if (choice == TileChoice.DEFAULT) {
            return java.util.Collections.singletonList(null);
        }
        var spec = new KernelSpec(Direction.FWD, sage.arch(), c.precision(), c.headDim(), c.causal(), false);
        return TileTable.candidates(spec).stream().map(TileConfig::key).toList();
    }

    /** Measures every case, appending lines to {@code out}; returns the successful measurements. */
    public List<FwdBenchmark.Measurement> run(List<BenchCase> cases, TileChoice choice, RunInfo info, Path out,
            double minTotalMs) {
        var bench = new FwdBenchmark(sage);
        var done = new ArrayList<FwdBenchmark.Measurement>();
        var jobs = new ArrayList<Map.Entry<BenchCase, String>>();
        for (BenchCase c : cases) {
            for (String t : tilesFor(c, choice)) {
                jobs.add(new java.util.AbstractMap.SimpleEntry<>(c, t));
            }
        }
        int i = 0;
        for (var job : jobs) {
            i++;
            BenchCase c = job.getKey();
            String label = "[" + i + "/" + jobs.size() + "] " + c.shape() + (c.causal() ? " causal " : " ")
                    + c.precision().id() + " " + (job.getValue() == null ? "default" : job.getValue());
            try {
                var m = bench.measure(c, job.getValue(), 10, minTotalMs);
                done.add(m);
                JsonLines.append(out, FwdBenchmark.toResultLine(m, info.run(), info.gpu(), info.commit()));
                progress.printf("%s (%s) %.3f ms %.1f TFLOPS%n", label, m.config(), m.timing().medianMs(), m.tops());
            } catch (RuntimeException e) {
                progress.println(label + " FAILED: " + e.getMessage());
                JsonLines.append(out, errorLine(c, job.getValue(), info, e));
            }
        }
        return done;
    }

    private static Map<String, Object> errorLine(BenchCase c, String tiles, RunInfo info, RuntimeException e) {
        var line = new LinkedHashMap<String, Object>();
        line.put("run", info.run());
        line.put("gpu", info.gpu());
        line.put("commit", info.commit());
        line.put("impl", "sagejit");
        line.put("mode", c.precision().id());
        line.put("direction", "fwd");
        line.put("scope", "kernel");
        line.put("B", c.batch());
        line.put("H", c.heads());
        line.put("Hkv", c.kvHeads());
        line.put("Nq", c.nq());
        line.put("Nk", c.nk());
        line.put("D", c.headDim());
        line.put("causal", c.causal());
        line.put("layout", c.layout().name());
        line.put("config", tiles == null ? "default" : tiles);
        line.put("error", String.valueOf(e.getMessage()));
        return line;
    }

    /**
     * Script entry for GPU hosts without the CLI: {@code --out F --run ID --commit SHA --tiles
     * default|all --causal 0|1|both --precision bf16,fp16 --min-ms MS SHAPE...}.
     */
    public static void main(String[] args) {
        Path out = Path.of("results.jsonl");
        String run = java.time.Instant.now().toString(), commit = "unknown", causal = "both", precisions = "bf16";
        TileChoice choice = TileChoice.DEFAULT;
        double minMs = 300;
        var shapes = new ArrayList<String>();
        for (int a = 0; a < args.length; a++) {
            switch (args[a]) {
                case "--out" -> out = Path.of(args[++a]);
                case "--run" -> run = args[++a];
                case "--commit" -> commit = args[++a];
                case "--tiles" -> choice = TileChoice.valueOf(args[++a].toUpperCase(java.util.Locale.ROOT));
                case "--causal" -> causal = args[++a];
                case "--precision" -> precisions = args[++a];
                case "--min-ms" -> minMs = Double.parseDouble(args[++a]);
                default -> shapes.add(args[a]);
            }
        }
        var cases = new ArrayList<BenchCase>();
        for (String s : shapes) {
            for (String p : precisions.split(",")) {
                for (boolean c : causal.equals("both") ? new boolean[] {false, true}
                        : new boolean[] {causal.equals("1")}) {
                    cases.add(BenchCase.parse(s, c, dev.sagejit.api.Precision.parse(p), dev.sagejit.api.Layout.BHSD));
                }
            }
        }
        try (var sage = SageAttention.open()) {
            var info = new RunInfo(run, sage.device().name(), commit);
            new BenchSuite(sage, System.err).run(cases, choice, info, out, minMs);
        }
    }
}
