package dev.sagejit.bench;

import dev.sagejit.api.Layout;
import dev.sagejit.reference.AttentionProblem;
import dev.sagejit.reference.CpuAttentionBackward;
import dev.sagejit.reference.HostTensor;
import dev.sagejit.reference.Inputs;
import dev.sagejit.reference.Metrics;
import dev.sagejit.reference.SageBwdReference;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * Accuracy of SageBwd's 8-bit training path (the CPU emulation, {@link SageBwdReference}) against
 * FP64 gradients: O, dQ, dK and dV per input family and problem, with the paper's ablations (dO V^T
 * in INT8, Table 1c; no K smoothing). dO is Gaussian; the bars of issue 5 apply to Gaussian and
 * channel-offset inputs (peaky inputs have nearly vanishing exact gradients and get none).
 */
public final class BackwardAccuracyStudy {
    /** One study variant: a name in results lines and the emulation's options. */
    public record Variant(String mode, String ablation, SageBwdReference.Options options) {
        public String label() {
            return ablation.isEmpty() ? mode : mode + ":" + ablation;
        }
    }

    /** The variants every (family, problem) runs, the paper's choice first. */
    public static final List<Variant> VARIANTS = List.of(
            new Variant("sagebwd-int8", "", SageBwdReference.Options.DEFAULT),
            new Variant("sagebwd-int8", "int8-dOV", SageBwdReference.Options.DEFAULT.withInt8DoV(true)),
            new Variant("sagebwd-int8", "no-smooth-K", SageBwdReference.Options.DEFAULT.withSmoothK(false)));

    /** Errors of one variant on one (family, problem) against FP64. */
    public record Row(String family, AttentionProblem problem, Variant variant, Metrics.Errors o, Metrics.Errors dq,
            Metrics.Errors dk, Metrics.Errors dv) {
        /** Whether dQ, dK and dV meet issue 5's bar, or empty where it sets none. */
        public Optional<Boolean> passes() {
            return Accuracy.backwardBar(family).map(b -> b.passes(dq) && b.passes(dk) && b.passes(dv));
        }
    }

    private BackwardAccuracyStudy() {
    }

    /** Runs every variant on every (family, problem); each row also goes to {@code sink} as it is done. */
    public static List<Row> run(List<String> families, List<AttentionProblem> problems, long seed, Consumer<Row> sink) {
        var rows = new ArrayList<Row>();
        for (var p : problems) {
            for (String family : families) {
                var in = Inputs.generate(family, p, Layout.BHSD, seed);
                HostTensor dO = Inputs.gradient(p, Layout.BHSD, seed + 1);
                var ref = CpuAttentionBackward.compute(p, in.q(), in.k(), in.v(), dO);
                for (Variant v : VARIANTS) {
                    var out = SageBwdReference.compute(p, in.q(), in.k(), in.v(), dO, v.options());
                    var row = new Row(family, p, v, Metrics.of(out.o(), ref.o()), Metrics.of(out.dq(), ref.dq()),
                            Metrics.of(out.dk(), ref.dk()), Metrics.of(out.dv(), ref.dv()));
                    rows.add(row);
                    sink.accept(row);
                }
            }
        }
        return rows;
    }

    /** RESULTS.md accuracy lines of a row: O (direction fwd) and dQ, dK, dV (direction bwd). */
    public static List<Map<String, Object>> resultLines(Row r, String run, String commit) {
        Map<String, Object> extra = r.variant().ablation().isEmpty() ? Map.of() : Map.of("ablation", r.variant().ablation());
        return AccuracyLines.gradients(run, "none (CPU emulation)", commit, "sagejit-emulation", r.variant().mode(),
                r.problem(), r.family(), r.o(), r.dq(), r.dk(), r.dv(), extra);
    }
}
