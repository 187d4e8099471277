package dev.sagejit.reference;

import dev.sagejit.api.Layout;
import dev.sagejit.spec.SageBwdLayout;
import java.util.Arrays;
import java.util.Objects;
import java.util.stream.IntStream;

/**
 * Emulation of SageBwd, the 8-bit attention for training of SageAttention3 (SPEC.md section 4), as
 * the kernels will compute it: six of the seven matmuls in INT8, dP = dO V^T in 16 bits.
 *
 * <p>Forward (training): K smoothed (K - mean over tokens, which changes no gradient in exact math);
 * Q per block of {@code blockM} rows and K per block of {@code blockN} tokens in INT8 with
 * {@code s = absmax / 127}, {@code q = rint(x / s)}; the scores {@code S = dot(q8, k8) * sq * sk} in
 * FP32 (the dot exact, as INT32); online softmax in the log2 domain over key blocks of
 * {@code blockN}; per block, P~ = exp2(x - m) quantized per row with {@code s_P = exp2(rowmax_block
 * - m) / 127} and V per block of {@code blockN} tokens, so {@code O += s_P * sv * dot(p8, v8)}; l sums
 * the unquantized P~. The LSE of the smoothed scores is kept for the backward.
 *
 * <p>Backward: {@code D = rowsum(dO * O)}; per (query block I, key block J) the scores are recomputed
 * from the forward's INT8 Q and K, {@code P = exp2(x - lse)}; {@code dV_J += P_IJ^T dO_I} with P and
 * dO quantized per block; {@code dP = dO V^T} from the 16-bit dO and V (FP32 accumulation), or with
 * {@link Options#int8DoV} from INT8 dO (per block) and V (the forward's); {@code dS = P * (dP - D)}
 * quantized per block; {@code dQ_I += dS_IJ K_J} and {@code dK_J += dS_IJ^T Q_I} from the forward's
 * INT8 K and Q, times the softmax scale. GQA sums dK and dV over the query heads of a group. Every
 * product of two quantized blocks is exact (an integer dot) times the product of their scales, added
 * into FP32 accumulators.
 */
public final class SageBwdReference {
    /**
     * What the emulation does; {@link #DEFAULT} is the paper's choice with 64 x 64 tiles.
     *
     * @param blockM   query rows per quantization block (Q, dO) and per tile
     * @param blockN   key tokens per quantization block (K, V) and per tile
     * @param smoothK  subtract K's mean over tokens before quantizing it
     * @param int8DoV  dP = dO V^T in INT8 too (the paper's Table 1c ablation) instead of 16 bits
     * @param quantize false turns every quantizer into the identity (what is left is FP32 arithmetic)
     */
    public record Options(int blockM, int blockN, boolean smoothK, boolean int8DoV, boolean quantize) {
        public static final Options DEFAULT = new Options(SageBwdLayout.BLOCK, SageBwdLayout.BLOCK, true, false, true);

        public Options {
            if (blockM <= 0 || blockN <= 0) {
                throw new IllegalArgumentException("blocks must be positive, got " + blockM + " x " + blockN);
            }
        }

        public Options withInt8DoV(boolean on) {
            return new Options(blockM, blockN, smoothK, on, quantize);
        }

        public Options withSmoothK(boolean on) {
            return new Options(blockM, blockN, on, int8DoV, quantize);
        }

        public Options withQuantize(boolean on) {
            return new Options(blockM, blockN, smoothK, int8DoV, on);
        }
    }

    /** Outputs and gradients in FP32, BHSD (shapes as {@link CpuAttentionBackward.Gradients}). */
    public record Result(float[] o, float[] lse, float[] dq, float[] dk, float[] dv) {
    }

    /** INT8 largest code. */
    static final float INT8_MAX = SageBwdLayout.INT8_MAX;

    private SageBwdReference() {
    }

