package dev.sagejit.cli;

import dev.sagejit.api.Precision;
import dev.sagejit.api.SageException;
import dev.sagejit.codegen.TemplateRenderer;
import dev.sagejit.compile.CompileOptions;
import dev.sagejit.compile.CompiledKernel;
import dev.sagejit.compile.KernelCache;
import dev.sagejit.compile.KernelCompiler;
import dev.sagejit.compile.KernelSource;
import dev.sagejit.compile.Nvrtc;
import dev.sagejit.compile.PtxasReport;
import dev.sagejit.kernel.FwdKernelPlan;
import dev.sagejit.kernel.KernelLoader;
import dev.sagejit.kernel.FlashBwdPlan;
import dev.sagejit.kernel.Nvfp4FwdPlan;
import dev.sagejit.kernel.Nvfp4QuantPlan;
import dev.sagejit.kernel.Sage2QuantPlan;
import dev.sagejit.kernel.SageBwdPlan;
import dev.sagejit.kernel.SageBwdQuantPlan;
import dev.sagejit.spec.Arch;
import dev.sagejit.spec.Direction;
import dev.sagejit.spec.KernelSpec;
import dev.sagejit.spec.TileConfig;
import dev.sagejit.spec.TileTable;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Function;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** Renders and compiles kernels without a GPU: one spec, or the whole baseline family. */
@Command(name = "compile", mixinStandardHelpOptions = true,
        description = "Render and compile forward kernels with NVRTC (no GPU needed).")
final class CompileCommand implements Callable<Integer> {
    /** Log lines shown for each failed compile; the rest is in the dumped source's folder. */
    private static final int LOG_LINES = 12;

    @ParentCommand
    Main main;

    @Spec
    CommandSpec spec;

    @Option(names = "--precision", defaultValue = "bf16", converter = Converters.PrecisionConverter.class,
            description = "A forward precision: bf16, fp16, int8-fp8 or int8-fp8-fp16, or sagebwd / sagebwd-fp16 (the"
                    + " training module and its quantizers) (default ${DEFAULT-VALUE}); --all adds the NVFP4, backward"
                    + " and SageBwd modules.")
    Precision precision;

    @Option(names = "--head-dim", defaultValue = "128", description = "64 or 128 (default ${DEFAULT-VALUE}).")
    int headDim;

    @Option(names = "--causal", description = "Bottom-right aligned causal mask.")
    boolean causal;

    @Option(names = "--lse", description = "Kernel also writes the log-sum-exp.")
    boolean lse;

    @Option(names = "--tiles", converter = Converters.TilesConverter.class,
            description = "Tile config key, e.g. m128n64w4s2 (default: TileTable's choice).")
    String tiles;

    @Option(names = "--all", description = "Every spec of the baseline and int8-fp8 families (with their quantizers)"
            + " and the NVFP4 quantizers and (sm_120a) attention kernels,"
            + " default tiles.")
    boolean all;

    @Option(names = "--all-tiles", description = "With --all: every candidate tile config of each spec.")
    boolean allTiles;

    @Option(names = "--arch", split = ",", defaultValue = "sm_90a", converter = Converters.ArchConverter.class,
            description = "Target archs, comma separated (default ${DEFAULT-VALUE}).")
    List<Arch> archs;

    @Option(names = "--backend", defaultValue = "auto",
            description = "auto (newest NVRTC per arch), jcuda, ffm or all (default ${DEFAULT-VALUE}).")
    NvrtcChoice backend;

    @Option(names = "--ptx", description = "Emit PTX instead of a cubin (no register report).")
    boolean ptx;

    @Option(names = "--emit-dir", description = "Write each .cu and .cubin/.ptx to this folder.")
    Path emitDir;

    @Option(names = "--jobs", description = "Parallel compiles (default: available processors).")
    int jobs = Runtime.getRuntime().availableProcessors();

