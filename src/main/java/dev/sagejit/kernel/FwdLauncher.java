package dev.sagejit.kernel;

import dev.sagejit.api.DeviceTensor;
import dev.sagejit.api.SageException;
import dev.sagejit.runtime.KernelArgs;
import dev.sagejit.runtime.LaunchGeometry;
import dev.sagejit.runtime.Stream;
import dev.sagejit.spec.Arch;
import dev.sagejit.spec.Direction;
import dev.sagejit.spec.KernelSpec;
import dev.sagejit.spec.TileConfig;
import dev.sagejit.spec.TileTable;
import dev.sagejit.tune.ShapeBucket;
import dev.sagejit.tune.TunedConfig;
import dev.sagejit.tune.TuningDatabase;

/** Chooses, builds and launches the forward kernel for a validated {@link FwdProblem}. */
public final class FwdLauncher {

    private final KernelLoader loader;
    private final Arch arch;
    private final Sage2Launcher sage2;
    private final TuningDatabase tuning;

    /** A launcher that uses TileTable defaults only. */
    public FwdLauncher(KernelLoader loader) {
        this(loader, null);
    }

    /**
     * A launcher that prefers tuned tile configs from {@code tuning} (may be null) over the
     * TileTable defaults.
     */
    public FwdLauncher(KernelLoader loader, TuningDatabase tuning) {
        this.loader = loader;
        this.tuning = tuning;
        this.sage2 = new Sage2Launcher(loader);
        var d = loader.device();
        this.arch = Arch.forDevice(d.major(), d.minor());
    }

    /**
     * The tile config a spec runs with on a problem of {@code keys} key tokens in the given shape
     * bucket: the tuning database's record when there is one that still fits the spec, else the
     * TileTable default for that length.
     */
    static TileConfig chooseTiles(KernelSpec spec, int keys, String bucket, TuningDatabase tuning) {
        if (tuning != null) {
            var tuned = tuning.lookup(spec.key(), bucket).map(TunedConfig::tileConfig)
                    .filter(t -> TileTable.whyInvalid(spec, t).isEmpty());
            if (tuned.isPresent()) {
                return tuned.get();
            }
        }
        return TileTable.choose(spec, keys).tiles();
    }

    /**
     * Compiles a plan's kernel on the CPU without loading it (the kernel cache keeps it for the later
     * launch); safe to call from several threads. Tuners compile their candidates this way.
     *
     * @throws IllegalStateException when ptxas serialized the kernel's wgmma instructions
     */
    public dev.sagejit.compile.CompiledKernel compile(FwdKernelPlan plan) {
        var compiled = loader.compiler().compile(KernelLoader.source(loader.renderer(), plan),
                dev.sagejit.compile.CompileOptions.cubin(plan.spec().arch()));
        var serialized = dev.sagejit.compile.PtxasReport.wgmmaSerialization(compiled.log());
        if (serialized.isPresent()) {
            throw new IllegalStateException("ptxas serialized the wgmma instructions of " + plan.key() + ": "
                    + serialized.get());
        }
        return compiled;
    }

    /**
     * The NVFP4 quantizers (SageAttention3's operands, bit-identical to {@code Nvfp4Reference}); the
     * NVFP4 attention kernels that will consume them are not built yet.
     */
    public Nvfp4Quantizer nvfp4Quantizer() {
        return new Nvfp4Quantizer(loader);
    }

    /** NVFP4 attention (quantizers + kernel; emulated with 16-bit MMAs on GPUs without FP4 tensor cores). */
    public Nvfp4Attention nvfp4Attention() {
        return new Nvfp4Attention(loader);
    }

    /** The 16-bit attention backward (FlashAttention-2's algorithm, mma.sync). */
    public FlashBackward flashBackward() {
        return new FlashBackward(loader);
    }

    /** SageBwd: the 8-bit training forward and backward. */
    public SageBwd sageBwd() {
        return new SageBwd(loader);
    }