    /** Forward and backward of {@code p} on Q, K, V and dO (either layout) as SageBwd computes them. */
    public static Result compute(AttentionProblem p, HostTensor q, HostTensor k, HostTensor v, HostTensor dO,
            Options options) {
        Objects.requireNonNull(options, "options");
        CpuAttention.checkInputs(p, q, k, v);
        CpuAttention.checkShape("dO", dO, p.batch(), p.hq(), p.nq(), p.headDim());
        var kb = k.toLayout(Layout.BHSD);
        float[] qf = q.toLayout(Layout.BHSD).data();
        float[] vf = v.toLayout(Layout.BHSD).data();
        float[] gf = dO.toLayout(Layout.BHSD).data();
        int d = p.headDim();
        float[] kmean = options.smoothK() ? Sage2Reference.kMean(kb) : new float[p.batch() * p.hkv() * d];
        float[] ks = kb.data().clone();
        for (int bk = 0; bk < p.batch() * p.hkv(); bk++) {
            for (int n = 0; n < p.nk(); n++) {
                for (int c = 0; c < d; c++) {
                    ks[(bk * p.nk() + n) * d + c] -= kmean[bk * d + c];
                }
            }
        }
        var qq = Blocks.of(qf, p.batch() * p.hq(), p.nq(), d, options.blockM(), options.quantize());
        var kq = Blocks.of(ks, p.batch() * p.hkv(), p.nk(), d, options.blockN(), options.quantize());
        var vq = Blocks.of(vf, p.batch() * p.hkv(), p.nk(), d, options.blockN(), options.quantize());
        var gq = Blocks.of(gf, p.batch() * p.hq(), p.nq(), d, options.blockM(), options.quantize());
        float sl = (float) (p.effectiveScale() * Log2Domain.LOG2_E);

        // Forward: O and the log2-domain LSE of the smoothed scores, row by row.
        float[] o = new float[qf.length];
        float[] lse2 = new float[p.batch() * p.hq() * p.nq()];
        IntStream.range(0, p.batch() * p.hq()).parallel().forEach(bh -> {
            int kvh = (bh / p.hq()) * p.hkv() + p.kvHead(bh % p.hq());
            float[] x = new float[options.blockN()];
            float[] acc = new float[d];
            double[] pv = new double[d];
            for (int i = 0; i < p.nq(); i++) {
                forwardRow(p, options, qq, kq, vq, sl, bh, kvh, i, x, acc, pv, o, lse2);
            }
        });

        // Backward: one task per (batch, kv head), which owns that head's dK and dV.
        float[] dq = new float[qf.length];
        float[] dk = new float[ks.length];
        float[] dv = new float[ks.length];
        float[] rowD = new float[lse2.length];
        for (int row = 0; row < rowD.length; row++) {
            float sum = 0f;
            for (int c = 0; c < d; c++) {
                sum += gf[row * d + c] * o[row * d + c];
            }
            rowD[row] = sum;
        }
        IntStream.range(0, p.batch() * p.hkv()).parallel().forEach(bkv -> {
            var tile = new Tile(options.blockM(), options.blockN(), d);
            int b = bkv / p.hkv();
            int kvh = bkv % p.hkv();
            for (int h = kvh * p.groupSize(); h < (kvh + 1) * p.groupSize(); h++) {
                int bh = b * p.hq() + h;
                for (int i0 = 0; i0 < p.nq(); i0 += options.blockM()) {
                    for (int j0 = 0; j0 < p.nk(); j0 += options.blockN()) {
                        backwardTile(p, options, qq, kq, vq, gq, vf, gf, sl, lse2, rowD, bh, bkv, i0, j0, tile, dq,
                                dk, dv);
                    }
                }
            }
        });

        // The caller's LSE: the smoothed scores' plus the row shift smoothing removed (q . kmean * scale).
        float[] lse = new float[lse2.length];
        for (int row = 0; row < lse.length; row++) {
            int bh = row / p.nq();
            int kvh = (bh / p.hq()) * p.hkv() + p.kvHead(bh % p.hq());
            double shift = CpuAttentionBackward.dot(qf, row * d, kmean, kvh * d, d) * p.effectiveScale();
            lse[row] = (float) (lse2[row] * Log2Domain.LN2 + shift);
        }
        return new Result(o, lse, dq, dk, dv);
    }

