package dev.sagejit.compile;

import dev.sagejit.spec.Arch;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * How NVRTC is asked to compile a kernel. Math stays exact (no {@code --use_fast_math}): templates
 * ask for approximate instructions such as {@code ex2.approx} explicitly where they want them.
 *
 * @param arch       target architecture
 * @param output     CUBIN for one sm, or PTX for the matching compute arch
 * @param extraFlags further NVRTC options, appended last (e.g. {@code --maxrregcount=128})
 */
public record CompileOptions(Arch arch, Output output, List<String> extraFlags) {

    public CompileOptions {
        Objects.requireNonNull(arch, "arch");
        Objects.requireNonNull(output, "output");
        extraFlags = List.copyOf(extraFlags);
    }

    /** CUBIN for {@code arch} with no extra flags: what kernels are normally built with. */
    public static CompileOptions cubin(Arch arch) {
        return new CompileOptions(arch, Output.CUBIN, List.of());
    }

    /** PTX for the virtual arch of {@code arch} with no extra flags. */
    public static CompileOptions ptx(Arch arch) {
        return new CompileOptions(arch, Output.PTX, List.of());
    }

    /** A copy with more flags appended. */
    public CompileOptions withFlags(String... flags) {
        var all = new ArrayList<>(extraFlags);
        all.addAll(List.of(flags));
        return new CompileOptions(arch, output, all);
    }

    /** The exact option list passed to {@code nvrtcCompileProgram}. */
    public List<String> nvrtcArgs() {
        var args = new ArrayList<String>();
        String target = output == Output.CUBIN ? arch.name() : arch.name().replace("sm_", "compute_");
        args.add("--gpu-architecture=" + target);
        args.add("-std=c++17");
        args.add("-default-device");
        if (output == Output.CUBIN) {
            // Makes NVRTC put ptxas's register/spill/smem report into the program log.
            args.add("--ptxas-options=-v");
        }
        args.add("-lineinfo");
        args.addAll(extraFlags);
        return List.copyOf(args);
    }
}
