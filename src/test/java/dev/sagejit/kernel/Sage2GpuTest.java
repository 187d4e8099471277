package dev.sagejit.kernel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sagejit.api.AttentionOptions;
import dev.sagejit.api.DType;
import dev.sagejit.api.DeviceTensor;
import dev.sagejit.api.Layout;
import dev.sagejit.api.Precision;
import dev.sagejit.bench.Accuracy;
import dev.sagejit.reference.AttentionProblem;
import dev.sagejit.reference.HostTensor;
import dev.sagejit.reference.Inputs;
import dev.sagejit.reference.Sage2Reference;
import dev.sagejit.runtime.DeviceBuffer;
import dev.sagejit.spec.Arch;
import dev.sagejit.spec.Direction;
import dev.sagejit.spec.KernelSpec;
import dev.sagejit.spec.TileTable;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The int8-fp8 (SageAttention2) mode on a real GPU: the quantizers bit for bit against the CPU
 * emulation (Sage2Reference), and the attention output against FP64 with issue 3's bars over the
 * option matrix. Runs only where a GPU is (scripts/gpu-suite.sh).
 */
@Tag("gpu")
class Sage2GpuTest extends dev.sagejit.testing.GpuSession {

    record Case(String name, Precision precision, int b, int hq, int hkv, int nq, int nk, int d, boolean causal,
            Layout layout, String family, String tiles) {
        @Override
        public String toString() {
            return name;
        }
    }

    static Case c(Precision p, int b, int hq, int hkv, int nq, int nk, int d, boolean causal, Layout layout,
            String family) {
        String name = p.id() + " " + b + "x" + hq + "/" + hkv + "x" + nq + "/" + nk + "xd" + d + (causal ? " causal" : "")
                + " " + layout + " " + family;
        return new Case(name, p, b, hq, hkv, nq, nk, d, causal, layout, family, null);
    }