    private static void forwardRow(AttentionProblem p, Options options, Blocks qq, Blocks kq, Blocks vq, float sl,
            int bh, int kvh, int i, float[] x, float[] acc, double[] pv, float[] o, float[] lse2) {
        int d = p.headDim();
        int row = bh * p.nq() + i;
        int visible = p.visibleKeys(i);
        if (visible == 0) {
            lse2[row] = Float.NEGATIVE_INFINITY;
            return;
        }
        float qs = qq.scale(bh, i);
        float m = Float.NEGATIVE_INFINITY;
        float l = 0f;
        Arrays.fill(acc, 0f);
        for (int j0 = 0; j0 < visible; j0 += options.blockN()) {
            int j1 = Math.min(visible, j0 + options.blockN());
            float ksc = kq.scale(kvh, j0);
            float blockMax = Float.NEGATIVE_INFINITY;
            for (int j = j0; j < j1; j++) {
                float s = (float) qq.dot(bh, i, kq, kvh, j) * (qs * ksc);
                x[j - j0] = s * sl;
                blockMax = Math.max(blockMax, x[j - j0]);
            }
            float mNew = Math.max(m, blockMax);
            float alpha = Log2Domain.exp2(m - mNew);
            float sP = options.quantize() ? Log2Domain.exp2(blockMax - mNew) / INT8_MAX : 1f;
            float vs = vq.scale(kvh, j0);
            float rowSum = 0f;
            for (int c = 0; c < d; c++) {
                acc[c] *= alpha;
            }
            Arrays.fill(pv, 0);
            for (int j = j0; j < j1; j++) {
                float pt = Log2Domain.exp2(x[j - j0] - mNew);
                rowSum += pt;
                // A block far below the running max has sP = 0 (exp2 underflows): it contributes nothing.
                float p8 = !options.quantize() ? pt : sP == 0f ? 0f : (float) Math.rint(pt / sP);
                axpy(pv, p8, vq.codes, (kvh * p.nk() + j) * d);
            }
            for (int c = 0; c < d; c++) {
                acc[c] += (float) pv[c] * (sP * vs);
            }
            l = l * alpha + rowSum;
            m = mNew;
        }
        for (int c = 0; c < d; c++) {
            o[row * d + c] = acc[c] / l;
        }
        lse2[row] = m + Log2Domain.log2(l);
    }

    /** Scratch of one backward worker: P, dP and dS of a tile, and their codes. */
    private static final class Tile {
        final float[] p;
        final float[] ds;
        final float[] codes;
        final double[] acc;

        Tile(int bm, int bn, int d) {
            p = new float[bm * bn];
            ds = new float[bm * bn];
            codes = new float[bm * bn];
            acc = new double[d];
        }
    }

    private static void backwardTile(AttentionProblem p, Options options, Blocks qq, Blocks kq, Blocks vq, Blocks gq,
            float[] vf, float[] gf, float sl, float[] lse2, float[] rowD, int bh, int kvh, int i0, int j0, Tile t,
            float[] dq, float[] dk, float[] dv) {
        int d = p.headDim();
        int bm = options.blockM();
        int bn = options.blockN();
        int i1 = Math.min(p.nq(), i0 + bm);
        int j1 = Math.min(p.nk(), j0 + bn);
        if (p.visibleKeys(i1 - 1) <= j0) {
            return; // every key of the tile is masked for every row (causal), or the rows see none
        }
        float ksc = kq.scale(kvh, j0);
        float vs = vq.scale(kvh, j0);
        float gs = gq.scale(bh, i0);
        float qs = qq.scale(bh, i0);
        Arrays.fill(t.p, 0f);
        Arrays.fill(t.ds, 0f);
        // P recomputed from the forward's INT8 Q, K and the LSE; dP; dS = P * (dP - D).
        for (int i = i0; i < i1; i++) {
            int row = bh * p.nq() + i;
            int visible = p.visibleKeys(i);
            for (int j = j0; j < Math.min(j1, visible); j++) {
                float x = (float) qq.dot(bh, i, kq, kvh, j) * (qs * ksc) * sl;
                float pr = Log2Domain.exp2(x - lse2[row]);
                float dp = options.int8DoV() ? (float) gq.dot(bh, i, vq, kvh, j) * (gs * vs)
                        : (float) CpuAttentionBackward.dot(gf, row * d, vf, (kvh * p.nk() + j) * d, d);
                t.p[(i - i0) * bn + (j - j0)] = pr;
                t.ds[(i - i0) * bn + (j - j0)] = pr * (dp - rowD[row]);
            }
        }
        // dV_J += P^T dO_I: P per tile, dO per block.
        float sP = quantizeTile(t.p, t.codes, options.quantize());
        for (int j = j0; j < j1; j++) {
            Arrays.fill(t.acc, 0);
            for (int i = i0; i < i1; i++) {
                axpy(t.acc, t.codes[(i - i0) * bn + (j - j0)], gq.codes, (bh * p.nq() + i) * d);
            }
            addScaled(dv, (kvh * p.nk() + j) * d, t.acc, sP * gs);
        }
        // dQ_I += dS K_J and dK_J += dS^T Q_I: dS per tile, K and Q the forward's INT8 blocks.
        float sdS = quantizeTile(t.ds, t.codes, options.quantize());
        float scale = (float) p.effectiveScale();
        for (int i = i0; i < i1; i++) {
            Arrays.fill(t.acc, 0);
            for (int j = j0; j < j1; j++) {
                axpy(t.acc, t.codes[(i - i0) * bn + (j - j0)], kq.codes, (kvh * p.nk() + j) * d);
            }
            addScaled(dq, (bh * p.nq() + i) * d, t.acc, (sdS * ksc) * scale);
        }
        for (int j = j0; j < j1; j++) {
            Arrays.fill(t.acc, 0);
            for (int i = i0; i < i1; i++) {
                axpy(t.acc, t.codes[(i - i0) * bn + (j - j0)], qq.codes, (bh * p.nq() + i) * d);
            }
            addScaled(dk, (kvh * p.nk() + j) * d, t.acc, (sdS * qs) * scale);
        }
    }

