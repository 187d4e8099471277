package dev.sagejit.reference;

import dev.sagejit.api.Layout;
import java.util.Locale;
import java.util.function.IntToDoubleFunction;

/**
 * Accuracy metrics of SPEC section 5 between a candidate (what a kernel produced) and a reference
 * (usually {@link CpuAttention}'s FP64 result), over all elements or a chosen subset.
 *
 * <p>Edge cases: a NaN in either array makes every metric NaN. An element where both hold the same
 * infinity (e.g. LSE = -inf of a fully masked row) counts as exact and adds nothing to the norms. A
 * ratio with a zero reference norm is 0 when the error is zero too, otherwise infinity; cosine is 1
 * when both vectors are zero and 0 when only one is.
 */
public final class Metrics {
    private Metrics() {
    }

    /**
     * @param cosine cosine similarity of candidate and reference
     * @param relL1  sum|x - r| / sum|r|
     * @param rmse   sqrt(mean((x - r)^2))
     * @param maxAbs max|x - r|
     * @param relL2  ||x - r||_2 / ||r||_2
     */
    public record Errors(double cosine, double relL1, double rmse, double maxAbs, double relL2) {
        /** Whether every metric is a finite number (false after any NaN or infinite error). */
        public boolean finite() {
            return Double.isFinite(cosine) && Double.isFinite(relL1) && Double.isFinite(rmse)
                    && Double.isFinite(maxAbs) && Double.isFinite(relL2);
        }

        /** One line for logs and test failure messages. */
        public String summary() {
            return String.format(Locale.ROOT, "cos=%.8f relL1=%.3e rmse=%.3e maxAbs=%.3e relL2=%.3e",
                    cosine, relL1, rmse, maxAbs, relL2);
        }
    }

    public static Errors of(double[] candidate, double[] reference) {
        requireSameLength(candidate.length, reference.length);
        return compute(i -> candidate[i], reference, null);
    }

    public static Errors of(float[] candidate, double[] reference) {
        requireSameLength(candidate.length, reference.length);
        return compute(i -> candidate[i], reference, null);
    }

    /** Metrics of one FP32 result against another (e.g. a GPU kernel against its CPU emulation). */
    public static Errors of(float[] candidate, float[] reference) {
        requireSameLength(candidate.length, reference.length);
        double[] widened = new double[reference.length];
        for (int i = 0; i < widened.length; i++) {
            widened[i] = reference[i];
        }
        return compute(i -> candidate[i], widened, null);
    }

    /** Metrics over the elements at {@code indices} only (null: all). */
    public static Errors of(double[] candidate, double[] reference, int[] indices) {
        requireSameLength(candidate.length, reference.length);
        return compute(i -> candidate[i], reference, indices);
    }

    /** Metrics over the elements at {@code indices} only (null: all). */
    public static Errors of(float[] candidate, double[] reference, int[] indices) {
        requireSameLength(candidate.length, reference.length);
        return compute(i -> candidate[i], reference, indices);
    }

    /**
     * Metrics of an output tensor O (any layout, [B, Hq, Nq, D]) against a reference, over the rows
     * the reference computed.
     */
    public static Errors output(HostTensor o, CpuAttention.Result reference, AttentionProblem p) {
        float[] bhsd = o.toLayout(Layout.BHSD).data();
        return of(bhsd, reference.o(), reference.outputIndices(p));
    }

    /** Metrics of an LSE vector [B, Hq, Nq] against a reference, over the rows the reference computed. */
    public static Errors lse(float[] lse, CpuAttention.Result reference, AttentionProblem p) {
        return of(lse, reference.lse(), reference.lseIndices(p));
    }

    private static Errors compute(IntToDoubleFunction candidate, double[] reference, int[] indices) {
        int n = indices == null ? reference.length : indices.length;
        double sumAbsDiff = 0, sumAbsRef = 0, sumSqDiff = 0, sumSqRef = 0, sumSqCand = 0, dot = 0, maxAbs = 0;
        for (int t = 0; t < n; t++) {
            int i = indices == null ? t : indices[t];
            double x = candidate.applyAsDouble(i);
            double r = reference[i];
            if (Double.isNaN(x) || Double.isNaN(r)) {
                return new Errors(Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN);
            }
            if (x == r && Double.isInfinite(r)) {
                continue;
            }
            double diff = Math.abs(x - r);
            sumAbsDiff += diff;
            sumAbsRef += Math.abs(r);
            sumSqDiff += diff * diff;
            sumSqRef += r * r;
            sumSqCand += x * x;
            dot += x * r;
            maxAbs = Math.max(maxAbs, diff);
        }
        double cosine;
        if (sumSqCand == 0 && sumSqRef == 0) {
            cosine = 1.0;
        } else if (sumSqCand == 0 || sumSqRef == 0) {
            cosine = 0.0;
        } else {
            cosine = dot / (Math.sqrt(sumSqCand) * Math.sqrt(sumSqRef));
        }
        double rmse = n == 0 ? 0.0 : Math.sqrt(sumSqDiff / n);
        return new Errors(cosine, ratio(sumAbsDiff, sumAbsRef), rmse, maxAbs,
                ratio(Math.sqrt(sumSqDiff), Math.sqrt(sumSqRef)));
    }

    private static double ratio(double error, double norm) {
        if (norm == 0) {
            return error == 0 ? 0.0 : Double.POSITIVE_INFINITY;
        }
        return error / norm;
    }

    private static void requireSameLength(int candidate, int reference) {
        if (candidate != reference) {
            throw new IllegalArgumentException("candidate has " + candidate + " elements, reference " + reference);
        }
    }
}