    static Stream<Arguments> quantizerCases() {
        return Stream.of(c(Precision.INT8_FP8, 1, 4, 2, 333, 200, 128, false, Layout.BHSD, Inputs.K_CHANNEL_OFFSET),
                c(Precision.INT8_FP8_FP16, 2, 2, 2, 100, 77, 64, false, Layout.BSHD, Inputs.HEAVY_TAIL),
                c(Precision.INT8_FP8, 1, 2, 1, 16, 1, 64, false, Layout.BHSD, Inputs.GAUSSIAN),
                // longer keys: several quantizer blocks per head, a ragged last block
                c(Precision.INT8_FP8, 1, 2, 2, 64, 4096, 128, false, Layout.BHSD, Inputs.K_CHANNEL_OFFSET),
                c(Precision.INT8_FP8, 1, 4, 2, 100, 3001, 64, false, Layout.BSHD, Inputs.GAUSSIAN),
                c(Precision.INT8_FP8_FP16, 1, 2, 2, 50, 1900, 128, false, Layout.BHSD, Inputs.HEAVY_TAIL),
                c(Precision.INT8_FP8, 2, 2, 1, 70, 700, 64, false, Layout.BHSD, Inputs.K_CHANNEL_OFFSET))
                .map(Arguments::of);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("quantizerCases")
    void quantizersMatchTheCpuEmulationBitForBit(Case c) {
        var p = new AttentionProblem(c.b(), c.hq(), c.hkv(), c.nq(), c.nk(), c.d(), false);
        DType t = c.precision().inputType();
        var raw = Inputs.generate(c.family(), p, c.layout(), 7);
        compareQuantizers(c, raw.q().roundTo(t), raw.k().roundTo(t), raw.v().roundTo(t));
    }

    @org.junit.jupiter.api.Test
    void quantizersMatchTheEmulationOnNonFiniteInputs() {
        var c = c(Precision.INT8_FP8, 1, 2, 2, 100, 150, 64, false, Layout.BHSD, Inputs.GAUSSIAN);
        var p = new AttentionProblem(c.b(), c.hq(), c.hkv(), c.nq(), c.nk(), c.d(), false);
        var raw = Inputs.generate(c.family(), p, c.layout(), 9);
        HostTensor q = raw.q().roundTo(DType.BF16), k = raw.k().roundTo(DType.BF16), v = raw.v().roundTo(DType.BF16);
        q.set(0, 1, 37, 5, Float.NaN);
        k.set(0, 0, 99, 2, Float.POSITIVE_INFINITY);
        v.set(0, 1, 120, 9, Float.NaN);
        v.set(0, 0, 3, 60, Float.NEGATIVE_INFINITY);
        compareQuantizers(c, q, k, v);
    }

    /**
     * Adversarial groups: all-zero rows, rows of denormals and of values so small that 127 / amax
     * saturates, products landing exactly on .5 (ties to even), bf16's largest values, and V
     * channels at E4M3 rounding ties.
     */
    @org.junit.jupiter.api.Test
    void quantizersMatchTheEmulationOnAdversarialGroups() {
        var c = c(Precision.INT8_FP8, 1, 2, 2, 64, 128, 64, false, Layout.BHSD, Inputs.GAUSSIAN);
        var p = new AttentionProblem(c.b(), c.hq(), c.hkv(), c.nq(), c.nk(), c.d(), false);
        var raw = Inputs.generate(c.family(), p, c.layout(), 11);
        HostTensor q = raw.q().roundTo(DType.BF16), k = raw.k().roundTo(DType.BF16), v = raw.v().roundTo(DType.BF16);
        float denormal = Float.intBitsToFloat(0x00010000); // a bf16 subnormal
        for (int ch = 0; ch < c.d(); ch++) {
            q.set(0, 0, 3, ch, 0f);                                  // zero row: scale 0
            q.set(0, 0, 4, ch, (ch % 3 - 1) * denormal);             // subnormal row: 127 / amax saturates
            q.set(0, 0, 5, ch, ch == 0 ? 254f : (ch % 2 == 0 ? 1f : 3f)); // x * 127/254 = 0.5, 1.5: ties
            q.set(0, 1, 6, ch, ch == 7 ? 3.3895314e38f : 0x1p100f);   // bf16's largest finite value
            v.set(0, 1, 9 + ch, ch, ch % 2 == 0 ? 448f : 416f);      // channel maxima 448 and 416
            v.set(0, 1, 10 + ch, ch, 0.5f * (1 + 1 / 16f));         // an E4M3 tie at scale 1
        }
        compareQuantizers(c, q, k, v);
    }

    /**
     * Both quantizer paths: with LSE (four kernels, qshift included) and without (kv_stats beside
     * quant_q, then quant_k beside quant_v; no qshift).
     */
    private static void compareQuantizers(Case c, HostTensor q, HostTensor k, HostTensor v) {
        compareQuantizers(c, q, k, v, true);
        compareQuantizers(c, q, k, v, false);
    }

    private static void compareQuantizers(Case c, HostTensor q, HostTensor k, HostTensor v, boolean lse) {
        DType t = c.precision().inputType();
        var device = sage.device();
        try (DeviceBuffer dq = upload(q, t); DeviceBuffer dk = upload(k, t); DeviceBuffer dv = upload(v, t);
                DeviceBuffer dout = device.allocate(2L * q.data().length);
                DeviceBuffer dlse = device.allocate(4L * Math.max(1, q.data().length / c.d()))) {
            var opts = AttentionOptions.builder().precision(c.precision()).lse(lse).build();
            var problem = new FwdProblem(opts, tensor(dq, t, q), tensor(dk, t, k), tensor(dv, t, v), tensor(dout, t, q),
                    lse ? dlse.address() : 0L);
            var w = SageInternals.launcher(sage).quantizeInto(problem, device.defaultStream());
            device.synchronize();
            int bhk = c.b() * c.hkv();
            float[] ksum = floats(w.kSum(), bhk * c.d());
            float[] kmean = new float[ksum.length];
            for (int i = 0; i < ksum.length; i++) {
                kmean[i] = ksum[i] / (float) c.nk();
            }
            var ref = Sage2Reference.quantize(q, k, v, kmean);
            assertArrayEquals(ref.q8(), bytes(w.q8(), ref.q8().length), "q8");
            assertArrayEquals(ref.qscale(), floats(w.qScale(), ref.qscale().length), "qscale");
            assertArrayEquals(ref.k8(), bytes(w.k8(), ref.k8().length), "k8");
            assertArrayEquals(ref.kscale(), floats(w.kScale(), ref.kscale().length), "kscale");
            assertArrayEquals(ref.v8t(), bytes(w.v8t(), ref.v8t().length), "v8t");
            assertArrayEquals(ref.vscale(), floats(w.vScale(), ref.vscale().length), "vscale");
            float[] shift = lse ? floats(w.qShift(), ref.qshift().length) : new float[0];
            for (int i = 0; i < shift.length; i++) {
                float want = ref.qshift()[i];
                if (Float.isFinite(want)) {
                    assertEquals(want, shift[i], 1e-4 * (1 + Math.abs(want)), "qshift[" + i + "]");
                } else {
                    assertTrue(!Float.isFinite(shift[i]), "qshift[" + i + "] " + shift[i] + " should be " + want);
                }
            }
            System.out.println(c + (lse ? " (with LSE)" : " (without LSE: merged launches)")
                    + ": quantizers identical to the CPU emulation");
        }
    }

    static Stream<Arguments> accuracyCases() {
        var out = new ArrayList<Case>();
        for (Precision p : List.of(Precision.INT8_FP8, Precision.INT8_FP8_FP16)) {
            for (int d : new int[] {64, 128}) {
                for (boolean causal : new boolean[] {false, true}) {
                    out.add(c(p, 2, 4, 4, 1024, 1024, d, causal, Layout.BHSD, Inputs.GAUSSIAN));
                    out.add(c(p, 1, 4, 2, 333, 777, d, causal, Layout.BSHD, Inputs.K_CHANNEL_OFFSET));
                }
            }
        }
        for (String family : List.of(Inputs.GAUSSIAN, Inputs.K_CHANNEL_OFFSET)) {
            for (boolean causal : new boolean[] {false, true}) {
                out.add(c(Precision.INT8_FP8, 1, 4, 4, 4096, 4096, 128, causal, Layout.BHSD, family));
            }
        }
        out.add(c(Precision.INT8_FP8, 1, 32, 8, 512, 512, 128, true, Layout.BHSD, Inputs.GAUSSIAN));
        out.add(c(Precision.INT8_FP8, 1, 8, 1, 300, 300, 64, false, Layout.BSHD, Inputs.GAUSSIAN));
        out.add(c(Precision.INT8_FP8, 1, 2, 2, 777, 300, 128, true, Layout.BHSD, Inputs.GAUSSIAN));
        out.add(c(Precision.INT8_FP8, 1, 2, 2, 17, 5, 64, false, Layout.BHSD, Inputs.GAUSSIAN));
        out.add(c(Precision.INT8_FP8, 1, 2, 2, 16384, 16384, 128, true, Layout.BHSD, Inputs.GAUSSIAN));
        out.add(c(Precision.INT8_FP8, 1, 2, 2, 32768, 32768, 64, false, Layout.BHSD, Inputs.K_CHANNEL_OFFSET));
        var cases = out.stream().map(Arguments::of).toList();
        var all = new ArrayList<Arguments>(cases);
        for (int d : new int[] {64, 128}) {
            var spec = new KernelSpec(Direction.FWD, Arch.SM90A, Precision.INT8_FP8, d, true, true);
            for (var tiles : TileTable.candidates(spec)) {
                var base = c(Precision.INT8_FP8, 1, 2, 2, 600, 700, d, true, Layout.BHSD, Inputs.GAUSSIAN);
                all.add(Arguments.of(new Case(base.name() + " " + tiles.key(), base.precision(), 1, 2, 2, 600, 700, d,
                        true, Layout.BHSD, Inputs.GAUSSIAN, tiles.key())));
            }
        }
        return all.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("accuracyCases")
    void matchesFp64WithinTheIssueBars(Case c) {
        var p = new AttentionProblem(c.b(), c.hq(), c.hkv(), c.nq(), c.nk(), c.d(), c.causal());
        var opts = AttentionOptions.builder().precision(c.precision()).causal(c.causal()).lse(true).tiles(c.tiles())
                .build();
        var outcome = Accuracy.check(sage, opts, p, c.family(), c.layout(), 11);
        var bar = Accuracy.quantizedBar(c.family());
        System.out.println(c + ": O " + outcome.o().summary() + "; LSE " + outcome.lse().summary());
        assertTrue(outcome.o().finite(), "non-finite output: " + outcome.o().summary());
        assertTrue(bar.passes(outcome.o()), c + ": " + outcome.o().summary() + " misses " + bar);
        assertTrue(outcome.lse().maxAbs() < 0.05, c + ": LSE max abs error " + outcome.lse().maxAbs());
    }

    static Stream<Arguments> heavyTailCases() {
        return Stream.of(c(Precision.INT8_FP8, 1, 4, 4, 4096, 4096, 128, false, Layout.BHSD, Inputs.HEAVY_TAIL),
                c(Precision.INT8_FP8, 1, 4, 4, 4096, 4096, 128, true, Layout.BHSD, Inputs.HEAVY_TAIL),
                c(Precision.INT8_FP8, 1, 4, 4, 2048, 2048, 64, false, Layout.BHSD, Inputs.HEAVY_TAIL)).map(Arguments::of);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("heavyTailCases")
    void heavyTailsMeetTheBarsAndTheEmulationsLse(Case c) {
        var p = new AttentionProblem(c.b(), c.hq(), c.hkv(), c.nq(), c.nk(), c.d(), c.causal());
        var opts = AttentionOptions.builder().precision(c.precision()).causal(c.causal()).lse(true).build();
        var outcome = Accuracy.check(sage, opts, p, c.family(), c.layout(), 11);
        var bar = Accuracy.quantizedBar(c.family());
        System.out.println(c + ": O " + outcome.o().summary() + "; LSE " + outcome.lse().summary());
        assertTrue(bar.passes(outcome.o()), c + ": " + outcome.o().summary() + " misses " + bar);
        // Heavy tails: one outlier sets the INT8 scale of its whole group (two Q rows, or 16 K tokens),
        // so rows' LSE can be off by units against FP64 whatever the kernel does. The bar there is the
        // method's own error: the CPU emulation of the same quantization (Sage2Reference) on the same
        // inputs must show the same LSE error, and agree with the GPU row by row.
        var in = outcome.inputs();
        var z = Sage2Reference.quantize(in.q(), in.k(), in.v());
        int blockN = SageInternals.launcher(sage).plan(probe(c)).tiles().blockN();
        var emu = Sage2Reference.attention(z, Double.NaN, c.causal(), blockN);
        var emuErr = dev.sagejit.reference.Metrics.lse(emu.lse(), outcome.reference(), p);
        var gpuVsEmu = dev.sagejit.reference.Metrics.of(outcome.result().lse(), emu.lse());
        System.out.println(c + ": LSE RMSE vs FP64 " + outcome.lse().rmse() + " (emulation " + emuErr.rmse()
                + "); GPU vs emulation " + gpuVsEmu.summary());
        assertTrue(outcome.lse().rmse() <= 1.1 * emuErr.rmse() + 0.01,
                c + ": LSE RMSE " + outcome.lse().rmse() + " vs the emulation's " + emuErr.rmse());
        assertTrue(gpuVsEmu.rmse() < 0.1 * emuErr.rmse() + 0.01, c + ": GPU vs emulation LSE " + gpuVsEmu.summary());
    }

    /**
     * Scores that keep rising along the keys, by more than the speculative softmax's headroom every few
     * blocks (K's tokens scaled by 1 + 12 n / Nk): the d128 kernel's warps redo many steady blocks
     * (the exact step on the scores they kept, O rescaled), so a wrong redo would show. The
     * GPU must stay as close to FP64 as the emulation of the same quantization (Sage2Reference, exact
     * steps throughout) and agree with it.
     */
    @ParameterizedTest(name = "causal {0}")
    @org.junit.jupiter.params.provider.ValueSource(booleans = {false, true})
    void risingScoresRedoBlocksAndMatchTheEmulation(boolean causal) {
        var p = new AttentionProblem(1, 4, 4, 2048, 2048, 128, causal);
        var in = Inputs.generate(Inputs.GAUSSIAN, p, Layout.BHSD, 17);
        float[] k = in.k().data();
        for (int h = 0; h < p.hkv(); h++) {
            for (int n = 0; n < p.nk(); n++) {
                float f = 1f + 12f * n / p.nk();
                for (int c = 0; c < p.headDim(); c++) k[(h * p.nk() + n) * p.headDim() + c] *= f;
            }
        }
        var opts = AttentionOptions.builder().precision(Precision.INT8_FP8).causal(causal).lse(true).build();
        var outcome = Accuracy.check(sage, opts, p, in);
        var z = Sage2Reference.quantize(in.q(), in.k(), in.v());
        var c = new Case("rising", Precision.INT8_FP8, 1, 4, 4, 2048, 2048, 128, causal, Layout.BHSD, "rising", null);
        int blockN = SageInternals.launcher(sage).plan(probe(c)).tiles().blockN();
        var emu = Sage2Reference.attention(z, Double.NaN, causal, blockN);
        var emuErr = dev.sagejit.reference.Metrics.of(emu.o(), outcome.reference().o(),
                outcome.reference().outputIndices(p));
        var gpuVsEmu = dev.sagejit.reference.Metrics.of(outcome.result().o(), emu.o());
        System.out.println("rising scores, causal " + causal + ": O " + outcome.o().summary() + " (emulation "
                + emuErr.summary() + "); GPU vs emulation " + gpuVsEmu.summary());
        assertTrue(outcome.o().finite(), "non-finite output: " + outcome.o().summary());
        assertTrue(1 - outcome.o().cosine() <= 1.5 * (1 - emuErr.cosine()) + 1e-4,
                "cosine " + outcome.o().cosine() + " vs the emulation's " + emuErr.cosine());
        assertTrue(outcome.o().relL1() <= 1.5 * emuErr.relL1() + 0.005,
                "relative L1 " + outcome.o().relL1() + " vs the emulation's " + emuErr.relL1());
        assertTrue(gpuVsEmu.cosine() >= 0.999, "GPU vs emulation " + gpuVsEmu.summary());
    }

    @org.junit.jupiter.api.Test
    void emptyKeysGiveZeroOutputAndMinusInfinityLse() {
        float[] q = new float[2 * 64];
        java.util.Arrays.fill(q, 1f);
        var out = sage.forward(AttentionOptions.builder().precision(Precision.INT8_FP8).lse(true).build(),
                new dev.sagejit.api.HostQkv(Layout.BHSD, 1, 1, 1, 2, 0, 64, q, new float[0], new float[0]));
        assertArrayEquals(new float[2 * 64], out.o());
        assertEquals(Float.NEGATIVE_INFINITY, out.lse()[0]);
        assertEquals(Float.NEGATIVE_INFINITY, out.lse()[1]);
    }

    /**
     * NaN in the inputs gives the documented result (docs/int8-fp8-quantization.md), never a hang or
     * a silently wrong number: in Q, its row (one scale per row); in V, its channel in every row;
     * in K, every row (smoothing spreads it through the channel mean).
     */
    @org.junit.jupiter.api.Test
    void nanReachesTheDocumentedOutputs() {
        int n = 64, d = 64;
        var p = new AttentionProblem(1, 1, 1, n, n, d, false);
        var opts = AttentionOptions.builder().precision(Precision.INT8_FP8).build();
        var base = Inputs.generate(Inputs.GAUSSIAN, p, Layout.BHSD, 5);

        var q = base.q().data().clone();
        q[5 * d + 7] = Float.NaN;
        float[] o = run(opts, q, base.k().data(), base.v().data(), n, d);
        for (int i = 0; i < n; i++) {
            boolean nan = Float.isNaN(o[i * d]);
            assertEquals(i == 5, nan, "row " + i + " (NaN in Q row 5: its own scale group)");
        }

        var v = base.v().data().clone();
        v[40 * d + 3] = Float.NaN;
        o = run(opts, base.q().data(), base.k().data(), v, n, d);
        for (int i = 0; i < n; i++) {
            for (int c = 0; c < d; c++) {
                assertEquals(c == 3, Float.isNaN(o[i * d + c]), "row " + i + " channel " + c + " (NaN in V channel 3)");
            }
        }

        var k = base.k().data().clone();
        k[40 * d] = Float.NaN;
        o = run(opts, base.q().data(), k, base.v().data(), n, d);
        for (int i = 0; i < n; i++) {
            assertTrue(Float.isNaN(o[i * d]), "row " + i + " (NaN in K reaches every row through the K mean)");
        }
    }

    private static float[] run(AttentionOptions opts, float[] q, float[] k, float[] v, int n, int d) {
        return sage.forward(opts, new dev.sagejit.api.HostQkv(Layout.BHSD, 1, 1, 1, n, n, d, q, k, v)).o();
    }

    /** A problem of the case's shape on scratch addresses, only to ask the launcher for its plan. */
    private static FwdProblem probe(Case c) {
        DType t = c.precision().inputType();
        var opts = AttentionOptions.builder().precision(c.precision()).causal(c.causal()).lse(true).tiles(c.tiles()).build();
        var q = DeviceTensor.contiguous(256, t, c.layout(), c.b(), c.hq(), c.nq(), c.d());
        var k = DeviceTensor.contiguous(256, t, c.layout(), c.b(), c.hkv(), c.nk(), c.d());
        return new FwdProblem(opts, q, k, k, q, 256);
    }


    private static DeviceBuffer upload(HostTensor x, DType t) {
        return DeviceCopies.upload(sage.device(), x, t);
    }

    private static DeviceTensor tensor(DeviceBuffer b, DType t, HostTensor like) {
        return DeviceCopies.tensor(b, t, like);
    }

    private static byte[] bytes(DeviceBuffer b, int n) {
        return DeviceCopies.bytes(b, n);
    }

    private static float[] floats(DeviceBuffer b, int n) {
        return DeviceCopies.floats(b, n);
    }
}