    /** One module to build: an attention kernel plan or a quantizer module, with its NVRTC. */
    record Variant(String key, Arch arch, int dynamicSharedBytes, Function<TemplateRenderer, KernelSource> source,
            Nvrtc nvrtc) {
        static Variant of(FwdKernelPlan plan, Nvrtc nvrtc) {
            return new Variant(plan.key(), plan.spec().arch(), plan.sharedBytes(), r -> KernelLoader.source(r, plan), nvrtc);
        }

        static Variant of(Sage2QuantPlan plan, Nvrtc nvrtc) {
            return new Variant(plan.key(), plan.arch(), 0, r -> KernelLoader.source(r, plan), nvrtc);
        }

        static Variant of(Nvfp4QuantPlan plan, Nvrtc nvrtc) {
            return new Variant(plan.key(), plan.arch(), 0, r -> KernelLoader.source(r, plan), nvrtc);
        }

        static Variant of(Nvfp4FwdPlan plan, Nvrtc nvrtc) {
            return new Variant(plan.key(), plan.arch(), 0, r -> KernelLoader.source(r, plan), nvrtc);
        }

        static Variant of(FlashBwdPlan plan, Nvrtc nvrtc) {
            return new Variant(plan.key(), plan.arch(), plan.sharedBytes(), r -> KernelLoader.source(r, plan), nvrtc);
        }

        static Variant of(SageBwdPlan plan, Nvrtc nvrtc) {
            return new Variant(plan.key(), plan.arch(), plan.backwardSharedBytes(), r -> KernelLoader.source(r, plan),
                    nvrtc);
        }

        static Variant of(SageBwdQuantPlan plan, Nvrtc nvrtc) {
            return new Variant(plan.key(), plan.arch(), 0, r -> KernelLoader.source(r, plan), nvrtc);
        }

        String label() {
            return key + " " + nvrtc.backend() + "-" + nvrtc.version();
        }
    }

