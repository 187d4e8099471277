package dev.sagejit.bench;

import dev.sagejit.api.DType;
import dev.sagejit.api.Layout;
import dev.sagejit.reference.AttentionProblem;
import dev.sagejit.reference.CpuAttention;
import dev.sagejit.reference.HostTensor;
import dev.sagejit.reference.Inputs;
import dev.sagejit.reference.Metrics;
import dev.sagejit.reference.Nvfp4Reference;
import dev.sagejit.reference.Sage2Reference;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Consumer;

/**
 * The accuracy study of the quantized modes on the CPU (issue 4): O of each mode's bit-faithful
 * emulation against the FP64 reference, on BF16-rounded inputs of several distributions, with the
 * paper's NVFP4 ablations (two-level vs direct P, K smoothing, Q smoothing, NVFP4 vs MXFP4) next to
 * INT8/FP8 and the floor of any BF16 kernel (the exact result rounded to BF16). The emulations are
 * what the GPU kernels compute up to summation order (their GPU tests check it).
 */
public final class AccuracyStudy {
    /** One variant: a mode and, for NVFP4, the ablation applied to its default options. */
    public record Variant(String mode, String ablation) {
        public String label() {
            return ablation.isEmpty() ? mode : mode + ":" + ablation;
        }
    }

    /** Every variant of the study, in report order. */
    public static final List<Variant> VARIANTS = List.of(new Variant("bf16-output", ""), new Variant("int8-fp8", ""),
            new Variant("nvfp4", ""), new Variant("nvfp4", "direct-P"), new Variant("nvfp4", "no-smooth-K"),
            new Variant("nvfp4", "no-smooth-Q"), new Variant("nvfp4", "mxfp4"));

    /** One measurement. */
    public record Row(String family, AttentionProblem problem, Variant variant, Metrics.Errors o) {
    }

    private AccuracyStudy() {
    }

    /** Runs every variant on every (family, problem), reporting each row as soon as it is measured. */
    public static List<Row> run(List<String> families, List<AttentionProblem> problems, long seed,
            Consumer<Row> progress) {
        var rows = new ArrayList<Row>();
        for (AttentionProblem p : problems) {
            for (String family : families) {
                var raw = Inputs.generate(family, p, Layout.BHSD, seed);
                HostTensor q = raw.q().roundTo(DType.BF16), k = raw.k().roundTo(DType.BF16), v = raw.v().roundTo(DType.BF16);
                CpuAttention.Result ref = CpuAttention.forward(p, q, k, v);
                for (Variant variant : VARIANTS) {
                    var row = new Row(family, p, variant, Metrics.of(output(variant, p, q, k, v, ref), ref.o()));
                    rows.add(row);
                    progress.accept(row);
                }
            }
        }
        return rows;
    }

    private static float[] output(Variant variant, AttentionProblem p, HostTensor q, HostTensor k, HostTensor v,
            CpuAttention.Result ref) {
        return switch (variant.mode()) {
            case "bf16-output" -> {
                float[] o = new float[ref.o().length];
                for (int i = 0; i < o.length; i++) {
                    o[i] = (float) ref.o()[i];
                }
                yield new HostTensor(o, p.batch(), p.hq(), p.nq(), p.headDim(), Layout.BHSD).roundTo(DType.BF16).data();
            }
            case "int8-fp8" -> Sage2Reference.attention(Sage2Reference.quantize(q, k, v), Double.NaN, p.causal(), 128).o();
            case "nvfp4" -> Nvfp4Reference.attention(p, q, k, v, options(variant.ablation())).o();
            default -> throw new IllegalArgumentException("unknown study mode " + variant.mode());
        };
    }

    private static Nvfp4Reference.Options options(String ablation) {
        // The kernels' numerics (online softmax over 64-key blocks), so the study is what they compute.
        var d = dev.sagejit.kernel.Nvfp4FwdPlan.OPTIONS;
        return switch (ablation) {
            case "" -> d;
            case "direct-P" -> d.withTwoLevelP(false);
            case "no-smooth-K" -> d.withSmoothK(false);
            case "no-smooth-Q" -> d.withSmoothQ(false);
            case "mxfp4" -> d.withFormat(Nvfp4Reference.Format.MXFP4);
            default -> throw new IllegalArgumentException("unknown NVFP4 ablation " + ablation);
        };
    }

    /**
     * The paper's directions on one (family, problem): whether two-level P beats direct P, K smoothing
     * beats none, Q smoothing beats none and NVFP4 beats MXFP4, by relative L1 error (empty when a
     * variant is missing).
     */
    public static Map<String, Optional<Boolean>> directions(List<Row> rows, String family, AttentionProblem p) {
        var byLabel = new LinkedHashMap<String, Metrics.Errors>();
        rows.stream().filter(r -> r.family().equals(family) && r.problem().equals(p))
                .forEach(r -> byLabel.put(r.variant().label(), r.o()));
        var out = new LinkedHashMap<String, Optional<Boolean>>();
        out.put("two-level P beats direct P", better(byLabel, "nvfp4", "nvfp4:direct-P"));
        out.put("K smoothing helps", better(byLabel, "nvfp4", "nvfp4:no-smooth-K"));
        out.put("Q smoothing helps", better(byLabel, "nvfp4", "nvfp4:no-smooth-Q"));
        out.put("NVFP4 beats MXFP4", better(byLabel, "nvfp4", "nvfp4:mxfp4"));
        return out;
    }

    private static Optional<Boolean> better(Map<String, Metrics.Errors> m, String a, String b) {
        return m.containsKey(a) && m.containsKey(b) ? Optional.of(m.get(a).relL1() < m.get(b).relL1())
                : Optional.empty();
    }

    /** Accuracy lines of a row in the format of shared/RESULTS.md (one per metric). */
    public static List<Map<String, Object>> resultLines(Row r, String run, String commit) {
        Map<String, Object> extra = r.variant().ablation().isEmpty() ? Map.of() : Map.of("ablation", r.variant().ablation());
        return AccuracyLines.of(run, "none (CPU emulation)", commit, "sagejit-emulation", r.variant().mode(), r.problem(),
                r.family(), r.o(), extra);
    }
}
