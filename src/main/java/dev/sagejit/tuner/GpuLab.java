package dev.sagejit.tuner;

import dev.sagejit.api.AttentionOptions;
import dev.sagejit.api.SageAttention;
import dev.sagejit.bench.Accuracy;
import dev.sagejit.bench.BenchCase;
import dev.sagejit.bench.FwdBenchmark;
import dev.sagejit.kernel.FwdKernelPlan;
import dev.sagejit.kernel.SageInternals;
import dev.sagejit.reference.AttentionProblem;
import dev.sagejit.reference.Inputs;
import dev.sagejit.spec.Direction;
import dev.sagejit.spec.KernelSpec;
import dev.sagejit.spec.TileConfig;
import java.util.Optional;

/**
 * The {@link Lab} of a real GPU: compiles through the engine's NVRTC and kernel cache, checks a
 * candidate on a small problem of the case's spec (Gaussian inputs, at most {@link #CHECK_LENGTH}
 * tokens, the issue bars of its precision against the FP64 CPU reference), and times it on the
 * case's full shape with {@link FwdBenchmark} (rotated inputs larger than the L2, CUDA events after
 * a warm-up; int8-fp8 kernel-only, since tiles change only the attention kernel).
 */
public final class GpuLab implements Lab {
    /** Longest sequence of the correctness check (the FP64 reference runs on the CPU). */
    public static final int CHECK_LENGTH = 512;
    /** Untimed launches before each timing. */
    static final int WARMUP = 5;

    private final SageAttention sage;

    public GpuLab(SageAttention sage) {
        this.sage = sage;
    }

    @Override
    public KernelSpec spec(BenchCase c) {
        return new KernelSpec(Direction.FWD, SageInternals.arch(sage), c.precision(), c.headDim(), c.causal(), false);
    }

    @Override
    public Optional<String> whyNot(BenchCase c, TileConfig tiles) {
        try {
            new FwdKernelPlan(spec(c), tiles);
            return Optional.empty();
        } catch (IllegalArgumentException e) {
            return Optional.of(e.getMessage());
        }
    }

    @Override
    public int compile(KernelSpec spec, TileConfig tiles) {
        var report = SageInternals.launcher(sage).compile(new FwdKernelPlan(spec, tiles)).report();
        return report.spillStoreBytes() + report.spillLoadBytes();
    }

    @Override
    public Optional<String> check(BenchCase c, TileConfig tiles) {
        int group = c.heads() / c.kvHeads();
        var p = new AttentionProblem(1, group, 1, Math.min(c.nq(), CHECK_LENGTH), Math.min(c.nk(), CHECK_LENGTH),
                c.headDim(), c.causal());
        var opts = AttentionOptions.builder().precision(c.precision()).causal(c.causal()).tiles(tiles.key()).build();
        var errors = Accuracy.check(sage, opts, p, Inputs.GAUSSIAN, c.layout(), 17).o();
        boolean ok = c.precision().quantized() ? Accuracy.quantizedBar(Inputs.GAUSSIAN).passes(errors)
                : errors.relL2() <= Accuracy.tolerance(c.precision());
        return ok ? Optional.empty() : Optional.of("O against FP64 on " + p + ": " + errors.summary());
    }

    @Override
    public Timing time(BenchCase c, TileConfig tiles, double minTotalMs) {
        var m = new FwdBenchmark(sage).measure(c, tiles.key(), FwdBenchmark.Scope.KERNEL, WARMUP, minTotalMs);
        return new Timing(m.timing().medianMs(), m.timing().p20Ms(), m.timing().p80Ms());
    }
}
