package dev.sagejit.cli;

import dev.sagejit.api.AttentionOptions;
import dev.sagejit.api.HostQkv;
import dev.sagejit.api.HostResult;
import dev.sagejit.api.Layout;
import dev.sagejit.api.Precision;
import dev.sagejit.api.SageAttention;
import dev.sagejit.bench.Accuracy;
import dev.sagejit.bench.AccuracyLines;
import dev.sagejit.bench.BenchCase;
import dev.sagejit.bench.FwdBenchmark;
import dev.sagejit.bench.GradientCheck;
import dev.sagejit.interop.Npy;
import dev.sagejit.kernel.SageInternals;
import dev.sagejit.reference.AttentionProblem;
import dev.sagejit.reference.HostTensor;
import dev.sagejit.reference.Metrics;
import dev.sagejit.util.JsonLines;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * One forward call on the GPU, checked against the FP64 CPU reference; with {@code --backward}, one
 * 16-bit training step (forward and backward) checked against FP64 gradients.
 */
@Command(name = "run", mixinStandardHelpOptions = true,
        description = {"Run one forward attention call on the GPU and check it against the FP64 CPU reference.",
                "With --backward: the forward and the 16-bit backward, O, dQ, dK and dV against FP64 gradients."})
final class RunCommand implements Callable<Integer> {
    @ParentCommand
    Main main;

    @Spec
    CommandSpec spec;

    @ArgGroup(exclusive = true, multiplicity = "1")
    Source source;

    static final class Source {
        @Option(names = "--shape", required = true, description = "BxHxNxD or BxHqxHkvxNqxNkxD, random inputs.")
        String shape;

        @ArgGroup(exclusive = false)
        Files files;
    }

    static final class Files {
        @Option(names = "--q", required = true, description = "Q as .npy (float32/float16, 4-d).")
        Path q;

        @Option(names = "--k", required = true, description = "K as .npy.")
        Path k;

        @Option(names = "--v", required = true, description = "V as .npy.")
        Path v;

        @Option(names = "--do", description = "With --backward: the upstream gradient dO as .npy, shaped like Q"
                + " (needed with --q/--k/--v; --shape draws a Gaussian one).")
        Path dO;
    }

    @Option(names = "--inputs", defaultValue = "gaussian",
            description = "gaussian, k-channel-offset, heavy-tail or peaky (default ${DEFAULT-VALUE}).")
    String family;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of the random inputs.")
    long seed;

    @Option(names = "--layout", defaultValue = "bhsd", description = "bhsd or bshd (default ${DEFAULT-VALUE}).")
    Layout layout;

    @Option(names = "--precision", defaultValue = "bf16", converter = Converters.PrecisionConverter.class,
            description = "bf16, fp16, int8-fp8, int8-fp8-fp16, nvfp4, nvfp4-emulated or auto; with --backward bf16,"
                    + " fp16, sagebwd or sagebwd-fp16 (default ${DEFAULT-VALUE}).")
    Precision precision;

    @Option(names = "--causal", description = "Bottom-right aligned causal mask.")
    boolean causal;

    @Option(names = "--scale", description = "Softmax scale (default 1/sqrt(D)).")
    Double scale;

    @Option(names = "--lse", description = "Also compute and check the log-sum-exp.")
    boolean lse;

    @Option(names = "--tiles", converter = Converters.TilesConverter.class, description = "Force a tile config.")
    String tiles;

    @Option(names = "--check-rows", description = "Query rows the reference checks; 0 = all"
            + " (default: all rows of small problems, a sample of large ones).")
    Integer checkRows;

    @Option(names = "--tolerance", description = "Largest passing rel L2 error (default 1e-2 bf16, 3e-3 fp16;"
            + " with --backward, of dQ, dK and dV: 3e-2 bf16, 6e-3 fp16).")
    Double tolerance;

    @Option(names = "--time", description = "Also time repeated launches with CUDA events.")
    boolean time;

    @Option(names = "--timeline", description = "int8-fp8 wgmma kernels: build them with a phase timeline and write"
            + " its rows here as JSON Lines (clock64 at each step of the first --timeline-blocks key blocks of every"
            + " block's first tile, with the SM id), then print the median cycles per step.")
    Path timeline;

