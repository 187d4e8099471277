package dev.sagejit.bench;

import dev.sagejit.api.Layout;
import dev.sagejit.api.Precision;

/**
 * One benchmark problem. Parses the compact form {@code B x Hq [x Hkv] x N [x Nk] x D}, e.g.
 * {@code 4x32x4096x128} or {@code 4x32x8x4096x4096x128}.
 */
public record BenchCase(int batch, int heads, int kvHeads, int nq, int nk, int headDim, boolean causal,
        Precision precision, Layout layout) {

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
        line.put("B", batch);
        line.put("H", heads);
        line.put("Hkv", kvHeads);
        line.put("Nq", nq);
        line.put("Nk", nk);
        line.put("D", headDim);
        line.put("causal", causal);
        line.put("layout", layout.name());
        line.put("config", config);
        return line;
    }

    public String shape() {
        return batch + "x" + heads + (kvHeads != heads ? "x" + kvHeads : "") + "x" + nq + (nk != nq ? "x" + nk : "")
                + "x" + headDim;
    }

    public static BenchCase parse(String text, boolean causal, Precision precision, Layout layout) {
        String[] p = text.trim().toLowerCase(java.util.Locale.ROOT).split("x");
        int[] v = java.util.Arrays.stream(p).mapToInt(Integer::parseInt).toArray();
        return switch (v.length) {
            case 4 -> new BenchCase(v[0], v[1], v[1], v[2], v[2], v[3], causal, precision, layout);
            case 6 -> new BenchCase(v[0], v[1], v[2], v[3], v[4], v[5], causal, precision, layout);
            default -> throw new IllegalArgumentException("shape '" + text + "' is not BxHxNxD or BxHqxHkvxNqxNkxD");
        };
    }
}
