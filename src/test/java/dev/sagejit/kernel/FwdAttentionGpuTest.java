package dev.sagejit.kernel;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sagejit.api.AttentionOptions;
import dev.sagejit.api.DType;
import dev.sagejit.api.DeviceTensor;
import dev.sagejit.api.HostQkv;
import dev.sagejit.api.Layout;
import dev.sagejit.api.Precision;
import dev.sagejit.api.SageAttention;
import dev.sagejit.api.SageException;
import dev.sagejit.bench.Accuracy;
import dev.sagejit.reference.AttentionProblem;
import dev.sagejit.reference.Inputs;
import dev.sagejit.spec.Direction;
import dev.sagejit.spec.KernelSpec;
import dev.sagejit.spec.TileTable;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The forward kernels on a real GPU against the FP64 CPU reference, over the matrix of options:
 * dtype x head dim x causal x LSE, ragged and unequal lengths, GQA/MQA, both layouts, long sequences,
 * every tile candidate. Runs only where a GPU is (scripts/gpu-suite.sh).
 */
@Tag("gpu")
class FwdAttentionGpuTest extends dev.sagejit.testing.GpuSession {
    /** Relative L2 error bounds of O against FP64 (issue 2's bars). */
    static final double BF16_TOL = Accuracy.tolerance(Precision.BF16);
    static final double FP16_TOL = Accuracy.tolerance(Precision.FP16);
    /** Absolute LSE error bound: LSE is FP32 from an FP32 row max and sum. */
    static final double LSE_TOL = 2e-3;


    record Case(String name, Precision precision, int batch, int hq, int hkv, int nq, int nk, int d, boolean causal,
            boolean lse, Layout layout, String family, String tiles) {
        @Override
        public String toString() {
            return name;
        }
    }

    static Case c(Precision p, int b, int hq, int hkv, int nq, int nk, int d, boolean causal, Layout layout,
            String tiles) {
        String name = p.id() + " " + b + "x" + hq + "/" + hkv + "x" + nq + "/" + nk + "xd" + d + (causal ? " causal" : "")
                + " " + layout + (tiles != null ? " " + tiles : "");
        return new Case(name, p, b, hq, hkv, nq, nk, d, causal, true, layout, Inputs.GAUSSIAN, tiles);
    }

    static Stream<Arguments> matrix() {
        var out = new ArrayList<Case>();
        for (Precision p : List.of(Precision.BF16, Precision.FP16)) {
            for (int d : new int[] {64, 128}) {
                for (boolean causal : new boolean[] {false, true}) {
                    out.add(c(p, 2, 4, 4, 1000, 1000, d, causal, Layout.BHSD, null));
                    out.add(c(p, 1, 4, 2, 333, 777, d, causal, Layout.BSHD, null));
                    out.add(c(p, 1, 2, 2, 777, 300, d, causal, Layout.BHSD, null));
                }
            }
        }
        out.add(c(Precision.BF16, 1, 32, 8, 512, 512, 128, true, Layout.BHSD, null));
        out.add(c(Precision.FP16, 1, 32, 1, 512, 512, 64, false, Layout.BSHD, null));
        out.add(c(Precision.BF16, 1, 32, 1, 300, 300, 128, true, Layout.BSHD, null));
        out.add(c(Precision.BF16, 2, 2, 2, 1, 1, 128, true, Layout.BHSD, null));
        out.add(c(Precision.FP16, 1, 2, 2, 17, 5, 64, false, Layout.BHSD, null));
        out.add(c(Precision.BF16, 1, 2, 2, 32768, 32768, 128, true, Layout.BHSD, null));
        out.add(c(Precision.FP16, 1, 2, 1, 16384, 16384, 64, false, Layout.BSHD, null));
        for (Precision p : List.of(Precision.BF16, Precision.FP16)) {
            for (int d : new int[] {64, 128}) {
                var spec = new KernelSpec(Direction.FWD, SageInternals.arch(sage()), p, d, true, true);
                for (var tiles : TileTable.candidates(spec)) {
                    out.add(c(p, 1, 2, 2, 600, 600, d, true, Layout.BHSD, tiles.key()));
                }
            }
        }
        for (String family : List.of(Inputs.K_CHANNEL_OFFSET, Inputs.HEAVY_TAIL, Inputs.PEAKY)) {
            var base = c(Precision.BF16, 1, 4, 4, 1024, 1024, 128, false, Layout.BHSD, null);
            out.add(new Case(base.name() + " " + family, base.precision(), 1, 4, 4, 1024, 1024, 128, false, true,
                    Layout.BHSD, family, null));
        }
        return out.stream().map(Arguments::of);
    }

