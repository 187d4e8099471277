package dev.sagejit.reference;

import java.util.Arrays;
import java.util.stream.IntStream;

/**
 * Forward attention in FP64 on the CPU: the oracle every precision mode is measured against. Inputs
 * are read as given (round them first with {@link HostTensor#roundTo} to get the exact-math result
 * on the values the GPU sees). Each query row is computed exactly: scores, maximum, sum of
 * exponentials, then the weighted sum of V, all in double; no online softmax.
 *
 * <p>Conventions (SPEC section 0): query head h reads kv head h / (Hq / Hkv); the causal mask is
 * bottom-right aligned, query i sees keys j <= i + Nk - Nq. A row that sees no key (possible when
 * Nq > Nk) has no defined softmax: this reference gives it O = 0 and LSE = -infinity, which is what
 * the kernels write for such rows.
 */
public final class CpuAttention {
    /** Query rows per parallel task: small enough to balance two cores, large enough to amortise. */
    private static final int ROWS_PER_TASK = 16;

    private CpuAttention() {
    }

    /**
     * Output and log-sum-exp of a forward pass.
     *
     * @param o    O in BHSD order, [B, Hq, Nq, D]
     * @param lse  natural-log LSE of the scaled scores, [B, Hq, Nq]
     * @param rows the query rows (within 0..Nq-1, ascending, the same for every (b, h)) that were
     *             computed, or null when all were; other rows are left 0 in {@code o} and NaN in
     *             {@code lse}
     */
    public record Result(double[] o, double[] lse, int[] rows) {
        /** A result with every row computed. */
        public Result(double[] o, double[] lse) {
            this(o, lse, null);
        }

        /** Whether every query row was computed. */
        public boolean complete() {
            return rows == null;
        }

        /**
         * Flat indices into {@link #o()} of the computed elements (null when all were), for
         * {@link Metrics} over a sample of rows.
         */
        public int[] outputIndices(AttentionProblem p) {
            if (rows == null) {
                return null;
            }
            int d = p.headDim();
            int[] idx = new int[p.batch() * p.hq() * rows.length * d];
            int at = 0;
            for (int bh = 0; bh < p.batch() * p.hq(); bh++) {
                for (int r : rows) {
                    int base = (bh * p.nq() + r) * d;
                    for (int j = 0; j < d; j++) {
                        idx[at++] = base + j;
                    }
                }
            }
            return idx;
        }

        /** Flat indices into {@link #lse()} of the computed rows (null when all were). */
        public int[] lseIndices(AttentionProblem p) {
            if (rows == null) {
                return null;
            }
            int[] idx = new int[p.batch() * p.hq() * rows.length];
            int at = 0;
            for (int bh = 0; bh < p.batch() * p.hq(); bh++) {
                for (int r : rows) {
                    idx[at++] = bh * p.nq() + r;
                }
            }
            return idx;
        }
    }

    /** Computes every query row. */
    public static Result forward(AttentionProblem p, HostTensor q, HostTensor k, HostTensor v) {
        double[] o = new double[Math.toIntExact(p.qElements())];
        double[] lse = new double[p.batch() * p.hq() * p.nq()];
        run(p, q, k, v, IntStream.range(0, p.nq()).toArray(), o, lse);
        return new Result(o, lse);
    }

    /**
     * Computes only {@code queryRows} (for every batch and head), for sequences too long to compute
     * whole; the result has the full shape with only those rows filled.
     */
    public static Result forwardRows(AttentionProblem p, HostTensor q, HostTensor k, HostTensor v,
            int[] queryRows) {
        int[] rows = Arrays.stream(queryRows).sorted().distinct().toArray();
        if (rows.length > 0 && (rows[0] < 0 || rows[rows.length - 1] >= p.nq())) {
            throw new IllegalArgumentException("query rows must lie in [0, " + p.nq() + "), got "
                    + rows[0] + ".." + rows[rows.length - 1]);
        }
        double[] o = new double[Math.toIntExact(p.qElements())];
        double[] lse = new double[p.batch() * p.hq() * p.nq()];
        Arrays.fill(lse, Double.NaN);
        run(p, q, k, v, rows, o, lse);
        return new Result(o, lse, rows);
    }

