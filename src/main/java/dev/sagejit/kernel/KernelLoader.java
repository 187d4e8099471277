package dev.sagejit.kernel;

import dev.sagejit.codegen.TemplateRenderer;
import dev.sagejit.compile.CompileOptions;
import dev.sagejit.compile.CompiledKernel;
import dev.sagejit.compile.KernelCompiler;
import dev.sagejit.compile.KernelSource;
import dev.sagejit.runtime.Device;
import dev.sagejit.runtime.LoadedKernel;
import dev.sagejit.runtime.LoadedModule;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Render -> compile (through the cache) -> load, once per kernel key and device. Safe for many
 * threads: each key is built exactly once, later callers wait for it.
 */
public final class KernelLoader implements AutoCloseable {
    /** A kernel ready to launch, with the compile result it came from. */
    public record Ready(FwdKernelPlan plan, CompiledKernel compiled, LoadedKernel kernel) {
    }

    private final Device device;
    private final KernelCompiler compiler;
    private final TemplateRenderer renderer;
    private final ConcurrentHashMap<String, Ready> loaded = new ConcurrentHashMap<>();
    private final ConcurrentHashMap<String, LoadedModule> modules = new ConcurrentHashMap<>();
    private final ConcurrentHashMap<String, LoadedKernel> auxKernels = new ConcurrentHashMap<>();

    public KernelLoader(Device device, KernelCompiler compiler, TemplateRenderer renderer) {
        this.device = device;
        this.compiler = compiler;
        this.renderer = renderer;
    }

    /** Attention kernels compiled (or read from the cache) and loaded so far, one per plan key. */
    public int loadedCount() {
        return loaded.size();
    }

    /** Renders the plan's source; needs no GPU. */
    public static KernelSource source(TemplateRenderer renderer, FwdKernelPlan plan) {
        return new KernelSource(plan.key(), renderer.render(plan.template(), plan.templateModel()), plan.entry());
    }

    /** The loaded kernel for a plan, compiling and loading it on first use. */
    public Ready get(FwdKernelPlan plan) {
        return loaded.computeIfAbsent(plan.key(), key -> {
            CompiledKernel compiled = compiler.compile(source(renderer, plan), CompileOptions.cubin(plan.spec().arch()));
            LoadedModule module = device.load(compiled.image());
            modules.put(key, module);
            LoadedKernel kernel = module.function(plan.entry());
            kernel.setMaxDynamicSharedMemory(plan.sharedBytes());
            return new Ready(plan, compiled, kernel);
        });
    }

    /**
     * A kernel of a helper module (e.g. the int8-fp8 quantizers), compiled and loaded once per
     * module key; every entry of the module is looked up once.
     */
    public LoadedKernel auxKernel(String moduleKey, java.util.function.Supplier<KernelSource> source,
            dev.sagejit.spec.Arch arch, String entry) {
        LoadedModule module = modules.computeIfAbsent("aux:" + moduleKey, key -> {
            CompiledKernel compiled = compiler.compile(source.get(), CompileOptions.cubin(arch));
            return device.load(compiled.image());
        });
        return auxKernels.computeIfAbsent(moduleKey + "#" + entry, k -> module.function(entry));
    }

    /** Renders a quantizer module's source; needs no GPU. */
    public static KernelSource source(TemplateRenderer renderer, Sage2QuantPlan plan) {
        return new KernelSource(plan.key(), renderer.render(Sage2QuantPlan.TEMPLATE, plan.templateModel()),
                Sage2QuantPlan.QUANT_K);
    }

    /** Renders an NVFP4 attention kernel's source; needs no GPU. */
    public static KernelSource source(TemplateRenderer renderer, Nvfp4FwdPlan plan) {
        return new KernelSource(plan.key(), renderer.render(Nvfp4FwdPlan.TEMPLATE, plan.templateModel()), plan.entry());
    }

    /** Renders the 16-bit backward module's source (three kernels); needs no GPU. */
    public static KernelSource source(TemplateRenderer renderer, FlashBwdPlan plan) {
        return new KernelSource(plan.key(), renderer.render(FlashBwdPlan.TEMPLATE, plan.templateModel()), plan.entry());
    }

    /** Renders SageBwd's attention module (training forward and backward); needs no GPU. */
    public static KernelSource source(TemplateRenderer renderer, SageBwdPlan plan) {
        // The backward names the module: its ptxas report (registers, spills) is the one compile tables show.
        return new KernelSource(plan.key(), renderer.render(SageBwdPlan.TEMPLATE, plan.templateModel()),
                plan.backwardEntry());
    }

    /** Renders SageBwd's quantizer module; needs no GPU. */
    public static KernelSource source(TemplateRenderer renderer, SageBwdQuantPlan plan) {
        return new KernelSource(plan.key(), renderer.render(SageBwdQuantPlan.TEMPLATE, plan.templateModel()),
                SageBwdQuantPlan.ENTRY);
    }

    /** Renders the NVFP4 quantizer module's source; needs no GPU. */
    public static KernelSource source(TemplateRenderer renderer, Nvfp4QuantPlan plan) {
        return new KernelSource(plan.key(), renderer.render(Nvfp4QuantPlan.TEMPLATE, plan.templateModel()),
                Nvfp4QuantPlan.QUANT_Q);
    }

    public TemplateRenderer renderer() {
        return renderer;
    }

    public Device device() {
        return device;
    }

    public KernelCompiler compiler() {
        return compiler;
    }

    @Override
    public void close() {
        modules.values().forEach(LoadedModule::close);
        modules.clear();
        loaded.clear();
        auxKernels.clear();
    }
}
