package dev.sagejit.cli;

import dev.sagejit.api.SageException;
import dev.sagejit.compile.Nvrtc;
import dev.sagejit.compile.NvrtcBackends;
import dev.sagejit.spec.Arch;
import dev.sagejit.util.Knobs;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Which NVRTC bindings a command compiles with: {@code auto} (the newest that targets each arch,
 * as at run time), {@code jcuda} (libnvrtc.so.12 through JCuda), {@code ffm} (every library
 * through java.lang.foreign) or {@code all} (every binding of both kinds).
 */
enum NvrtcChoice {
    AUTO, JCUDA, FFM, ALL;

    static final String INSTALL_HINT = "install NVRTC with 'pip install nvidia-cuda-nvrtc' (CUDA 13) or"
            + " 'pip install nvidia-cuda-nvrtc-cu12' (12.8+ for sm_120a) and set SAGEJIT_PYTHON_PATH to that"
            + " site-packages folder, or set SAGEJIT_NVRTC=/path/to/libnvrtc.so.13";

    /** Every binding this choice allows, deduplicated by backend and library, newest first. */
    List<Nvrtc> bind(Knobs knobs) {
        List<Nvrtc> found = switch (this) {
            case AUTO -> NvrtcBackends.available(knobs);
            case JCUDA -> NvrtcBackends.available(withBackend(knobs, "jcuda"));
            case FFM -> NvrtcBackends.available(withBackend(knobs, "ffm"));
            case ALL -> {
                var both = new ArrayList<>(NvrtcBackends.available(withBackend(knobs, "jcuda")));
                both.addAll(NvrtcBackends.available(withBackend(knobs, "ffm")));
                yield both;
            }
        };
        Map<String, Nvrtc> unique = new LinkedHashMap<>();
        found.forEach(n -> unique.putIfAbsent(n.backend() + " " + n.library(), n));
        if (unique.isEmpty()) {
            throw new SageException.Unsupported("no NVRTC library could be bound for --backend "
                    + name().toLowerCase(java.util.Locale.ROOT) + "; run 'sagejit info' to see what was searched, then "
                    + INSTALL_HINT);
        }
        return List.copyOf(unique.values());
    }

    /** The bindings that compile {@code arch}: the first that supports it for AUTO, all of them otherwise. */
    List<Nvrtc> forArch(List<Nvrtc> bound, Arch arch) {
        var fit = bound.stream().filter(n -> n.supports(arch)).toList();
        return this == AUTO ? fit.stream().limit(1).toList() : fit;
    }

    /** The binding the library would pick for {@code arch}: the newest that supports it. */
    static Optional<Nvrtc> preferred(List<Nvrtc> newestFirst, Arch arch) {
        return newestFirst.stream().filter(n -> n.supports(arch)).findFirst();
    }

    private static Knobs withBackend(Knobs k, String backend) {
        return new Knobs(k.nvrtcLibrary(), backend, k.cacheDir(), k.cacheEnabled(), k.deviceOrdinal(), k.cudaHome(),
                k.pythonPaths(), k.libraryPath());
    }
}