    /** Evenly spread sample of {@code count} query rows of {@code p}, always including the first and last. */
    public static int[] sampleRows(AttentionProblem p, int count) {
        if (count >= p.nq()) {
            return IntStream.range(0, p.nq()).toArray();
        }
        if (count <= 1) {
            return new int[] {p.nq() - 1};
        }
        return IntStream.range(0, count).map(i -> (int) ((long) i * (p.nq() - 1) / (count - 1)))
                .distinct().toArray();
    }

    private static void run(AttentionProblem p, HostTensor q, HostTensor k, HostTensor v, int[] rows,
            double[] o, double[] lse) {
        checkInputs(p, q, k, v);
        int chunks = (rows.length + ROWS_PER_TASK - 1) / ROWS_PER_TASK;
        int tasks = p.batch() * p.hq() * chunks;
        IntStream.range(0, tasks).parallel().forEach(t -> {
            int chunk = t % chunks;
            int bh = t / chunks;
            int b = bh / p.hq();
            int h = bh % p.hq();
            double[] scores = new double[p.nk()];
            double[] qRow = new double[p.headDim()];
            int end = Math.min(rows.length, (chunk + 1) * ROWS_PER_TASK);
            for (int r = chunk * ROWS_PER_TASK; r < end; r++) {
                row(p, q, k, v, b, h, rows[r], scores, qRow, o, lse);
            }
        });
    }

    /** One query row: exact softmax over its visible keys, written to o and lse. */
    private static void row(AttentionProblem p, HostTensor q, HostTensor k, HostTensor v, int b, int h, int i,
            double[] scores, double[] qRow, double[] o, double[] lse) {
        int d = p.headDim();
        int kvh = p.kvHead(h);
        int outBase = ((b * p.hq() + h) * p.nq() + i) * d;
        int lseAt = (b * p.hq() + h) * p.nq() + i;
        int visible = p.visibleKeys(i);
        if (visible == 0) {
            Arrays.fill(o, outBase, outBase + d, 0.0);
            lse[lseAt] = Double.NEGATIVE_INFINITY;
            return;
        }
        double scale = p.effectiveScale();
        float[] qd = q.data();
        int qBase = q.index(b, h, i, 0);
        for (int x = 0; x < d; x++) {
            qRow[x] = qd[qBase + x];
        }
        float[] kd = k.data();
        int kBase = k.index(b, kvh, 0, 0);
        int kStride = k.seqStride();
        double max = Double.NEGATIVE_INFINITY;
        for (int j = 0; j < visible; j++) {
            int kr = kBase + j * kStride;
            double dot = 0;
            for (int x = 0; x < d; x++) {
                dot += qRow[x] * kd[kr + x];
            }
            double s = dot * scale;
            scores[j] = s;
            max = Math.max(max, s);
        }
        double sum = 0;
        for (int j = 0; j < visible; j++) {
            double e = Math.exp(scores[j] - max);
            scores[j] = e;
            sum += e;
        }
        float[] vd = v.data();
        int vBase = v.index(b, kvh, 0, 0);
        int vStride = v.seqStride();
        Arrays.fill(o, outBase, outBase + d, 0.0);
        for (int j = 0; j < visible; j++) {
            double w = scores[j];
            int vr = vBase + j * vStride;
            for (int x = 0; x < d; x++) {
                o[outBase + x] += w * vd[vr + x];
            }
        }
        double inv = 1.0 / sum;
        for (int x = 0; x < d; x++) {
            o[outBase + x] *= inv;
        }
        lse[lseAt] = max + Math.log(sum);
    }

    /** Q [B, Hq, Nq, D], K and V [B, Hkv, Nk, D] as the problem says, in either layout. */
    static void checkInputs(AttentionProblem p, HostTensor q, HostTensor k, HostTensor v) {
        checkShape("Q", q, p.batch(), p.hq(), p.nq(), p.headDim());
        checkShape("K", k, p.batch(), p.hkv(), p.nk(), p.headDim());
        checkShape("V", v, p.batch(), p.hkv(), p.nk(), p.headDim());
    }

    static void checkShape(String name, HostTensor t, int b, int h, int n, int d) {
        if (t.batch() != b || t.heads() != h || t.seq() != n || t.headDim() != d) {
            throw new IllegalArgumentException(name + " is [B=" + t.batch() + ", H=" + t.heads() + ", N=" + t.seq()
                    + ", D=" + t.headDim() + "] but the problem needs [B=" + b + ", H=" + h + ", N=" + n + ", D="
                    + d + "]");
        }
    }
}
