package dev.sagejit.bench;

import dev.sagejit.api.Layout;
import dev.sagejit.api.Precision;
import dev.sagejit.reference.AttentionProblem;

/**
 * One benchmark problem. Parses the compact form {@code B x Hq [x Hkv] x N [x Nk] x D}, e.g.
 * {@code 4x32x4096x128} or {@code 4x32x8x4096x4096x128}.
 */
public record BenchCase(int batch, int heads, int kvHeads, int nq, int nk, int headDim, boolean causal,
        Precision precision, Layout layout) {

    /** A case measures one concrete mode: {@link Precision#AUTO} picks one per GPU at run time. */
    public BenchCase {
        if (precision == Precision.AUTO) {
            throw new IllegalArgumentException("auto is resolved per GPU at run time; bench and tune a concrete"
                    + " precision (sagejit run --precision auto prints the one this GPU gets)");
        }
    }

    /** "causal" or "full", as tables print the mask. */
    public String mask() {
        return causal ? "causal" : "full";
    }

    /** FLOPs counted as 4 B H Nq Nk D, halved when causal (SPEC.md section 5). */
    public double flops() {
        double f = 4.0 * batch * heads * (double) nq * nk * headDim;
        return causal ? f / 2 : f;
    }

    /**
     * The identifying fields of a results line for this case (shared/RESULTS.md), in order; callers
     * add the measurement or an {@code error} field.
     */
    public java.util.LinkedHashMap<String, Object> resultKeys(String run, String gpu, String commit, String config) {
        var line = new java.util.LinkedHashMap<String, Object>();
        line.put("run", run);
        line.put("gpu", gpu);
        line.put("commit", commit);
        line.put("impl", "sagejit");
        line.put("mode", precision.id());
        line.put("direction", "fwd");
        line.put("scope", "kernel");
        putProblem(line, problem());
        line.put("layout", layout.name());
        line.put("config", config);
        return line;
    }

    /** The problem fields of a results line (shared/RESULTS.md): B, H, Hkv, Nq, Nk, D, causal. */
    public static void putProblem(java.util.Map<String, Object> line, AttentionProblem p) {
        line.put("B", p.batch());
        line.put("H", p.hq());
        line.put("Hkv", p.hkv());
        line.put("Nq", p.nq());
        line.put("Nk", p.nk());
        line.put("D", p.headDim());
        line.put("causal", p.causal());
    }

    public String shape() {
        return batch + "x" + heads + (kvHeads != heads ? "x" + kvHeads : "") + "x" + nq + (nk != nq ? "x" + nk : "")
                + "x" + headDim;
    }

    public static BenchCase parse(String text, boolean causal, Precision precision, Layout layout) {
        var p = AttentionProblem.parse(text, causal, Double.NaN);
        return new BenchCase(p.batch(), p.hq(), p.hkv(), p.nq(), p.nk(), p.headDim(), causal, precision, layout);
    }

    /** Every case of shapes x masks x precisions, in that nesting order. */
    public static java.util.List<BenchCase> grid(java.util.List<String> shapes, java.util.List<Boolean> masks,
            java.util.List<Precision> precisions, Layout layout) {
        var out = new java.util.ArrayList<BenchCase>();
        for (String s : shapes) {
            for (boolean c : masks) {
                for (Precision p : precisions) {
                    out.add(parse(s, c, p, layout));
                }
            }
        }
        return out;
    }

    /** The attention problem of this case (default scale). */
    public AttentionProblem problem() {
        return new AttentionProblem(batch, heads, kvHeads, nq, nk, headDim, causal);
    }
}