    /** Forward kernels loaded so far (each plan key compiles and loads once, whatever the threads). */
    public int loadedKernels() {
        return loader.loadedCount();
    }

    /** The tuning database this launcher consults, or null. */
    public TuningDatabase tuning() {
        return tuning;
    }

    /**
     * Enqueues only the int8-fp8 quantizers of a problem (what end-to-end timing adds to the kernel),
     * returning nothing; the attention kernel is not launched.
     */
    public void quantizeOnly(FwdProblem p, Stream stream) {
        quantizeInto(p, stream);
    }

    /** {@link #quantizeOnly}, returning the workspace views that hold the result (tests read them back). */
    Sage2Workspace.Views quantizeInto(FwdProblem problem, Stream stream) {
        FwdProblem p = problem.resolved(arch);
        var plan = plan(p);
        if (!plan.spec().precision().quantized()) {
            throw new SageException.InvalidInput("precision " + plan.spec().precision().id() + " has no quantizers");
        }
        return sage2.quantize(p, plan, stream);
    }

    /** Releases the int8-fp8 workspace. */
    public void close() {
        sage2.close();
    }

    public Arch arch() {
        return arch;
    }

    /** Key blocks the int8-fp8 wgmma kernels stamp a phase timeline for (0: plain kernels). */
    private volatile int timelineBlocks;
    /** The last instrumented plan launched, whose module holds the timeline. */
    private volatile FwdKernelPlan lastTimelinePlan;

    /**
     * From now on, builds the int8-fp8 wgmma kernels with a phase timeline over each block's first
     * {@code blocks} key blocks ({@link Timeline}; 0 turns it off). A diagnostic: the stamps cost a few
     * instructions per key block.
     */
    public void recordTimeline(int blocks) {
        if (blocks < 0) {
            throw new IllegalArgumentException("timeline blocks must be >= 0, got " + blocks);
        }
        timelineBlocks = blocks;
    }

    /** The timeline rows of the last instrumented launch (finished: the caller synchronized), or none. */
    public java.util.List<Timeline.Row> timeline() {
        var plan = lastTimelinePlan;
        return plan == null ? java.util.List.of() : Timeline.read(loader.get(plan).kernel().module(), plan);
    }

    /**
     * The plan a problem runs with: forced tiles from the options, else the TileTable default. A
     * wgmma default falls back to mma.sync when TMA cannot describe the tensors (a zero stride,
     * e.g. a batch broadcast); forced wgmma tiles then fail with the reason.
     */
    public FwdKernelPlan plan(FwdProblem problem) {
        FwdProblem p = problem.resolved(arch);
        var o = p.options();
        if (o.precision().nvfp4()) {
            throw new SageException.InvalidInput(o.precision().id() + " runs through Nvfp4Attention (fixed 64 x 64"
                    + " blocks), not a tile-config plan; tiles, tuning and kernel-only timing are for bf16, fp16 and"
                    + " int8-fp8");
        }
        var spec = new KernelSpec(Direction.FWD, arch, o.precision(), p.q().headDim(), o.causal(), o.lse());
        if (o.tiles().isPresent()) {
            var plan = new FwdKernelPlan(spec, TileConfig.parse(o.tiles().get()));
            if (plan.loadsInputsThroughTma()) {
                TmaOperands.whyNot(p, plan).ifPresent(why -> {
                    throw new SageException.InvalidInput("tiles " + plan.tiles().key() + " load through TMA, but " + why
                            + "; use an mma.sync tile config (e.g. " + TileTable.chooseMmaSync(spec).tiles().key() + ")");
                });
            }
            return plan;
        }
        String bucket = ShapeBucket.keyOf(p.batch(), p.heads(), p.q().seq(), p.k().seq());
        var plan = new FwdKernelPlan(spec, chooseTiles(spec, p.k().seq(), bucket, tuning));
        if (plan.loadsInputsThroughTma() && TmaOperands.whyNot(p, plan).isPresent()) {
            return new FwdKernelPlan(spec, TileTable.chooseMmaSync(spec).tiles());
        }
        return plan;
    }

