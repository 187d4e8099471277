package dev.sagejit.bench;

import dev.sagejit.reference.AttentionProblem;
import dev.sagejit.reference.Metrics;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Accuracy lines of shared/RESULTS.md: one line per metric of an output's errors against FP64. */
public final class AccuracyLines {
    private AccuracyLines() {
    }

    /**
     * The lines of one measurement (cosine, rel_l1, rel_l2, rmse, max_abs of O against the FP64 CPU
     * reference); {@code extra} fields (e.g. ablation, rows_checked) go after the identifying ones.
     */
    public static List<Map<String, Object>> of(String run, String gpu, String commit, String impl, String mode,
            AttentionProblem p, String inputs, Metrics.Errors e, Map<String, Object> extra) {
        return of(run, gpu, commit, impl, mode, "fwd", "O", p, inputs, e, extra);
    }

    /** The lines of one tensor's errors ({@code O}, {@code LSE}, {@code dQ}, ...) of a forward or backward ({@code bwd}). */
    public static List<Map<String, Object>> of(String run, String gpu, String commit, String impl, String mode,
            String direction, String tensor, AttentionProblem p, String inputs, Metrics.Errors e,
            Map<String, Object> extra) {
        var metrics = new LinkedHashMap<String, Double>();
        metrics.put("cosine", e.cosine());
        metrics.put("rel_l1", e.relL1());
        metrics.put("rel_l2", e.relL2());
        metrics.put("rmse", e.rmse());
        metrics.put("max_abs", e.maxAbs());
        var lines = new ArrayList<Map<String, Object>>();
        for (var m : metrics.entrySet()) {
            var line = new LinkedHashMap<String, Object>();
            line.put("run", run);
            line.put("gpu", gpu);
            line.put("commit", commit);
            line.put("impl", impl);
            line.put("mode", mode);
            line.put("direction", direction);
            BenchCase.putProblem(line, p);
            line.put("metric", m.getKey());
            line.put("value", m.getValue());
            line.put("reference", "fp64-cpu");
            line.put("tensor", tensor);
            line.put("inputs", inputs);
            line.putAll(extra);
            lines.add(line);
        }
        return lines;
    }

    /**
     * The lines of one training step's errors: O (direction {@code fwd}), then dQ, dK and dV
     * (direction {@code bwd}).
     */
    public static List<Map<String, Object>> gradients(String run, String gpu, String commit, String impl, String mode,
            AttentionProblem p, String inputs, Metrics.Errors o, Metrics.Errors dq, Metrics.Errors dk,
            Metrics.Errors dv, Map<String, Object> extra) {
        var lines = new ArrayList<Map<String, Object>>(of(run, gpu, commit, impl, mode, p, inputs, o, extra));
        lines.addAll(of(run, gpu, commit, impl, mode, "bwd", "dQ", p, inputs, dq, extra));
        lines.addAll(of(run, gpu, commit, impl, mode, "bwd", "dK", p, inputs, dk, extra));
        lines.addAll(of(run, gpu, commit, impl, mode, "bwd", "dV", p, inputs, dv, extra));
        return lines;
    }
}
