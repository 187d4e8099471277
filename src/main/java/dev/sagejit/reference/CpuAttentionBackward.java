package dev.sagejit.reference;

import dev.sagejit.api.Layout;
import java.util.stream.IntStream;

/**
 * Attention forward and backward in FP64 on the CPU: O, the LSE and the gradients dQ, dK, dV of a
 * loss whose gradient with respect to O is dO. The 8-bit training path ({@link SageBwdReference}) and
 * 16-bit backward kernels are measured against it. Causal masks are bottom-right aligned like the
 * forward's; a query row that sees no key has O = 0, LSE = -inf and no gradient. With GQA, dK and dV
 * sum over the query heads of each group. Every array is BHSD: O and dQ [B, Hq, Nq, D], dK and dV
 * [B, Hkv, Nk, D], LSE [B, Hq, Nq] (natural log).
 */
public final class CpuAttentionBackward {
    /** Outputs and gradients of one problem (BHSD, see the class comment). */
    public record Gradients(AttentionProblem problem, double[] o, double[] lse, double[] dq, double[] dk,
            double[] dv) {
    }

    private CpuAttentionBackward() {
    }

    /**
     * Forward and backward of {@code p} on Q, K, V and dO (dO shaped like Q); the tensors may be in
     * either layout. O and the LSE are {@link CpuAttention}'s; the backward recomputes P from the LSE
     * as the kernels do.
     */
    public static Gradients compute(AttentionProblem p, HostTensor q, HostTensor k, HostTensor v, HostTensor dO) {
        CpuAttention.checkShape("dO", dO, p.batch(), p.hq(), p.nq(), p.headDim());
        var fwd = CpuAttention.forward(p, q, k, v);
        double[] o = fwd.o();
        double[] lse = fwd.lse();
        float[] qf = q.toLayout(Layout.BHSD).data();
        float[] kf = k.toLayout(Layout.BHSD).data();
        float[] vf = v.toLayout(Layout.BHSD).data();
        float[] gf = dO.toLayout(Layout.BHSD).data();
        int d = p.headDim();
        double[] dq = new double[qf.length];
        double[] dk = new double[kf.length];
        double[] dv = new double[kf.length];
        double scale = p.effectiveScale();
        // One task per (batch, kv head): it owns that head's dK and dV rows.
        IntStream.range(0, p.batch() * p.hkv()).parallel().forEach(bkv -> {
            int b = bkv / p.hkv();
            int kvh = bkv % p.hkv();
            int kBase = bkv * p.nk() * d;
            for (int h = kvh * p.groupSize(); h < (kvh + 1) * p.groupSize(); h++) {
                for (int i = 0; i < p.nq(); i++) {
                    int row = (b * p.hq() + h) * p.nq() + i;
                    int qBase = row * d;
                    double rowD = 0; // D = rowsum(dO * O)
                    for (int c = 0; c < d; c++) {
                        rowD += gf[qBase + c] * o[qBase + c];
                    }
                    for (int j = 0; j < p.visibleKeys(i); j++) {
                        int kr = kBase + j * d;
                        double pj = Math.exp(scale * dot(qf, qBase, kf, kr, d) - lse[row]);
                        double ds = pj * (dot(gf, qBase, vf, kr, d) - rowD);
                        for (int c = 0; c < d; c++) {
                            dq[qBase + c] += scale * ds * kf[kr + c];
                            dk[kr + c] += scale * ds * qf[qBase + c];
                            dv[kr + c] += pj * gf[qBase + c];
                        }
                    }
                }
            }
        });
        return new Gradients(p, o, lse, dq, dk, dv);
    }

    static double dot(float[] a, int aBase, float[] b, int bBase, int n) {
        double sum = 0;
        for (int c = 0; c < n; c++) {
            sum += (double) a[aBase + c] * b[bBase + c];
        }
        return sum;
    }
}
