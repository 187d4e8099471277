package dev.sagejit.cli;

import dev.sagejit.bench.AccuracyStudy;
import dev.sagejit.bench.BackwardAccuracyStudy;
import dev.sagejit.reference.AttentionProblem;
import dev.sagejit.util.JsonLines;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code sagejit accuracy}: the CPU accuracy study of the quantized modes (no GPU): each mode's
 * emulation against FP64 per input family, with the NVFP4 ablations and the paper's directions; with
 * {@code --backward}, SageBwd's 8-bit training path against FP64 gradients (exit 1 when a barred case
 * misses issue 5's bar).
 */
@Command(name = "accuracy", mixinStandardHelpOptions = true,
        description = "Accuracy of BF16, INT8/FP8 and NVFP4 (with its ablations) against FP64, on the CPU.")
final class AccuracyCommand implements Callable<Integer> {
    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = "--shapes", split = ",", defaultValue = "1x2x1024x128",
            description = "BxHxNxD or BxHqxHkvxNqxNkxD, comma-separated (default ${DEFAULT-VALUE}).")
    List<String> shapes;

    @Option(names = "--inputs", split = ",", defaultValue = "gaussian,k-channel-offset,heavy-tail,peaky",
            description = "Input families (default ${DEFAULT-VALUE}).")
    List<String> families;

    @Option(names = "--causal", defaultValue = "both", description = "0, 1 or both (default ${DEFAULT-VALUE}).")
    String causal;

    @Option(names = "--seed", defaultValue = "2024", description = "Seed of the inputs (default ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--out", description = "Append the accuracy lines (RESULTS.md format) to this JSONL file.")
    Path out;

    @Mixin
    RunStamp stamp;

    @Option(names = "--backward", description = "SageBwd's 8-bit training path instead: O, dQ, dK, dV against FP64"
            + " gradients (dO Gaussian), with dO V^T in INT8 and without K smoothing as ablations.")
    boolean backward;

    @Override
    public Integer call() {
        var problems = new ArrayList<AttentionProblem>();
        for (String s : shapes) {
            for (boolean c : Converters.causalMasks(causal)) {
                problems.add(AttentionProblem.parse(s, c, Double.NaN));
            }
        }
        PrintWriter o = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        String run = stamp.run();
        String sha = stamp.commit();
        if (backward) {
            return backward(problems, o, run, sha);
        }
        o.printf(Locale.ROOT, "%-17s %-34s %-18s %9s %8s %9s%n", "inputs", "problem", "variant", "cosine", "rel_l1", "rmse");
        var rows = AccuracyStudy.run(families, problems, seed, r -> {
            o.printf(Locale.ROOT, "%-17s %-34s %-18s %9.5f %8.4f %9.2e%n", r.family(), r.problem(), r.variant().label(),
                    r.o().cosine(), r.o().relL1(), r.o().rmse());
            o.flush();
            if (out != null) {
                AccuracyStudy.resultLines(r, run, sha).forEach(line -> JsonLines.append(out, line));
            }
        });
        o.println();
        o.println("paper directions (relative L1 of O):");
        for (var p : problems) {
            for (String f : families) {
                var d = AccuracyStudy.directions(rows, f, p);
                var parts = new ArrayList<String>();
                d.forEach((what, holds) -> holds.ifPresent(h -> parts.add(what + ": " + (h ? "yes" : "NO"))));
                o.printf(Locale.ROOT, "  %-17s %-34s %s%n", f, p, String.join(", ", parts));
            }
        }
        o.flush();
        err.flush();
        return 0;
    }

    private int backward(List<AttentionProblem> problems, PrintWriter o, String run, String sha) {
        o.printf(Locale.ROOT, "%-17s %-34s %-25s %17s %17s %17s %17s  %s%n", "inputs", "problem", "variant",
                "O cos / relL1", "dQ cos / relL1", "dK cos / relL1", "dV cos / relL1", "bar (0.998 / 0.06)");
        var rows = BackwardAccuracyStudy.run(families, problems, seed, r -> {
            o.printf(Locale.ROOT, "%-17s %-34s %-25s %s %s %s %s  %s%n", r.family(), r.problem(), r.variant().label(),
                    pair(r.o()), pair(r.dq()), pair(r.dk()), pair(r.dv()),
                    r.passes().map(ok -> ok ? "PASS" : "FAIL").orElse("(no bar)"));
            o.flush();
            if (out != null) {
                BackwardAccuracyStudy.resultLines(r, run, sha).forEach(line -> JsonLines.append(out, line));
            }
        });
        // The paper's choice must meet the bars; the ablations are reported.
        boolean ok = rows.stream().filter(r -> r.variant().ablation().isEmpty())
                .allMatch(r -> r.passes().orElse(true));
        return ok ? 0 : 1;
    }

    private static String pair(dev.sagejit.reference.Metrics.Errors e) {
        return String.format(Locale.ROOT, "%8.5f / %6.4f", e.cosine(), e.relL1());
    }
}
