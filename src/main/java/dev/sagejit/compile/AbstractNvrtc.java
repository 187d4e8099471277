package dev.sagejit.compile;

import dev.sagejit.api.SageException;
import dev.sagejit.spec.Arch;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What both bindings share: timing, dumping failed sources, building {@link CompiledKernel} and
 * mapping NVRTC's supported-arch list onto {@link Arch}. Subclasses only run the raw C calls.
 */
abstract class AbstractNvrtc implements Nvrtc {
    private static final Logger LOG = LoggerFactory.getLogger(AbstractNvrtc.class);

    /** Result of one raw NVRTC run; {@code image} is null when compilation failed. */
    record Raw(String log, byte[] image, String error) {
    }

    private final NvrtcLibrary library;
    private final Path dumpDir;

    AbstractNvrtc(NvrtcLibrary library, Path dumpDir) {
        this.library = library;
        this.dumpDir = dumpDir;
    }

    /** Creates a program, compiles it with {@code args}, reads log and image, destroys it. */
    abstract Raw run(String code, String fileName, List<String> args, Output output);

    @Override
    public Path library() {
        return library.path();
    }

    @Override
    public final CompiledKernel compile(KernelSource source, CompileOptions options) {
        List<String> args = options.nvrtcArgs();
        long start = System.nanoTime();
        Raw raw = run(source.code(), source.fileStem() + ".cu", args, options.output());
        Duration took = Duration.ofNanos(System.nanoTime() - start);
        if (raw.image() == null) {
            Path dumped = dump(source);
            String log = raw.log().isBlank() ? raw.error() : raw.log() + "\n(" + raw.error() + ")";
            throw new SageException.Compile(source.name(), log, args, dumped);
        }
        PtxasReport report = options.output() == Output.CUBIN
                ? PtxasReport.parse(raw.log(), source.entry()) : PtxasReport.NONE;
        LOG.debug("compiled {} for {} with {} NVRTC {} in {} ms: {}", source.name(), options.arch().name(),
                backend(), version(), took.toMillis(), report.summary());
        return new CompiledKernel(source.name(), source.entry(), options.arch(), options.output(),
                raw.image(), report, raw.log(), backend(), version(), took, false);
    }

    private Path dump(KernelSource source) {
        Path file = dumpDir.resolve(source.fileStem() + ".cu");
        try {
            Files.createDirectories(dumpDir);
            Files.writeString(file, source.code(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            LOG.warn("could not dump failed source of {} to {}: {}", source.name(), file, e.toString());
        }
        return file;
    }

    @Override
    public String toString() {
        return backend() + " NVRTC " + version() + " (" + library + ")";
    }

    /**
     * The known archs NVRTC can target. {@code smNumbers} is what nvrtcGetSupportedArchs returned
     * (e.g. 75, 80, 90, 120), or empty when the call is missing; then the version decides.
     */
    static List<Arch> archsFor(Optional<int[]> smNumbers, int major, int minor) {
        var out = new ArrayList<Arch>();
        for (Arch arch : Arch.ALL) {
            int sm = arch.major() * 10 + arch.minor();
            boolean ok = smNumbers.map(list -> contains(list, sm))
                    .orElseGet(() -> byVersion(arch, major, minor));
            if (ok) {
                out.add(arch);
            }
        }
        return List.copyOf(out);
    }

    private static boolean contains(int[] list, int value) {
        for (int v : list) {
            if (v == value) {
                return true;
            }
        }
        return false;
    }

    private static boolean byVersion(Arch arch, int major, int minor) {
        int v = major * 10 + minor;
        if (arch.major() >= 12) {
            return v >= 128; // sm_120a arrived with CUDA 12.8
        }
        if (arch.major() == 9) {
            return v >= 120;
        }
        return major >= 11;
    }

    /** Finds the libnvrtc-builtins of {@code lib} beside it, so it can be loaded first. */
    static Optional<Path> builtinsBeside(NvrtcLibrary lib) {
        Path dir = lib.path().getParent();
        if (dir == null || !Files.isDirectory(dir)) {
            return Optional.empty();
        }
        String prefix = "libnvrtc-builtins.so." + lib.major();
        try (var files = Files.list(dir)) {
            return files.filter(p -> p.getFileName().toString().startsWith(prefix))
                    .sorted().findFirst();
        } catch (IOException e) {
            return Optional.empty();
        }
    }
}
