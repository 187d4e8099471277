package dev.sagejit.compile;

import dev.sagejit.util.Knobs;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Finds libnvrtc on this machine without touching the environment itself: every place comes from
 * {@link Knobs}, fixed system folders, or {@code ldconfig -p}. Places are searched in this order:
 * SAGEJIT_NVRTC; CUDA_HOME/lib64 and /lib; /usr/local/cuda/lib64; LD_LIBRARY_PATH; the ldconfig
 * cache; NVIDIA's pip wheels under each SAGEJIT_PYTHON_PATH/PYTHONPATH entry and under the system
 * Python's site- and dist-packages. Each place searched is recorded for error messages.
 */
public final class NvrtcLocator {
    /** Wheel layouts: nvidia-cuda-nvrtc 13.x and nvidia-cuda-nvrtc-cu12. */
    private static final List<String> WHEEL_DIRS = List.of("nvidia/cu13/lib", "nvidia/cuda_nvrtc/lib");
    private static final List<String> FILE_NAMES = List.of("libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so");
    private static final Pattern VERSIONED = Pattern.compile("libnvrtc\\.so\\.(\\d+)(\\..*)?");
    private static final Pattern LDCONFIG_LINE = Pattern.compile("^\\s*(libnvrtc\\.so[.\\d]*)\\s.*=>\\s*(\\S+)\\s*$");

    private final Knobs knobs;
    private final Supplier<String> ldconfig;
    private final List<Path> systemPythonRoots;
    private final List<String> searched = new ArrayList<>();

    /** A locator over the places {@code knobs} names plus the fixed system places. */
    public NvrtcLocator(Knobs knobs) {
        this(knobs, NvrtcLocator::runLdconfig, List.of(Path.of("/usr/lib"), Path.of("/usr/local/lib")));
    }

    /** For tests: a fixed ldconfig output and system Python roots. */
    NvrtcLocator(Knobs knobs, Supplier<String> ldconfig, List<Path> systemPythonRoots) {
        this.knobs = knobs;
        this.ldconfig = ldconfig;
        this.systemPythonRoots = List.copyOf(systemPythonRoots);
    }

    /** Every distinct library found (by real path), in search order. */
    public synchronized List<NvrtcLibrary> locate() {
        searched.clear();
        Map<Path, NvrtcLibrary> found = new LinkedHashMap<>();
        knobs.nvrtcLibrary().ifPresent(p -> file(p, "SAGEJIT_NVRTC", found));
        knobs.cudaHome().ifPresent(h -> {
            dir(h.resolve("lib64"), "CUDA_HOME", found);
            dir(h.resolve("lib"), "CUDA_HOME", found);
        });
        dir(Path.of("/usr/local/cuda/lib64"), "/usr/local/cuda", found);
        knobs.libraryPath().forEach(d -> dir(d, "LD_LIBRARY_PATH", found));
        fromLdconfig(found);
        knobs.pythonPaths().forEach(site -> wheels(site, "SAGEJIT_PYTHON_PATH/PYTHONPATH wheel", found));
        for (Path root : systemPythonRoots) {
            for (Path python : children(root, "python3")) {
                wheels(python.resolve("site-packages"), "system Python wheel", found);
                wheels(python.resolve("dist-packages"), "system Python wheel", found);
            }
        }
        return List.copyOf(found.values());
    }

    /** The places the last {@link #locate()} looked, each as {@code "where: path"}. */
    public synchronized List<String> searched() {
        return List.copyOf(searched);
    }

    private void wheels(Path site, String via, Map<Path, NvrtcLibrary> found) {
        for (String sub : WHEEL_DIRS) {
            dir(site.resolve(sub), via, found);
        }
    }

    private void dir(Path dir, String via, Map<Path, NvrtcLibrary> found) {
        searched.add(via + ": " + dir);
        if (!Files.isDirectory(dir)) {
            return;
        }
        for (String name : FILE_NAMES) {
            Path p = dir.resolve(name);
            if (Files.isRegularFile(p)) {
                add(p, via, found);
            }
        }
    }

    private void file(Path path, String via, Map<Path, NvrtcLibrary> found) {
        searched.add(via + ": " + path);
        if (Files.isRegularFile(path)) {
            add(path, via, found);
        }
    }

    private void fromLdconfig(Map<Path, NvrtcLibrary> found) {
        String out = ldconfig.get();
        searched.add("ldconfig -p: " + (out == null ? "(not available)" : "cache"));
        if (out == null) {
            return;
        }
        for (String line : out.split("\n")) {
            Matcher m = LDCONFIG_LINE.matcher(line);
            if (m.matches() && Files.isRegularFile(Path.of(m.group(2)))) {
                add(Path.of(m.group(2)), "ldconfig", found);
            }
        }
    }

    private static void add(Path path, String via, Map<Path, NvrtcLibrary> found) {
        Path real;
        try {
            real = path.toRealPath();
        } catch (IOException e) {
            return;
        }
        // Name the library by the path found (its soname link), but dedupe on the file it resolves to.
        majorOf(path).or(() -> majorOf(real)).ifPresent(major ->
                found.putIfAbsent(real, new NvrtcLibrary(path, major, via)));
    }

    /** CUDA major from {@code libnvrtc.so.13}, {@code libnvrtc.so.12.9.86} and the like. */
    static Optional<Integer> majorOf(Path path) {
        Matcher m = VERSIONED.matcher(path.getFileName().toString());
        return m.matches() ? Optional.of(Integer.parseInt(m.group(1))) : Optional.empty();
    }

    private static List<Path> children(Path root, String prefix) {
        if (!Files.isDirectory(root)) {
            return List.of();
        }
        try (var s = Files.list(root)) {
            return s.filter(p -> p.getFileName().toString().startsWith(prefix)).sorted().toList();
        } catch (IOException e) {
            return List.of();
        }
    }

    /** Output of {@code ldconfig -p}, or null when it is missing or fails. */
    private static String runLdconfig() {
        for (String exe : List.of("/sbin/ldconfig", "/usr/sbin/ldconfig", "ldconfig")) {
            try {
                Process p = new ProcessBuilder(exe, "-p").redirectErrorStream(true).start();
                byte[] out = p.getInputStream().readAllBytes();
                if (p.waitFor(5, TimeUnit.SECONDS) && p.exitValue() == 0) {
                    return new String(out, StandardCharsets.UTF_8);
                }
            } catch (IOException e) {
                // try the next place ldconfig may live
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return null;
            }
        }
        return null;
    }
}