    @Option(names = "--timeline-blocks", defaultValue = "24",
            description = "Key blocks the timeline covers (default ${DEFAULT-VALUE}).")
    int timelineBlocks;

    @Option(names = "--min-ms", defaultValue = "300", description = "Total timed ms with --time (default ${DEFAULT-VALUE}).")
    double minMs;

    @Option(names = "--results", description = "Append the O errors (with --backward also dQ, dK, dV) as accuracy"
            + " lines (RESULTS.md format) to this JSONL file.")
    java.nio.file.Path results;

    @Mixin
    RunStamp stamp;

    @Option(names = "--label", description = "Input family name for the --results lines (default: --inputs).")
    String label;

    @Option(names = "--out-o", description = "Write O here as float32 .npy (input layout).")
    Path outO;

    @Option(names = "--out-lse", description = "Write the LSE here as float32 .npy [B, Hq, Nq].")
    Path outLse;

    @Option(names = "--backward", description = "Also run the 16-bit backward (bf16 or fp16) on dO (--do, or"
            + " Gaussian with --shape) and check O, dQ, dK and dV against FP64 gradients of every row.")
    boolean backward;

    private SageAttention openedSage;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        Path doFile = source.files != null ? source.files.dO : null;
        if (backward) {
            requireBackwardOptions(doFile);
        } else if (doFile != null) {
            throw new IllegalArgumentException("--do is the upstream gradient of --backward: add --backward or drop --do");
        }
        double s = scale == null ? Double.NaN : scale;
        RunInputs in = source.shape != null
                ? RunInputs.generate(source.shape, family, seed, layout, causal, s)
                : RunInputs.read(source.files.q, source.files.k, source.files.v, layout, causal, s);
        HostTensor dO = null;
        if (backward) { // everything a training step needs is checked before the GPU is opened
            GradientCheck.requireAffordable(in.problem());
            dO = in.gradient(doFile, seed);
        }
        try (SageAttention sage = SageInternals.open(main.knobs())) {
            openedSage = sage;
            String arch = SageInternals.arch(sage).name();
            if (precision == Precision.AUTO) {
                precision = sage.resolve(Precision.AUTO, Precision.AUTO.inputType());
                out.println("precision auto: " + precision.id() + " on " + arch);
            }
            var options = options();
            AttentionProblem p = in.problem();
            out.printf(Locale.ROOT, "%s on %s (%s), %s %s%s%n", p, sage.device().name(), arch,
                    precision.id(), layout, causal ? " causal" : "");
            if (backward) {
                return backward(out, in, dO);
            }
            var qkv = new HostQkv(layout, p.batch(), p.hq(), p.hkv(), p.nq(), p.nk(), p.headDim(), in.q().data(),
                    in.k().data(), in.v().data());
            if (timeline != null) {
                SageInternals.launcher(sage).recordTimeline(timelineBlocks);
            }
            sage.forward(options, qkv); // first call compiles or loads the kernel
            long start = System.nanoTime();
            HostResult result = sage.forward(options, qkv);
            double callMs = (System.nanoTime() - start) / 1e6;
            out.printf(Locale.ROOT, "call: %.3f ms (host copies included)%n", callMs);
            if (timeline != null) {
                TimelineReport.write(out, SageInternals.launcher(sage).timeline(), timeline);
            }
            if (time) {
                var c = new BenchCase(p.batch(), p.hq(), p.hkv(), p.nq(), p.nk(), p.headDim(), causal, precision, layout);
                var m = new FwdBenchmark(sage).measure(c, tiles, 5, minMs);
                out.printf(Locale.ROOT, "kernel: median %.4f ms (p20 %.4f, p80 %.4f, %d iters), %.1f TFLOPS, %s%n",
                        m.timing().medianMs(), m.timing().p20Ms(), m.timing().p80Ms(), m.timing().iters(), m.tops(),
                        m.config());
            }
            write(in, result.o(), result.lse());
            return check(out, in, result);
        }
    }

    private AttentionOptions options() {
        var b = AttentionOptions.builder().precision(precision).causal(causal).lse(lse).tiles(tiles);
        if (scale != null) {
            b.scale(scale);
        }
        return b.build();
    }

    private int check(PrintWriter out, RunInputs in, HostResult result) {
        AttentionProblem p = in.problem();
        var t = precision.inputType();
        HostTensor q = in.q().roundTo(t), k = in.k().roundTo(t), v = in.v().roundTo(t);
        var ref = Accuracy.reference(p, q, k, v, checkRows);
        var o = new HostTensor(result.o(), p.batch(), p.hq(), p.nq(), p.headDim(), in.layout());
        var e = Metrics.output(o, ref, p);
        String checked = ref.complete() ? "all rows" : ref.rows().length + " sampled rows";
        out.printf(Locale.ROOT, "O vs FP64 reference (%s): cosine %.8f  rel L1 %.3e  rel L2 %.3e  max abs %.3e"
                + "  RMSE %.3e%n", checked, e.cosine(), e.relL1(), e.relL2(), e.maxAbs(), e.rmse());
        if (lse) {
            out.println("LSE vs FP64 reference: " + Metrics.lse(result.lse(), ref, p).summary());
        }
        if (results != null) {
            appendResults(sage(), p, e, ref.complete() ? "all" : String.valueOf(ref.rows().length));
        }
        String fam = label != null ? label : family;
        if (precision.nvfp4() && tolerance == null) {
            var bar = Accuracy.nvfp4Bar(fam);
            if (bar.isEmpty()) {
                out.printf(Locale.ROOT, "REPORT: cosine %.5f, rel L1 %.4f (no NVFP4 bar for %s inputs)%n", e.cosine(),
                        e.relL1(), fam);
                return e.finite() ? 0 : 1;
            }
            boolean pass = e.finite() && bar.get().passes(e);
            out.printf(Locale.ROOT, "%s: cosine %.5f (bar >= %.3f), rel L1 %.4f (bar <= %.3f)%n", pass ? "PASS" : "FAIL",
                    e.cosine(), bar.get().minCosine(), e.relL1(), bar.get().maxRelL1());
            return pass ? 0 : 1;
        }
        if (precision.quantized() && tolerance == null) {
            var bar = Accuracy.quantizedBar(fam);
            boolean pass = e.finite() && bar.passes(e);
            out.printf(Locale.ROOT, "%s: cosine %.5f (bar >= %.3f), rel L1 %.4f (bar <= %.3f)%n", pass ? "PASS" : "FAIL",
                    e.cosine(), bar.minCosine(), e.relL1(), bar.maxRelL1());
            return pass ? 0 : 1;
        }
        double tol = tolerance != null ? tolerance : Accuracy.tolerance(precision);
        boolean pass = e.finite() && e.relL2() <= tol;
        out.printf(Locale.ROOT, "%s: rel L2 %.3e %s tolerance %.1e%n", pass ? "PASS" : "FAIL", e.relL2(),
                pass ? "<=" : "exceeds", tol);
        return pass ? 0 : 1;
    }

    /** --out-o (O in the input layout) and --out-lse. */
    private void write(RunInputs in, float[] o, float[] lse) {
        AttentionProblem p = in.problem();
        try {
            if (outO != null) {
                Npy.writeFloats(outO, layout.shape(p.batch(), p.hq(), p.nq(), p.headDim()), o);
            }
            if (outLse != null) {
                if (lse == null) {
                    throw new IllegalArgumentException("--out-lse needs --lse");
                }
                Npy.writeFloats(outLse, new long[] {p.batch(), p.hq(), p.nq()}, lse);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("could not write the output .npy: " + e.getMessage(), e);
        }
    }

    /** The options --backward cannot honour, refused before anything runs. */
    private void requireBackwardOptions(Path doFile) {
        if (precision == Precision.AUTO) {
            precision = Precision.sixteenBitFor(precision.inputType()); // 8-bit training is asked for by name
        }
        if (!precision.trainable()) {
            throw new IllegalArgumentException("--backward runs bf16, fp16, sagebwd or sagebwd-fp16, not "
                    + precision.id() + " (an inference-only mode)");
        }
        if (source.files != null && doFile == null) {
            throw new IllegalArgumentException("--backward with --q/--k/--v needs --do: the upstream gradient dO as"
                    + " .npy, shaped like Q (benchmarks/peers.py --grad-accuracy --save-inputs writes do.npy)");
        }
        if (checkRows != null) {
            throw new IllegalArgumentException("--check-rows does not apply to --backward: dK and dV sum over every"
                    + " query row, so the FP64 gradients are always complete; drop --check-rows");
        }
        if (time) {
            throw new IllegalArgumentException("--time times the forward only; time the backward with"
                    + " 'sagejit bench --direction bwd'");
        }
    }

    /** One training step on the GPU, O, dQ, dK, dV (and the LSE) against FP64; exit 0 when within tolerance. */
    private int backward(PrintWriter out, RunInputs in, HostTensor dO) {
        AttentionProblem p = in.problem();
        var t = precision.inputType();
        HostTensor q = in.q().roundTo(t), k = in.k().roundTo(t), v = in.v().roundTo(t), g = dO.roundTo(t);
        var gpu = GradientCheck.run(sage(), options(), p, q, k, v, g);
        var e = GradientCheck.compare(gpu, GradientCheck.reference(p, q, k, v, g));
        var layoutO = new HostTensor(gpu.o(), p.batch(), p.hq(), p.nq(), p.headDim(), Layout.BHSD).toLayout(layout);
        write(in, layoutO.data(), lse ? gpu.lse() : null);
        var named = new LinkedHashMap<String, Metrics.Errors>();
        named.put("O", e.o());
        named.put("dQ", e.dq());
        named.put("dK", e.dk());
        named.put("dV", e.dv());
        if (lse) {
            named.put("LSE", e.lse());
        }
        named.forEach((tensor, m) -> out.printf(Locale.ROOT, "%-3s vs FP64 reference (all rows): cosine %.8f  rel L1"
                + " %.3e  rel L2 %.3e  max abs %.3e  RMSE %.3e%n", tensor, m.cosine(), m.relL1(), m.relL2(), m.maxAbs(),
                m.rmse()));
        if (results != null) {
            AccuracyLines.gradients(stamp.run(), sage().device().name(), stamp.commit(), "sagejit", precision.id(), p,
                    resultsLabel(), e.o(), e.dq(), e.dk(), e.dv(), Map.of("rows_checked", "all"))
                    .forEach(line -> JsonLines.append(results, line));
        }
        if (precision.sageBwd() && tolerance == null) {
            String fam = resultsLabel();
            var bar = Accuracy.backwardBar(fam);
            if (bar.isEmpty()) {
                out.printf(Locale.ROOT, "REPORT: cosine of dQ %.5f, dK %.5f, dV %.5f (no gradient bar for %s inputs)%n",
                        e.dq().cosine(), e.dk().cosine(), e.dv().cosine(), fam);
                return e.o().finite() ? 0 : 1;
            }
            boolean pass = e.o().finite() && e.gradients().stream().allMatch(m -> m.finite() && bar.get().passes(m));
            out.printf(Locale.ROOT, "%s: cosine of dQ %.5f, dK %.5f, dV %.5f (bar >= %.3f); rel L1 %.4f, %.4f, %.4f"
                    + " (bar <= %.3f)%n", pass ? "PASS" : "FAIL", e.dq().cosine(), e.dk().cosine(), e.dv().cosine(),
                    bar.get().minCosine(), e.dq().relL1(), e.dk().relL1(), e.dv().relL1(), bar.get().maxRelL1());
            return pass ? 0 : 1;
        }
        double oTol = Accuracy.tolerance(precision);
        double gradTol = tolerance != null ? tolerance : Accuracy.backwardTolerance(precision);
        boolean pass = e.passes(oTol, gradTol);
        out.printf(Locale.ROOT, "%s: rel L2 of dQ %.3e, dK %.3e, dV %.3e (tolerance %.1e); O %.3e (tolerance %.1e)%n",
                pass ? "PASS" : "FAIL", e.dq().relL2(), e.dk().relL2(), e.dv().relL2(), gradTol, e.o().relL2(), oTol);
        return pass ? 0 : 1;
    }

    private SageAttention sage() {
        return openedSage;
    }

    /** The {@code inputs} field of the --results lines: --label, else the input family (or "npy-files"). */
    private String resultsLabel() {
        return label != null ? label : source.shape != null ? family : "npy-files";
    }

    private void appendResults(SageAttention sage, AttentionProblem p, Metrics.Errors e, String rows) {
        var lines = AccuracyLines.of(stamp.run(), sage.device().name(), stamp.commit(), "sagejit",
                precision.id(), p, resultsLabel(), e, Map.of("rows_checked", rows));
        lines.forEach(line -> JsonLines.append(results, line));
    }
}
