package dev.sagejit.kernel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sagejit.api.AttentionOptions;
import dev.sagejit.api.DType;
import dev.sagejit.api.Precision;
import dev.sagejit.api.Layout;
import dev.sagejit.reference.AttentionProblem;
import dev.sagejit.reference.CpuAttention;
import dev.sagejit.reference.Metrics;
import dev.sagejit.reference.HostTensor;
import dev.sagejit.reference.Inputs;
import dev.sagejit.reference.Nvfp4Reference;
import dev.sagejit.reference.Sage2Reference;
import dev.sagejit.runtime.DeviceBuffer;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The NVFP4 quantizers on the GPU against the CPU emulation, bit for bit: codes, scales, means, dS
 * and qshift (docs/nvfp4-quantization.md), on random and adversarial inputs.
 */
@Tag("gpu")
class Nvfp4GpuTest extends dev.sagejit.testing.GpuSession {

    record Case(String name, int b, int hq, int hkv, int nq, int nk, int d, Layout layout, String family, DType t,
            Nvfp4Reference.Options options) {
        @Override
        public String toString() {
            return name;
        }
    }

    static Stream<Arguments> cases() {
        var dflt = Nvfp4Reference.Options.DEFAULT;
        return Stream.of(
                new Case("gaussian d128 gqa bf16", 1, 4, 2, 200, 333, 128, Layout.BHSD, Inputs.GAUSSIAN, DType.BF16, dflt),
                new Case("k-channel-offset d128 fp16", 2, 2, 2, 130, 64, 128, Layout.BSHD, Inputs.K_CHANNEL_OFFSET,
                        DType.FP16, dflt),
                new Case("heavy-tail d64 bf16", 1, 2, 1, 300, 190, 64, Layout.BHSD, Inputs.HEAVY_TAIL, DType.BF16, dflt),
                new Case("no smoothing, no permutation d64", 1, 2, 2, 77, 100, 64, Layout.BHSD, Inputs.GAUSSIAN,
                        DType.BF16, dflt.withSmoothQ(false).withSmoothK(false).withPermuteK(false)))
                .map(Arguments::of);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void quantizersMatchTheEmulationBitForBit(Case c) {
        var p = new AttentionProblem(c.b(), c.hq(), c.hkv(), c.nq(), c.nk(), c.d(), false);
        var raw = Inputs.generate(c.family(), p, c.layout(), 23);
        compare(c, raw.q().roundTo(c.t()), raw.k().roundTo(c.t()), raw.v().roundTo(c.t()));
    }

    /**
     * Zero rows, subnormal and tiny blocks (scales that underflow E4M3), values on E2M1 rounding
     * ties, bf16's largest values, and NaN/Inf (scale 0x7F, codes 0).
     */
    @Test
    void quantizersMatchTheEmulationOnAdversarialBlocks() {
        var c = new Case("adversarial", 1, 2, 2, 64, 64, 64, Layout.BHSD, Inputs.GAUSSIAN, DType.BF16,
                Nvfp4Reference.Options.DEFAULT.withSmoothQ(false).withSmoothK(false));
        var p = new AttentionProblem(1, 2, 2, 64, 64, 64, false);
        var raw = Inputs.generate(Inputs.GAUSSIAN, p, Layout.BHSD, 29);
        HostTensor q = raw.q().roundTo(DType.BF16), k = raw.k().roundTo(DType.BF16), v = raw.v().roundTo(DType.BF16);
        float tiny = Float.intBitsToFloat(0x00010000);  // a bf16 subnormal
        for (int ch = 0; ch < 64; ch++) {
            q.set(0, 0, 1, ch, 0f);
            q.set(0, 0, 2, ch, (ch % 3 - 1) * tiny);
            // amax 6 gives scale 1: the block's values land on E2M1 midpoints (ties to even).
            float[] ties = {6f, 0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5f, -0.25f, -0.75f, -1.25f, -1.75f, -2.5f, -3.5f,
                    -5f, -6f};
            q.set(0, 0, 3, ch, ties[ch % 16]);
            q.set(0, 1, 4, ch, ch == 5 ? 3.3895314e38f : 1f);
            k.set(0, 0, 5, ch, ch % 16 == 0 ? 0x1p-10f : 0x1p-14f);  // scales among E4M3's subnormals
            v.set(0, 1, 7, ch, ch % 2 == 0 ? 448f : -416f);
        }
        q.set(0, 1, 9, 3, Float.NaN);
        k.set(0, 1, 10, 17, Float.POSITIVE_INFINITY);
        v.set(0, 0, 33, 40, Float.NEGATIVE_INFINITY);
        compare(c, q, k, v);
    }

    static Stream<Arguments> attentionCases() {
        var dflt = Nvfp4FwdPlan.OPTIONS;
        return Stream.of(
                new Case("gaussian d128 gqa", 1, 4, 2, 200, 333, 128, Layout.BHSD, Inputs.GAUSSIAN, DType.BF16, dflt),
                new Case("peaky d128 causal", 1, 2, 2, 256, 256, 128, Layout.BHSD, Inputs.PEAKY, DType.BF16, dflt),
                new Case("k-channel-offset d64 causal bshd fp16", 2, 2, 1, 130, 190, 64, Layout.BSHD,
                        Inputs.K_CHANNEL_OFFSET, DType.FP16, dflt),
                new Case("heavy-tail d64 no Q smoothing", 1, 2, 2, 100, 64, 64, Layout.BHSD, Inputs.HEAVY_TAIL,
                        DType.BF16, dflt.withSmoothQ(false)))
                .map(Arguments::of);
    }

    /**
     * The attention kernel (emulated with 16-bit MMAs on a GPU without FP4 tensor cores) against the
     * CPU emulation: equal up to FP32 summation order (a few P codes may round the other way), so the
     * difference is far below the format's own error against FP64.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("attentionCases")
    void attentionMatchesTheEmulation(Case c) {
        boolean causal = c.name().contains("causal");
        var p = new AttentionProblem(c.b(), c.hq(), c.hkv(), c.nq(), c.nk(), c.d(), causal);
        var raw = Inputs.generate(c.family(), p, c.layout(), 31);
        HostTensor q = raw.q().roundTo(c.t()), k = raw.k().roundTo(c.t()), v = raw.v().roundTo(c.t());
        var dev = sage.device();
        try (DeviceBuffer dq = DeviceCopies.upload(dev, q, c.t()); DeviceBuffer dk = DeviceCopies.upload(dev, k, c.t());
                DeviceBuffer dv = DeviceCopies.upload(dev, v, c.t()); DeviceBuffer dout = dev.allocate(2L * q.data().length);
                DeviceBuffer dlse = dev.allocate(4L * c.b() * c.hq() * c.nq())) {
            SageInternals.launcher(sage).nvfp4Attention().forward(Nvfp4FwdPlan.Mode.EMULATED, DeviceCopies.tensor(dq, c.t(), q), DeviceCopies.tensor(dk, c.t(), k),
                    DeviceCopies.tensor(dv, c.t(), v), DeviceCopies.tensor(dout, c.t(), q), dlse.address(),
                    AttentionOptions.builder().precision(Precision.NVFP4_EMULATED).causal(causal).build(), c.options(), SageInternals.arch(sage), dev.defaultStream());
            short[] bits = new short[q.data().length];
            dout.copyToHost(bits);
            HostTensor o = HostTensor.fromBits(bits, c.t(), c.b(), c.hq(), c.nq(), c.d(), c.layout());
            float[] lse = DeviceCopies.floats(dlse, c.b() * c.hq() * c.nq());
            var emu = Nvfp4Reference.attention(p, q, k, v, c.options());
            var ref = CpuAttention.forward(p, q, k, v);
            var gpuErr = Metrics.output(o, ref, p);
            var emuErr = Metrics.of(emu.o(), ref.o());
            var gpuVsEmu = Metrics.of(o.toLayout(Layout.BHSD).data(), emu.o());
            System.out.printf(java.util.Locale.ROOT, "NVFP4 %s: GPU %s | emulation %s | GPU vs emulation %s%n", c,
                    gpuErr.summary(), emuErr.summary(), gpuVsEmu.summary());
            assertTrue(gpuVsEmu.relL2() <= 0.1 * emuErr.relL2() + 1e-3,
                    c + ": GPU vs emulation " + gpuVsEmu.summary() + ", emulation vs FP64 " + emuErr.summary());
            assertTrue(Math.abs(gpuErr.cosine() - emuErr.cosine()) <= 0.002, c.toString());
            var lseDiff = Metrics.of(lse, emu.lse());
            assertTrue(lseDiff.maxAbs() <= 0.02, c + ": LSE " + lseDiff.summary());
        }
    }


    private static void compare(Case c, HostTensor q, HostTensor k, HostTensor v) {
        var dev = sage.device();
        try (DeviceBuffer dq = DeviceCopies.upload(dev, q, c.t()); DeviceBuffer dk = DeviceCopies.upload(dev, k, c.t());
                DeviceBuffer dv = DeviceCopies.upload(dev, v, c.t());
                var out = SageInternals.launcher(sage).nvfp4Quantizer().quantize(DeviceCopies.tensor(dq, c.t(), q),
                        DeviceCopies.tensor(dk, c.t(), k), DeviceCopies.tensor(dv, c.t(), v), c.options(), SageInternals.arch(sage),
                        dev.defaultStream())) {
            dev.synchronize();
            int bhk = c.b() * c.hkv();
            float[] kmean = DeviceCopies.floats(out.kmean(), bhk * c.d());
            if (c.options().smoothK()) {
                assertArrayEquals(Sage2Reference.kMean(k), kmean, 0f, "kmean: tokens summed in order on both sides");
            }
            var z = Nvfp4Reference.quantize(q, k, v, c.options(), kmean);
            assertArrayEquals(z.q4(), DeviceCopies.bytes(out.q4(), z.q4().length), c + ": q4");
            assertArrayEquals(z.qscale(), DeviceCopies.bytes(out.qscale(), z.qscale().length), c + ": qscale");
            assertArrayEquals(z.k4(), DeviceCopies.bytes(out.k4(), z.k4().length), c + ": k4");
            assertArrayEquals(z.kscale(), DeviceCopies.bytes(out.kscale(), z.kscale().length), c + ": kscale");
            assertArrayEquals(z.v4t(), DeviceCopies.bytes(out.v4t(), z.v4t().length), c + ": v4t");
            assertArrayEquals(z.vscale(), DeviceCopies.bytes(out.vscale(), z.vscale().length), c + ": vscale");
            assertBitEqual(z.qmean(), DeviceCopies.floats(out.qmean(), z.qmean().length), c + ": qmean");
            assertBitEqual(z.deltaS(), DeviceCopies.floats(out.deltaS(), z.deltaS().length), c + ": deltaS");
            assertBitEqual(z.qshift(), DeviceCopies.floats(out.qshift(), z.qshift().length), c + ": qshift");
        }
    }

    private static void assertBitEqual(float[] want, float[] got, String what) {
        assertEquals(want.length, got.length, what);
        for (int i = 0; i < want.length; i++) {
            assertEquals(Float.floatToIntBits(want[i]), Float.floatToIntBits(got[i]),
                    what + "[" + i + "]: " + want[i] + " vs " + got[i]);
        }
    }
}
