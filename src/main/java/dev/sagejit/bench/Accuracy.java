package dev.sagejit.bench;

import dev.sagejit.api.AttentionOptions;
import dev.sagejit.api.HostQkv;
import dev.sagejit.api.HostResult;
import dev.sagejit.api.Layout;
import dev.sagejit.api.SageAttention;
import dev.sagejit.reference.AttentionProblem;
import dev.sagejit.reference.CpuAttention;
import dev.sagejit.reference.HostTensor;
import dev.sagejit.reference.Inputs;
import dev.sagejit.reference.Metrics;

/**
 * Runs one attention call on the GPU and measures its error against the FP64 CPU reference computed
 * on the same (already 16-bit rounded) inputs.
 */
public final class Accuracy {
    /** FP64 work (multiply-adds) above which only sampled rows are checked. */
    static final double FULL_CHECK_MACS = 4e9;
    /** Rows checked when the full reference would cost too much. */
    static final int SAMPLED_ROWS = 128;

    /** The errors of O and LSE (LSE errors are null when no LSE was asked for), and what was compared. */
    public record Outcome(Metrics.Errors o, Metrics.Errors lse, HostResult result, Inputs.Qkv inputs,
            CpuAttention.Result reference) {
    }

    private Accuracy() {
    }

    /** Relative L2 error of O against FP64 that a correct kernel stays below (issue 2's bars). */
    public static double tolerance(dev.sagejit.api.Precision precision) {
        return precision == dev.sagejit.api.Precision.FP16 ? 3e-3 : 1e-2;
    }

    /**
     * Relative L2 error of dQ, dK and dV against FP64 that a correct 16-bit backward stays below: its
     * P, dS and outputs are 16-bit (BF16 keeps 8 significant bits, FP16 11).
     */
    public static double backwardTolerance(dev.sagejit.api.Precision precision) {
        return precision == dev.sagejit.api.Precision.FP16 ? 6e-3 : 3e-2;
    }

    /**
     * The FP64 reference sagejit's outputs are checked against: every row, or (above
     * {@link #FULL_CHECK_MACS} multiply-adds, or when {@code rows} asks) a sample of rows.
     *
     * @param rows query rows to check, 0 for all; null for the default
     */
    public static CpuAttention.Result reference(AttentionProblem p, HostTensor q, HostTensor k, HostTensor v,
            Integer rows) {
        double macs = (double) p.batch() * p.hq() * p.nq() * (double) p.nk() * p.headDim() * 2;
        int n = rows != null ? rows : macs <= FULL_CHECK_MACS ? 0 : SAMPLED_ROWS;
        return n <= 0 || n >= p.nq() ? CpuAttention.forward(p, q, k, v)
                : CpuAttention.forwardRows(p, q, k, v, CpuAttention.sampleRows(p, n));
    }

    /** A pass bar of the quantized modes: cosine similarity at least, relative L1 error at most. */
    public record Bar(double minCosine, double maxRelL1) {
        public boolean passes(Metrics.Errors e) {
            return e.cosine() >= minCosine && e.relL1() <= maxRelL1;
        }
    }

    /**
     * The int8-fp8 bars of issue 3 against FP64: heavy-tailed inputs (Student-t) cosine 0.997 and
     * relative L1 0.06, every other family 0.999 and 0.045 (SageAttention2's own sm90 kernel measures
     * 0.9992-0.9994 / 0.037-0.040 and 0.9978 / 0.048 on the H200).
     */
    public static Bar quantizedBar(String family) {
        return Inputs.HEAVY_TAIL.equals(family(family)) ? new Bar(0.997, 0.06) : new Bar(0.999, 0.045);
    }

    /** The input family of a results label: another draw of a family is labelled FAMILY-seedN. */
    static String family(String label) {
        return label.replaceFirst("-seed\\d+$", "");
    }

    /**
     * The NVFP4 bars of issue 4 against FP64, where the issue sets one: Gaussian cosine 0.975 and
     * relative L1 0.21, peaky attention (queries concentrated on a few keys) 0.993 and 0.10; empty for
     * the other families (their figures are reported without a bar).
     */
    public static java.util.Optional<Bar> nvfp4Bar(String family) {
        return switch (family(family)) {
            case Inputs.GAUSSIAN -> java.util.Optional.of(new Bar(0.975, 0.21));
            case Inputs.PEAKY -> java.util.Optional.of(new Bar(0.993, 0.10));
            default -> java.util.Optional.empty();
        };
    }

    /**
     * Issue 5's gradient bar for dQ, dK and dV against FP64 (cosine 0.998, relative L1 0.06) on
     * Gaussian and channel-offset inputs; empty for the others (peaky inputs have nearly vanishing
     * exact gradients).
     */
    public static java.util.Optional<Bar> backwardBar(String family) {
        return Inputs.GAUSSIAN.equals(family) || Inputs.K_CHANNEL_OFFSET.equals(family)
                ? java.util.Optional.of(new Bar(0.998, 0.06)) : java.util.Optional.empty();
    }

    /** Generates {@code family} inputs, runs sagejit on them and compares with the FP64 reference. */
    public static Outcome check(SageAttention sage, AttentionOptions opts, AttentionProblem p, String family,
            Layout layout, long seed) {
        var t = opts.precision().inputType();
        var raw = Inputs.generate(family, p, layout, seed);
        var in = new Inputs.Qkv(raw.q().roundTo(t), raw.k().roundTo(t), raw.v().roundTo(t));
        return check(sage, opts, p, in);
    }

    /** Runs sagejit on given inputs (rounded to the precision's type) and compares. */
    public static Outcome check(SageAttention sage, AttentionOptions opts, AttentionProblem p, Inputs.Qkv in) {
        HostResult out = sage.forward(opts, new HostQkv(in.q().layout(), p.batch(), p.hq(), p.hkv(), p.nq(), p.nk(),
                p.headDim(), in.q().data(), in.k().data(), in.v().data()));
        CpuAttention.Result ref = reference(p, in.q(), in.k(), in.v(), null);
        var o = new HostTensor(out.o(), p.batch(), p.hq(), p.nq(), p.headDim(), in.q().layout());
        Metrics.Errors oErr = Metrics.output(o, ref, p);
        Metrics.Errors lseErr = opts.lse() ? Metrics.lse(out.lse(), ref, p) : null;
        return new Outcome(oErr, lseErr, out, in, ref);
    }
}