    /** acc += a * x[base, base + acc.length) (integer codes: exact in double). */
    private static void axpy(double[] acc, float a, float[] x, int base) {
        if (a == 0f) {
            return;
        }
        for (int c = 0; c < acc.length; c++) {
            acc[c] += a * x[base + c];
        }
    }

    /** out[base + c] += float(acc[c]) * scale: a block's exact product into FP32 accumulators. */
    private static void addScaled(float[] out, int base, double[] acc, float scale) {
        for (int c = 0; c < acc.length; c++) {
            out[base + c] += (float) acc[c] * scale;
        }
    }

    /** INT8 codes of a tile with s = absmax / 127 (s = 0 and codes 0 for an all-zero tile); returns s. */
    static float quantizeTile(float[] x, float[] codes, boolean quantize) {
        if (!quantize) {
            System.arraycopy(x, 0, codes, 0, x.length);
            return 1f;
        }
        float absmax = 0f;
        for (float e : x) {
            absmax = Math.max(absmax, Math.abs(e));
        }
        float s = absmax / INT8_MAX;
        for (int n = 0; n < x.length; n++) {
            codes[n] = s == 0f ? 0f : (float) Math.rint(x[n] / s);
        }
        return s;
    }

    /**
     * A [heads, seq, D] operand quantized in blocks of {@code block} rows of one head: integer-valued
     * codes (or the values themselves without quantization) and one scale per block.
     */
    static final class Blocks {
        final float[] codes;
        final float[] scales;
        final int seq;
        final int headDim;
        final int block;

        private Blocks(float[] codes, float[] scales, int seq, int headDim, int block) {
            this.codes = codes;
            this.scales = scales;
            this.seq = seq;
            this.headDim = headDim;
            this.block = block;
        }

        static Blocks of(float[] x, int heads, int seq, int headDim, int block, boolean quantize) {
            int perHead = (seq + block - 1) / block;
            float[] scales = new float[heads * perHead];
            if (!quantize) {
                Arrays.fill(scales, 1f);
                return new Blocks(x.clone(), scales, seq, headDim, block);
            }
            float[] codes = new float[x.length];
            for (int h = 0; h < heads; h++) {
                for (int b0 = 0; b0 < seq; b0 += block) {
                    int from = (h * seq + b0) * headDim;
                    int to = (h * seq + Math.min(seq, b0 + block)) * headDim;
                    float absmax = 0f;
                    for (int n = from; n < to; n++) {
                        absmax = Math.max(absmax, Math.abs(x[n]));
                    }
                    float s = absmax / INT8_MAX;
                    scales[h * perHead + b0 / block] = s;
                    for (int n = from; n < to; n++) {
                        codes[n] = s == 0f ? 0f : (float) Math.rint(x[n] / s);
                    }
                }
            }
            return new Blocks(codes, scales, seq, headDim, block);
        }

        float scale(int head, int row) {
            return scales[head * ((seq + block - 1) / block) + row / block];
        }

        /** The exact dot of this operand's row with a row of another (integer codes: exact in double). */
        double dot(int head, int row, Blocks other, int otherHead, int otherRow) {
            return CpuAttentionBackward.dot(codes, (head * seq + row) * headDim, other.codes,
                    (otherHead * other.seq + otherRow) * other.headDim, headDim);
        }
    }
}
