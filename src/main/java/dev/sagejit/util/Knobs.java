package dev.sagejit.util;

import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;

/**
 * Every setting sagejit reads from the environment, declared in one typed place. Each knob is read
 * from a system property first, then an environment variable. Nothing else in sagejit reads the
 * environment: a {@code Knobs} value is passed to whatever needs it.
 *
 * @param nvrtcLibrary  explicit path of a libnvrtc.so.12 or .so.13 ({@code sagejit.nvrtc} /
 *                      {@code SAGEJIT_NVRTC})
 * @param nvrtcBackend  {@code auto}, {@code jcuda} or {@code ffm} ({@code sagejit.nvrtc.backend} /
 *                      {@code SAGEJIT_NVRTC_BACKEND})
 * @param cacheDir      kernel cache root ({@code sagejit.cache.dir} / {@code SAGEJIT_CACHE_DIR}; default
 *                      {@code $XDG_CACHE_HOME/sagejit} or {@code ~/.cache/sagejit})
 * @param cacheEnabled  false disables the disk cache ({@code sagejit.cache} / {@code SAGEJIT_CACHE} = off)
 * @param deviceOrdinal CUDA device to use ({@code sagejit.device} / {@code SAGEJIT_DEVICE}, default 0)
 * @param cudaHome      CUDA_HOME or CUDA_PATH, if set
 * @param pythonPaths   site-packages folders to search for NVIDIA's NVRTC wheels ({@code
 *                      sagejit.python.path} / {@code SAGEJIT_PYTHON_PATH}, colon-separated, plus
 *                      PYTHONPATH)
 * @param libraryPath   LD_LIBRARY_PATH entries
 */
public record Knobs(Optional<Path> nvrtcLibrary, String nvrtcBackend, Path cacheDir, boolean cacheEnabled,
        int deviceOrdinal, Optional<Path> cudaHome, java.util.List<Path> pythonPaths,
        java.util.List<Path> libraryPath) {

    public Knobs {
        java.util.Objects.requireNonNull(cacheDir, "cacheDir");
        if (!java.util.Set.of("auto", "jcuda", "ffm").contains(nvrtcBackend)) {
            throw new IllegalArgumentException("NVRTC backend '" + nvrtcBackend
                    + "' is not one of auto, jcuda, ffm (set SAGEJIT_NVRTC_BACKEND)");
        }
        pythonPaths = java.util.List.copyOf(pythonPaths);
        libraryPath = java.util.List.copyOf(libraryPath);
    }

    /** Reads every knob from the process's system properties and environment. */
    public static Knobs fromEnvironment() {
        return from(System.getenv(), System.getProperties());
    }

    /** Reads every knob from the given maps (tests pass their own). */
    public static Knobs from(Map<String, String> env, java.util.Properties props) {
        var read = new Object() {
            Optional<String> get(String prop, String var) {
                String v = props.getProperty(prop);
                if (v == null || v.isBlank()) {
                    v = env.get(var);
                }
                return v == null || v.isBlank() ? Optional.empty() : Optional.of(v.trim());
            }
        };
        Path home = Path.of(props.getProperty("user.home", "."));
        Path defaultCache = Optional.ofNullable(env.get("XDG_CACHE_HOME")).filter(s -> !s.isBlank())
                .map(Path::of).orElse(home.resolve(".cache")).resolve("sagejit");
        Optional<Path> cudaHome = read.get("sagejit.cuda.home", "CUDA_HOME")
                .or(() -> Optional.ofNullable(env.get("CUDA_PATH")).filter(s -> !s.isBlank())).map(Path::of);
        var py = new java.util.ArrayList<Path>();
        read.get("sagejit.python.path", "SAGEJIT_PYTHON_PATH").ifPresent(s -> py.addAll(split(s)));
        Optional.ofNullable(env.get("PYTHONPATH")).ifPresent(s -> py.addAll(split(s)));
        return new Knobs(
                read.get("sagejit.nvrtc", "SAGEJIT_NVRTC").map(Path::of),
                read.get("sagejit.nvrtc.backend", "SAGEJIT_NVRTC_BACKEND").orElse("auto").toLowerCase(java.util.Locale.ROOT),
                read.get("sagejit.cache.dir", "SAGEJIT_CACHE_DIR").map(Path::of).orElse(defaultCache),
                !read.get("sagejit.cache", "SAGEJIT_CACHE").map(s -> s.equalsIgnoreCase("off") || s.equals("0")).orElse(false),
                read.get("sagejit.device", "SAGEJIT_DEVICE").map(Integer::parseInt).orElse(0),
                cudaHome, py,
                Optional.ofNullable(env.get("LD_LIBRARY_PATH")).map(Knobs::split).orElse(java.util.List.of()));
    }

    private static java.util.List<Path> split(String s) {
        return java.util.Arrays.stream(s.split(":")).filter(p -> !p.isBlank()).map(Path::of).toList();
    }

    /** A copy that opens another GPU (its CUDA ordinal). */
    public Knobs withDevice(int ordinal) {
        return new Knobs(nvrtcLibrary, nvrtcBackend, cacheDir, cacheEnabled, ordinal, cudaHome, pythonPaths, libraryPath);
    }

    /** A copy with another cache directory. */
    public Knobs withCacheDir(Path dir) {
        return new Knobs(nvrtcLibrary, nvrtcBackend, dir, cacheEnabled, deviceOrdinal, cudaHome, pythonPaths, libraryPath);
    }
}
