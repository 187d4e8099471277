package dev.sagejit.cli;

import dev.sagejit.codegen.GeneratorVersion;
import dev.sagejit.compile.KernelCache;
import dev.sagejit.compile.Nvrtc;
import dev.sagejit.compile.NvrtcBackends;
import dev.sagejit.compile.NvrtcLibrary;
import dev.sagejit.compile.NvrtcLocator;
import dev.sagejit.runtime.CudaDriver;
import dev.sagejit.runtime.Device;
import dev.sagejit.spec.Arch;
import java.io.PrintWriter;
import java.util.List;
import java.util.Locale;
import picocli.CommandLine.Command;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** Reports the GPU, the NVRTC libraries, the kernel cache and the Java runtime. Never needs a GPU. */
@Command(name = "info", mixinStandardHelpOptions = true,
        description = "Show the GPU, NVRTC libraries, kernel cache and Java runtime sagejit would use.")
final class InfoCommand implements Runnable {
    @ParentCommand
    Main main;

    @Spec
    CommandSpec spec;

    @Override
    public void run() {
        PrintWriter out = spec.commandLine().getOut();
        out.println("sagejit " + GeneratorVersion.VALUE);
        printGpu(out);
        printNvrtc(out);
        var cache = new KernelCache(main.knobs()).report();
        out.printf(Locale.ROOT, "Kernel cache: %s (%s), %d entries, %s%n", cache.location(),
                main.knobs().cacheEnabled() ? "enabled" : "disabled by SAGEJIT_CACHE=off", cache.entries(),
                Format.bytes(cache.totalBytes()));
        out.println("Java: " + Runtime.version() + " (" + System.getProperty("java.vendor") + ", "
                + System.getProperty("java.home") + ")");
    }

    private void printGpu(PrintWriter out) {
        if (!CudaDriver.available()) {
            out.println("GPU: none - " + CudaDriver.unavailableReason()
                    + " ('compile' works without a GPU; 'run' and 'bench' need one)");
            return;
        }
        try (Device d = Device.open(main.knobs().deviceOrdinal())) {
            String arch;
            try {
                arch = Arch.forDevice(d.major(), d.minor()).name();
            } catch (RuntimeException e) {
                arch = "unsupported: " + e.getMessage();
            }
            out.printf(Locale.ROOT, "GPU %d: %s, compute capability %d.%d (%s), %d SMs, %s memory, driver %s%n",
                    d.ordinal(), d.name(), d.major(), d.minor(), arch, d.smCount(), Format.bytes(d.totalMemory()),
                    Format.cudaVersion(d.driverVersion()));
        }
    }

    private void printNvrtc(PrintWriter out) {
        var locator = new NvrtcLocator(main.knobs());
        List<NvrtcLibrary> libraries = locator.locate();
        if (libraries.isEmpty()) {
            out.println("NVRTC libraries: none found. Searched:");
            locator.searched().forEach(s -> out.println("  " + s));
            out.println("  To fix: " + NvrtcChoice.INSTALL_HINT);
            return;
        }
        List<Nvrtc> bound = NvrtcBackends.available(main.knobs());
        out.println("NVRTC libraries (backend setting '" + main.knobs().nvrtcBackend() + "'):");
        for (NvrtcLibrary lib : libraries) {
            var binding = bound.stream().filter(n -> n.library().equals(lib.path())).findFirst();
            out.println("  " + lib.path() + "  found via " + lib.foundVia() + ", CUDA " + lib.major() + ", "
                    + binding.map(n -> n.backend() + " backend, NVRTC " + n.version() + ", targets "
                            + n.supportedArchs().stream().map(Arch::name).toList())
                            .orElse("not bound (excluded by SAGEJIT_NVRTC_BACKEND or failed to load; see log)"));
        }
        out.println("Preferred NVRTC per arch:");
        for (Arch arch : Arch.ALL) {
            out.println("  " + arch.name() + ": " + NvrtcChoice.preferred(bound, arch)
                    .map(n -> n.backend() + " NVRTC " + n.version() + " (" + n.library() + ")")
                    .orElse("none - needs a newer NVRTC; " + NvrtcChoice.INSTALL_HINT));
        }
    }
}