    /**
     * Launches the forward pass on {@code stream}; returns the ready kernel used (null for the NVFP4
     * modes, whose quantizers and kernel {@link Nvfp4Attention} runs and waits for).
     */
    public KernelLoader.Ready launch(FwdProblem problem, Stream stream) {
        FwdProblem p = problem.resolved(arch);
        if (p.options().precision().nvfp4()) {
            launchNvfp4(p, stream);
            return null;
        }
        return launch(p, stream, false);
    }

    private void launchNvfp4(FwdProblem p, Stream stream) {
        if (p.q().seq() == 0 || p.batch() == 0) {
            return;
        }
        var mode = p.options().precision() == dev.sagejit.api.Precision.NVFP4 ? Nvfp4FwdPlan.Mode.NATIVE
                : Nvfp4FwdPlan.Mode.EMULATED;
        var o = p.options();
        nvfp4Attention().forward(mode, p.q(), p.k(), p.v(), p.o(), p.lseAddress(), o, Nvfp4FwdPlan.OPTIONS, arch,
                stream);
    }

    /**
     * Launches only the attention kernel: for int8-fp8, over the operands the last
     * {@link #quantizeOnly} of a problem of this shape left in the workspace (kernel-only timing);
     * for the 16-bit modes the same as {@link #launch(FwdProblem, Stream)}.
     */
    public KernelLoader.Ready launchKernelOnly(FwdProblem p, Stream stream) {
        return launch(p.resolved(arch), stream, true);
    }

    /** Launches a problem whose precision is resolved (public entry points resolve AUTO first). */
    private KernelLoader.Ready launch(FwdProblem p, Stream stream, boolean kernelOnly) {
        var plan = plan(p);
        if (timelineBlocks > 0 && plan.persistent()) {
            plan = plan.withTimeline(timelineBlocks);
            lastTimelinePlan = plan;
        }
        var ready = loader.get(plan);
        if (p.q().seq() == 0 || p.batch() == 0) {
            return ready;
        }
        int[] grid = plan.grid(p.batch(), p.heads(), p.q().seq());
        var geometry = new LaunchGeometry(grid[0], grid[1], grid[2], plan.threads(), 1, 1, plan.sharedBytes());
        float scaleLog2 = p.options().scaleLog2(p.q().headDim());
        if (plan.spec().precision().quantized()) {
            if (kernelOnly) {
                sage2.attendOnly(p, plan, ready, scaleLog2, stream);
            } else {
                sage2.launch(p, plan, ready, scaleLog2, stream);
            }
            return ready;
        }
        var args = KernelArgs.builder();
        if (plan.usesTensorMaps()) {
            var maps = TmaOperands.encode(p, plan);
            args.blob(maps.q().bytes()).blob(maps.k().bytes()).blob(maps.v().bytes())
                    .ptr(p.o().address()).ptr(p.lseAddress());
            args.i64(p.o().batchStride()).i64(p.o().headStride()).i64(p.o().seqStride());
        } else {
            args.ptr(p.q().address()).ptr(p.k().address()).ptr(p.v().address()).ptr(p.o().address())
                    .ptr(p.lseAddress());
            for (DeviceTensor t : new DeviceTensor[] {p.q(), p.k(), p.v(), p.o()}) {
                args.i64(t.batchStride()).i64(t.headStride()).i64(t.seqStride());
            }
        }
        args.i32(p.q().seq()).i32(p.k().seq()).i32(p.group()).f32(scaleLog2);
        if (grid[0] <= 0) {
            throw new SageException.InvalidInput("empty launch grid for " + p);
        }
        ready.kernel().launch(geometry, stream, args.build());
        return ready;
    }
}
