package dev.sagejit.kernel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.sagejit.api.AttentionOptions;
import dev.sagejit.api.DType;
import dev.sagejit.api.Layout;
import dev.sagejit.api.Precision;
import dev.sagejit.reference.AttentionProblem;
import dev.sagejit.reference.HostTensor;
import dev.sagejit.reference.Inputs;
import dev.sagejit.reference.Sage2Reference;
import dev.sagejit.runtime.DeviceBuffer;
import dev.sagejit.spec.SageBwdLayout;
import dev.sagejit.spec.SageBwdLayout.Order;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * SageBwd's quantizer kernel on the GPU, byte for byte against the rule it implements (docs/sagebwd.md):
 * per block of {@link SageBwdLayout#BLOCK} rows s = absmax / 127 and code = rint(x * (127 / absmax)),
 * row-major and transposed in the layout's token orders, rows past N as code 0. Covered: Q (codes, scales,
 * the LSE's shift Q . kmean), K smoothed by the mean of K's channel sums, V transposed, and dO in the
 * backward's fused pass that also writes D = rowsum(dO * O).
 */
@Tag("gpu")
class SageBwdQuantGpuTest extends dev.sagejit.testing.GpuSession {
    static Stream<Arguments> cases() {
        return Stream.of(
                new FlashBackwardGpuTest.Case("bf16 d128 gqa ragged", Precision.SAGEBWD,
                        new AttentionProblem(1, 4, 2, 200, 333, 128, false), Layout.BHSD),
                new FlashBackwardGpuTest.Case("fp16 d64 gqa bshd ragged", Precision.SAGEBWD_FP16,
                        new AttentionProblem(2, 2, 1, 130, 190, 64, false), Layout.BSHD),
                new FlashBackwardGpuTest.Case("bf16 d64 whole blocks", Precision.SAGEBWD,
                        new AttentionProblem(1, 2, 2, 128, 64, 64, false), Layout.BHSD))
                .map(Arguments::of);
    }

    /** A tensor's expected codes (row-major and transposed) and block scales. */
    record Codes(byte[] rows, byte[] cols, float[] scales) {
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void quantizerMatchesItsRule(FlashBackwardGpuTest.Case c) {
        var p = c.p();
        DType t = c.precision().inputType();
        var raw = Inputs.generate(Inputs.K_CHANNEL_OFFSET, p, c.layout(), 61);
        HostTensor q = raw.q().roundTo(t), k = raw.k().roundTo(t), v = raw.v().roundTo(t);
        HostTensor dO = Inputs.gradient(p, c.layout(), 62).roundTo(t);
        var dev = sage.device();
        var opts = AttentionOptions.builder().precision(c.precision()).lse(true).build();
        var sageBwd = SageInternals.launcher(sage).sageBwd();
        var arch = SageInternals.arch(sage);
        var stream = dev.defaultStream();
        try (DeviceBuffer bq = DeviceCopies.upload(dev, q, t); DeviceBuffer bk = DeviceCopies.upload(dev, k, t);
                DeviceBuffer bv = DeviceCopies.upload(dev, v, t); DeviceBuffer bdo = DeviceCopies.upload(dev, dO, t);
                DeviceBuffer bo = DeviceCopies.upload(dev, q, t); DeviceBuffer bdq = DeviceCopies.upload(dev, q, t);
                DeviceBuffer bdk = DeviceCopies.upload(dev, k, t); DeviceBuffer bdv = DeviceCopies.upload(dev, v, t);
                DeviceBuffer lse = dev.allocate(4L * p.batch() * p.hq() * Math.max(1, p.nq()));
                var ws = new SageBwd.Workspace(dev)) {
            var tq = DeviceCopies.tensor(bq, t, q);
            var tk = DeviceCopies.tensor(bk, t, k);
            var tv = DeviceCopies.tensor(bv, t, v);
            var to = DeviceCopies.tensor(bo, t, q);
            sageBwd.forward(opts, tq, tk, tv, to, lse.address(), arch, stream, ws);
            sageBwd.backward(opts, tq, tk, tv, to, DeviceCopies.tensor(bdo, t, dO), DeviceCopies.tensor(bdq, t, q),
                    DeviceCopies.tensor(bdk, t, k), DeviceCopies.tensor(bdv, t, v), arch, stream, ws);
            dev.synchronize();

            int d = p.headDim(), hkv = p.hkv(), group = p.hq() / hkv;
            float[] ksum = DeviceCopies.floats(ws.kSum(), p.batch() * hkv * d);
            float[] kmean = new float[ksum.length];
            for (int i = 0; i < ksum.length; i++) {
                kmean[i] = ksum[i] / (float) p.nk();
            }
            var eq = codes(q, null, Order.COLUMNS);
            check(c + " Q", eq, ws.q8(), ws.q8t(), ws.qScale());
            var ek = codes(k, kmean, Order.ROWS);
            check(c + " K", ek, ws.k8(), ws.k8t(), ws.kScale());
            var ev = codes(v, null, Order.COLUMNS);
            check(c + " V", ev, null, ws.v8t(), ws.vScale());
            var eg = codes(dO, null, Order.COLUMNS);
            check(c + " dO", eg, null, ws.g8t(), ws.gScale());

            float[] shift = DeviceCopies.floats(ws.qShift(), p.batch() * p.hq() * p.nq());
            float[] delta = DeviceCopies.floats(ws.delta(), shift.length);
            short[] oBits = new short[q.data().length];
            bo.copyToHost(oBits, 0, oBits.length, 0);
            var o = HostTensor.fromBits(oBits, t, p.batch(), p.hq(), p.nq(), d, c.layout());
            for (int b = 0; b < p.batch(); b++) {
                for (int h = 0; h < p.hq(); h++) {
                    for (int n = 0; n < p.nq(); n++) {
                        double wantShift = 0, wantDelta = 0, magnitude = 0;
                        for (int ch = 0; ch < d; ch++) {
                            wantShift += (double) q.get(b, h, n, ch) * kmean[(b * hkv + h / group) * d + ch];
                            double prod = (double) dO.get(b, h, n, ch) * o.get(b, h, n, ch);
                            wantDelta += prod;
                            magnitude += Math.abs(prod);
                        }
                        int r = (b * p.hq() + h) * p.nq() + n;
                        assertEquals(wantShift, shift[r], 1e-4 * (1 + Math.abs(wantShift)), c + " Q shift row " + r);
                        assertEquals(wantDelta, delta[r], 1e-5 * (1 + magnitude), c + " D row " + r);
                    }
                }
            }
        }
        System.out.println(c + ": Q, K, V and dO codes and scales identical to the rule; shifts and D agree");
    }

    private static void check(String what, Codes want, DeviceBuffer rows, DeviceBuffer cols, DeviceBuffer scales) {
        assertArrayEquals(want.scales(), DeviceCopies.floats(scales, want.scales().length), what + " scales");
        if (rows != null) {
            assertArrayEquals(want.rows(), DeviceCopies.bytes(rows, want.rows().length), what + " codes");
        }
        assertArrayEquals(want.cols(), DeviceCopies.bytes(cols, want.cols().length), what + " transposed codes");
    }

    /**
     * The quantizer's rule on the host: x (minus kmean of its head when given) per block of rows, the codes
     * of the int8-fp8 quantizers' rule ({@link Sage2Reference#int8Code} at {@link Sage2Reference#int8Inverse}
     * of the block's absmax; an all-zero block gets codes 0), rows past N zero.
     */
    static Codes codes(HostTensor x, float[] kmean, Order order) {
        int bs = x.batch(), hs = x.heads(), n = x.seq(), d = x.headDim();
        int block = SageBwdLayout.BLOCK, blocks = SageBwdLayout.blocks(n), pad = SageBwdLayout.padded(n);
        byte[] rows = new byte[bs * hs * n * d];
        byte[] cols = new byte[bs * hs * d * pad];
        float[] scales = new float[bs * hs * blocks];
        for (int b = 0; b < bs; b++) {
            for (int h = 0; h < hs; h++) {
                int bh = b * hs + h;
                for (int blk = 0; blk < blocks; blk++) {
                    int r0 = blk * block, r1 = Math.min(n, r0 + block);
                    float[] vals = new float[(r1 - r0) * d];
                    float amax = 0f;
                    for (int r = r0; r < r1; r++) {
                        for (int ch = 0; ch < d; ch++) {
                            float val = x.get(b, h, r, ch) - (kmean == null ? 0f : kmean[bh * d + ch]);
                            vals[(r - r0) * d + ch] = val;
                            amax = Math.max(amax, Math.abs(val));
                        }
                    }
                    scales[bh * blocks + blk] = amax / SageBwdLayout.INT8_MAX;
                    float inv = amax == 0f ? 0f : Sage2Reference.int8Inverse(amax);
                    for (int i = 0; i < vals.length; i++) {
                        rows[(bh * n + r0) * d + i] = Sage2Reference.int8Code(vals[i], inv);
                    }
                }
                for (int ch = 0; ch < d; ch++) {
                    for (int pos = 0; pos < pad; pos++) {
                        int token = order.token(pos);
                        cols[(bh * d + ch) * pad + pos] = token < n ? rows[(bh * n + token) * d + ch] : 0;
                    }
                }
            }
        }
        return new Codes(rows, cols, scales);
    }
}
