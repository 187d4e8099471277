package dev.sagejit.compile;

import static org.junit.jupiter.api.Assertions.fail;

import dev.sagejit.util.Knobs;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Optional;
import java.util.Properties;
import org.junit.jupiter.api.Assumptions;

/**
 * Finds NVRTC for tests the way users do (Knobs discovery). Tests skip when none is found, unless
 * {@code -Dsagejit.test.require-nvrtc=true} (set in CI) makes that a failure.
 */
final class TestNvrtcs {
    /** Where this repository's developer machines keep the unpacked NVIDIA wheels. */
    private static final Path LOCAL_SITE = Path.of("/work/main/.tools/site");

    private static List<NvrtcLibrary> libraries;
    private static JcudaNvrtc jcuda;
    private static FfmNvrtc ffm13;
    private static FfmNvrtc ffm12;

    private TestNvrtcs() {
    }

    /** Knobs from the real environment, with the local wheel folder as fallback and a test cache dir. */
    static Knobs knobs(Path cacheDir) {
        var env = new HashMap<>(System.getenv());
        String site = env.get("SAGEJIT_PYTHON_PATH");
        if ((site == null || site.isBlank()) && System.getProperty("sagejit.python.path") == null
                && Files.isDirectory(LOCAL_SITE)) {
            env.put("SAGEJIT_PYTHON_PATH", LOCAL_SITE.toString());
        }
        var props = new Properties();
        props.putAll(System.getProperties());
        return Knobs.from(env, props).withCacheDir(cacheDir);
    }

    static synchronized List<NvrtcLibrary> libraries() {
        if (libraries == null) {
            libraries = new NvrtcLocator(knobs(Path.of("target/test-cache"))).locate();
        }
        return libraries;
    }

    static NvrtcLibrary require(int major) {
        Optional<NvrtcLibrary> lib = libraries().stream().filter(l -> l.major() == major).findFirst();
        if (lib.isEmpty()) {
            String why = "no libnvrtc.so." + major + " found (set SAGEJIT_PYTHON_PATH to a site-packages folder"
                    + " holding nvidia-cuda-nvrtc" + (major == 12 ? "-cu12" : "") + ", or SAGEJIT_NVRTC)";
            if (Boolean.getBoolean("sagejit.test.require-nvrtc")) {
                fail(why + " and sagejit.test.require-nvrtc=true");
            }
            Assumptions.abort(why);
        }
        return lib.get();
    }

    static synchronized Nvrtc jcuda() {
        if (jcuda == null) {
            jcuda = new JcudaNvrtc(require(12), Path.of("target/test-cache/failed"));
        }
        return jcuda;
    }

    static synchronized Nvrtc ffm13() {
        if (ffm13 == null) {
            ffm13 = new FfmNvrtc(require(13), Path.of("target/test-cache/failed"));
        }
        return ffm13;
    }

    static synchronized Nvrtc ffm12() {
        if (ffm12 == null) {
            ffm12 = new FfmNvrtc(require(12), Path.of("target/test-cache/failed"));
        }
        return ffm12;
    }

    /** By name, so parameterized tests can name the binding. */
    static Nvrtc named(String which) {
        return switch (which) {
            case "jcuda12" -> jcuda();
            case "ffm13" -> ffm13();
            case "ffm12" -> ffm12();
            default -> throw new IllegalArgumentException(which);
        };
    }
}