    private static SageAttention sage() {
        if (sage == null) {  // argument factories may run before the class's @BeforeAll
            sage = SageAttention.open();
        }
        return sage;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("matrix")
    void matchesFp64Reference(Case c) {
        var p = new AttentionProblem(c.batch(), c.hq(), c.hkv(), c.nq(), c.nk(), c.d(), c.causal());
        var opts = AttentionOptions.builder().precision(c.precision()).causal(c.causal()).lse(c.lse())
                .tiles(c.tiles()).build();
        var outcome = Accuracy.check(sage(), opts, p, c.family(), c.layout(), 42);
        double tol = c.precision() == Precision.BF16 ? BF16_TOL : FP16_TOL;
        System.out.println(c + ": O " + outcome.o().summary() + "; LSE max abs " + outcome.lse().maxAbs());
        assertTrue(outcome.o().finite(), "non-finite output: " + outcome.o().summary());
        assertTrue(outcome.o().relL2() < tol, c + ": relative L2 " + outcome.o().relL2() + " >= " + tol);
        assertTrue(outcome.lse().maxAbs() < LSE_TOL || !Double.isFinite(outcome.lse().maxAbs()) && false,
                c + ": LSE max abs error " + outcome.lse().maxAbs());
    }

    @Test
    void customScaleIsApplied() {
        var p = new AttentionProblem(1, 2, 2, 256, 256, 64, false, 0.3);
        var opts = AttentionOptions.builder().scale(0.3).lse(true).build();
        var outcome = Accuracy.check(sage(), opts, p, Inputs.GAUSSIAN, Layout.BHSD, 7);
        assertTrue(outcome.o().relL2() < BF16_TOL, outcome.o().summary());
        assertTrue(outcome.lse().maxAbs() < LSE_TOL, "LSE " + outcome.lse().maxAbs());
    }

    @Test
    void emptyKeysGiveZeroOutputAndMinusInfinityLse() {
        float[] q = new float[2 * 64];
        java.util.Arrays.fill(q, 1f);
        var out = sage().forward(AttentionOptions.builder().lse(true).build(),
                new HostQkv(Layout.BHSD, 1, 1, 1, 2, 0, 64, q, new float[0], new float[0]));
        assertArrayEquals(new float[2 * 64], out.o());
        assertEquals(Float.NEGATIVE_INFINITY, out.lse()[0]);
        assertEquals(Float.NEGATIVE_INFINITY, out.lse()[1]);
    }

    @Test
    void nanInOneKeyReachesOnlyTheRowsThatSeeIt() {
        int n = 64, d = 64;
        var raw = Inputs.generate(Inputs.GAUSSIAN, new AttentionProblem(1, 1, 1, n, n, d, true), Layout.BHSD, 3);
        raw.k().set(0, 0, 40, 0, Float.NaN);
        var out = sage().forward(AttentionOptions.builder().causal(true).build(), new HostQkv(Layout.BHSD, 1, 1, 1, n,
                n, d, raw.q().data(), raw.k().data(), raw.v().data()));
        for (int i = 0; i < n; i++) {
            boolean nan = Float.isNaN(out.o()[i * d]);
            assertEquals(i >= 40, nan, "row " + i + " sees key 40: " + (i >= 40));
        }
    }

    @Test
    void badInputsAreRejectedBeforeLaunch() {
        var bf = AttentionOptions.builder().build();
        long a = 1 << 20;
        var q = DeviceTensor.contiguous(a, DType.BF16, Layout.BHSD, 1, 4, 128, 128);
        var kv = DeviceTensor.contiguous(a, DType.BF16, Layout.BHSD, 1, 3, 128, 128);
        assertThrows(SageException.InvalidInput.class, () -> sage().forward(bf, q, kv, kv, q, 0, null));
        var fp = DeviceTensor.contiguous(a, DType.FP16, Layout.BHSD, 1, 4, 128, 128);
        assertThrows(SageException.InvalidInput.class, () -> sage().forward(bf, q, fp, fp, q, 0, null));
        var d96 = DeviceTensor.contiguous(a, DType.BF16, Layout.BHSD, 1, 4, 128, 96);
        assertThrows(SageException.Unsupported.class, () -> sage().forward(bf, d96, d96, d96, d96, 0, null));
        var odd = DeviceTensor.contiguous(a + 2, DType.BF16, Layout.BHSD, 1, 4, 128, 128);
        assertThrows(SageException.InvalidInput.class, () -> sage().forward(bf, odd, q, q, q, 0, null));
    }
}
