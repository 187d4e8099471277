package dev.sagejit.compile;

import dev.sagejit.api.SageException;
import dev.sagejit.spec.Arch;
import dev.sagejit.util.Knobs;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Turns the libraries {@link NvrtcLocator} finds into {@link Nvrtc} bindings, honouring
 * {@code SAGEJIT_NVRTC_BACKEND}: {@code auto} binds .so.12 with JCuda and anything newer with FFM,
 * {@code jcuda} binds only .so.12, {@code ffm} binds every library with FFM.
 */
public final class NvrtcBackends {
    private static final Logger LOG = LoggerFactory.getLogger(NvrtcBackends.class);

    private NvrtcBackends() {
    }

    /** Every NVRTC that could be bound, newest version first; libraries that fail to load are logged and skipped. */
    public static List<Nvrtc> available(Knobs knobs) {
        return available(knobs, new NvrtcLocator(knobs));
    }

    static List<Nvrtc> available(Knobs knobs, NvrtcLocator locator) {
        var out = new ArrayList<Nvrtc>();
        var dumpDir = knobs.cacheDir().resolve("failed");
        for (NvrtcLibrary lib : locator.locate()) {
            String backend = backendFor(knobs.nvrtcBackend(), lib.major());
            if (backend == null) {
                continue;
            }
            try {
                out.add(backend.equals("jcuda") ? new JcudaNvrtc(lib, dumpDir) : new FfmNvrtc(lib, dumpDir));
            } catch (SageException.Unsupported | UnsatisfiedLinkError e) {
                LOG.warn("skipping {}: {}", lib, e.getMessage());
            }
        }
        out.sort(Comparator.comparing((Nvrtc n) -> versionNumber(n.version())).reversed());
        return List.copyOf(out);
    }

    /**
     * The newest bound NVRTC that can target {@code arch}.
     *
     * @throws SageException.Unsupported naming every place searched and how to install NVRTC
     */
    public static Nvrtc preferred(Knobs knobs, Arch arch) {
        return preferred(knobs, arch, new NvrtcLocator(knobs));
    }

    static Nvrtc preferred(Knobs knobs, Arch arch, NvrtcLocator locator) {
        List<Nvrtc> all = available(knobs, locator);
        for (Nvrtc n : all) {
            if (n.supports(arch)) {
                LOG.info("using {} for {}", n, arch.name());
                return n;
            }
        }
        String what = all.isEmpty()
                ? "no usable NVRTC library was found (backend '" + knobs.nvrtcBackend() + "')"
                : "no NVRTC found can target " + arch.name() + " (found: " + all + ")";
        throw new SageException.Unsupported(what + ". Searched:\n  " + String.join("\n  ", locator.searched())
                + "\nFix: pip install nvidia-cuda-nvrtc (CUDA 13.x) or nvidia-cuda-nvrtc-cu12 (12.8+ for sm_120a)"
                + " and set SAGEJIT_PYTHON_PATH to that site-packages folder, or set"
                + " SAGEJIT_NVRTC=/path/to/libnvrtc.so.13");
    }

    /** Binding to use for a library of {@code major}, or null when the knob excludes it. */
    static String backendFor(String knob, int major) {
        return switch (knob) {
            case "jcuda" -> major == 12 ? "jcuda" : null;
            case "ffm" -> "ffm";
            default -> major == 12 ? "jcuda" : "ffm";
        };
    }

    private static int versionNumber(String version) {
        String[] parts = version.split("\\.");
        return Integer.parseInt(parts[0]) * 100 + (parts.length > 1 ? Integer.parseInt(parts[1]) : 0);
    }
}