    @Override
    public Integer call() {
        if (allTiles && !all) {
            throw new IllegalArgumentException("--all-tiles needs --all");
        }
        if (jobs < 1) {
            throw new IllegalArgumentException("--jobs must be at least 1, got " + jobs);
        }
        PrintWriter out = spec.commandLine().getOut();
        var knobs = main.knobs();
        List<Nvrtc> bound = backend.bind(knobs);
        var cache = new KernelCache(knobs);
        var renderer = new TemplateRenderer();
        List<Variant> variants = new ArrayList<>();
        List<String> unserved = new ArrayList<>();
        for (Arch arch : archs) {
            List<Nvrtc> compilers = backend.forArch(bound, arch);
            if (compilers.isEmpty()) {
                unserved.add(arch.name() + ": no " + backend.name().toLowerCase(Locale.ROOT)
                        + " NVRTC found targets it (found " + bound + "); " + NvrtcChoice.INSTALL_HINT);
                continue;
            }
            if (!all && precision.sageBwd()) {
                // One SageBwd module (training forward and backward) and its quantizer module.
                var sb = new SageBwdPlan(arch, precision.inputType(), headDim, causal);
                compilers.forEach(n -> variants.add(Variant.of(sb, n)));
                var qp = new SageBwdQuantPlan(arch, sb.type(), headDim);
                compilers.forEach(n -> variants.add(Variant.of(qp, n)));
                continue;
            }
            for (FwdKernelPlan plan : plans(arch)) {
                compilers.forEach(n -> variants.add(Variant.of(plan, n)));
            }
            for (Sage2QuantPlan plan : quantizers(arch)) {
                compilers.forEach(n -> variants.add(Variant.of(plan, n)));
            }
            for (Nvfp4QuantPlan plan : nvfp4Quantizers(arch)) {
                compilers.forEach(n -> variants.add(Variant.of(plan, n)));
            }
            for (Nvfp4FwdPlan plan : nvfp4Kernels(arch)) {
                compilers.forEach(n -> variants.add(Variant.of(plan, n)));
            }
            for (FlashBwdPlan plan : backwardKernels(arch)) {
                compilers.forEach(n -> variants.add(Variant.of(plan, n)));
                for (SageBwdPlan sb : sageBwdKernels(plan)) {
                    compilers.forEach(n -> variants.add(Variant.of(sb, n)));
                }
            }
            for (SageBwdQuantPlan plan : sageBwdQuantizers(arch)) {
                compilers.forEach(n -> variants.add(Variant.of(plan, n)));
            }
        }
        int failed = unserved.size();
        unserved.forEach(u -> out.println("FAILED " + u));
        var pool = Executors.newFixedThreadPool(jobs);
        try {
            List<Future<String>> results = new ArrayList<>();
            for (Variant v : variants) {
                results.add(pool.submit(() -> compileOne(v, cache, renderer)));
            }
            for (int i = 0; i < results.size(); i++) {
                try {
                    out.println(results.get(i).get());
                } catch (ExecutionException e) {
                    failed++;
                    out.println(failure(variants.get(i), e.getCause()));
                }
                out.flush();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while compiling", e);
        } finally {
            pool.shutdownNow();
        }
        out.println((variants.size() + unserved.size() - failed) + " compiled, " + failed + " failed");
        return failed > 0 ? 1 : 0;
    }

    /** The plans to build for one arch, validating a single spec's tile choice. */
    private List<FwdKernelPlan> plans(Arch arch) {
        if (!all) {
            var one = new KernelSpec(Direction.FWD, arch, precision, headDim, causal, lse);
            TileConfig t = tiles == null ? TileTable.choose(one).tiles() : TileConfig.parse(tiles);
            return List.of(new FwdKernelPlan(one, t));
        }
        var plans = new ArrayList<FwdKernelPlan>();
        var specs = new ArrayList<>(KernelSpec.baselineFamily(arch));
        specs.addAll(KernelSpec.sage2Family(arch));
        for (KernelSpec s : specs) {
            List<TileConfig> configs = allTiles ? TileTable.candidates(s) : List.of(TileTable.choose(s).tiles());
            configs.forEach(t -> plans.add(new FwdKernelPlan(s, t)));
        }
        return plans;
    }

    /** The quantizer modules the chosen attention kernels need on one arch. */
    private List<Sage2QuantPlan> quantizers(Arch arch) {
        var out = new java.util.LinkedHashSet<Sage2QuantPlan>();
        for (FwdKernelPlan plan : plans(arch)) {
            if (plan.spec().precision().quantized()) {
                out.add(new Sage2QuantPlan(arch, plan.spec().elementType(), plan.spec().headDim()));
            }
        }
        return List.copyOf(out);
    }

    /** With --all, the NVFP4 quantizer modules (every input type and head dim) on archs with FP8 conversions. */
    private List<Nvfp4QuantPlan> nvfp4Quantizers(Arch arch) {
        if (!all || !arch.has(dev.sagejit.spec.MmaKind.MMA_SYNC_FP8)) {
            return List.of();
        }
        return KernelSpec.baselineFamily(arch).stream().map(s -> new Nvfp4QuantPlan(arch, s.elementType(), s.headDim()))
                .distinct().toList();
    }

    /**
     * With --all, every NVFP4 attention variant (the baseline family's types, head dims, masks and LSE):
     * native on archs with the block-scaled FP4 MMA (sm_120a), emulated with 16-bit MMAs on the other
     * archs with FP8 conversions (sm_89, sm_90a).
     */
    private List<Nvfp4FwdPlan> nvfp4Kernels(Arch arch) {
        if (!all || !(arch.has(dev.sagejit.spec.MmaKind.MMA_BLOCK_SCALE_FP4)
                || arch.has(dev.sagejit.spec.MmaKind.MMA_SYNC_FP8))) {
            return List.of();
        }
        return KernelSpec.baselineFamily(arch).stream()
                .map(s -> new Nvfp4FwdPlan(arch, s.elementType(), s.headDim(), s.causal(), s.lse())).toList();
    }

    /** With --all, the 16-bit backward modules: one per baseline forward without LSE (type, head dim, mask). */
    private List<FlashBwdPlan> backwardKernels(Arch arch) {
        if (!all) {
            return List.of();
        }
        return KernelSpec.baselineFamily(arch).stream().filter(s -> !s.lse())
                .map(s -> new FlashBwdPlan(arch, s.elementType(), s.headDim(), s.causal())).toList();
    }

    /** SageBwd's module of a 16-bit backward's type, head dim and mask, on archs with INT8 mma.sync. */
    private static List<SageBwdPlan> sageBwdKernels(FlashBwdPlan plan) {
        return plan.arch().has(dev.sagejit.spec.MmaKind.MMA_SYNC_INT8)
                ? List.of(new SageBwdPlan(plan.arch(), plan.type(), plan.headDim(), plan.causal())) : List.of();
    }

    /** With --all, SageBwd's quantizer modules (every type and head dim) on archs with INT8 mma.sync. */
    private List<SageBwdQuantPlan> sageBwdQuantizers(Arch arch) {
        return backwardKernels(arch).stream().flatMap(p -> sageBwdKernels(p).stream())
                .map(p -> new SageBwdQuantPlan(arch, p.type(), p.headDim())).distinct().toList();
    }

    private String compileOne(Variant v, KernelCache cache, TemplateRenderer renderer) throws IOException {
        KernelSource source = v.source().apply(renderer);
        var options = ptx ? CompileOptions.ptx(v.arch()) : CompileOptions.cubin(v.arch());
        CompiledKernel k = new KernelCompiler(main.knobs(), v.nvrtc(), cache).compile(source, options);
        if (emitDir != null) {
            emit(v, source, k);
        }
        var serialized = PtxasReport.wgmmaSerialization(k.log());
        if (serialized.isPresent()) {
            throw new IllegalStateException("ptxas serialized its wgmma instructions (the kernel would run but lose"
                    + " its tensor-core pipeline): " + serialized.get());
        }
        var r = k.report();
        String resources = ptx ? "regs -  spill -  smem " + v.dynamicSharedBytes() + " B"
                : String.format(Locale.ROOT, "regs %3d  spill %d/%d B  smem %d B", r.registers(), r.spillStoreBytes(),
                        r.spillLoadBytes(), r.sharedBytes() + v.dynamicSharedBytes());
        return String.format(Locale.ROOT, "%-44s %-10s %s  %6d ms  %s", v.key(),
                v.nvrtc().backend() + "-" + v.nvrtc().version(), resources, k.compileTime().toMillis(),
                k.fromCache() ? "cached" : "compiled");
    }

    private void emit(Variant v, KernelSource source, CompiledKernel k) throws IOException {
        Files.createDirectories(emitDir);
        Files.writeString(emitDir.resolve(v.key() + ".cu"), source.code());
        String ext = ptx ? ".ptx" : ".cubin";
        Files.write(emitDir.resolve(v.key() + "." + v.nvrtc().backend() + "-" + v.nvrtc().version() + ext),
                k.image());
    }

    private static String failure(Variant v, Throwable cause) {
        var text = new StringBuilder("FAILED " + v.label() + ": ");
        if (cause instanceof SageException.Compile c) {
            text.append("NVRTC rejected it; source dumped to ").append(c.dumpedSource()).append('\n');
            c.log().lines().limit(LOG_LINES).forEach(l -> text.append("    ").append(l).append('\n'));
            text.append("    (options ").append(c.options()).append(')');
        } else if (cause instanceof UncheckedIOException || cause instanceof IOException) {
            text.append("could not write to --emit-dir: ").append(cause.getMessage());
        } else {
            text.append(cause);
        }
        return text.toString();
    }
}
