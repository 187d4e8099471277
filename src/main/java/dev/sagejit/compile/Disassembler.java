package dev.sagejit.compile;

import dev.sagejit.util.Knobs;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

/**
 * SASS of a CUBIN through NVIDIA's {@code cuobjdump} (which runs {@code nvdisasm}), found like NVRTC:
 * NVIDIA's pip wheels ({@code nvidia-cuda-cuobjdump}, {@code nvidia-cuda-nvdisasm}) in a Python site folder, CUDA_HOME, /usr/local/cuda, then PATH. No GPU
 * needed; tests use it to check which instructions a kernel compiles to (wgmma as IGMMA/QGMMA/HGMMA,
 * the block-scaled FP4 MMA as OMMA.SF).
 */
public final class Disassembler {
    private static final List<String> WHEEL_BINS = List.of("nvidia/cu13/bin", "nvidia/cuda_cuobjdump/bin");
    private static final Pattern INSTRUCTION = Pattern.compile("/\\*[0-9a-f]{4,}\\*/\\s+(?:@!?U?P\\w+\\s+)?([A-Z][A-Z0-9_]*)");

    private final Path tool;

    private Disassembler(Path tool) {
        this.tool = tool;
    }

    /** The cuobjdump the settings lead to, if any. */
    public static Optional<Disassembler> locate(Knobs knobs) {
        var candidates = new ArrayList<Path>();
        for (Path site : knobs.pythonPaths()) {
            WHEEL_BINS.forEach(bin -> candidates.add(site.resolve(bin).resolve("cuobjdump")));
        }
        knobs.cudaHome().ifPresent(home -> candidates.add(home.resolve("bin/cuobjdump")));
        candidates.add(Path.of("/usr/local/cuda/bin/cuobjdump"));
        String path = System.getenv("PATH");
        if (path != null) {
            for (String dir : path.split(":")) {
                if (!dir.isBlank()) {
                    candidates.add(Path.of(dir, "cuobjdump"));
                }
            }
        }
        return candidates.stream().filter(Files::isExecutable).findFirst().map(Disassembler::new);
    }

    public Path tool() {
        return tool;
    }

    /** The SASS listing of a CUBIN image. */
    public String sass(byte[] cubin) {
        Path file = null;
        try {
            file = Files.createTempFile("sagejit-", ".cubin");
            Files.write(file, cubin);
            var pb = new ProcessBuilder(tool.toString(), "-sass", file.toString()).redirectErrorStream(true);
            // cuobjdump runs nvdisasm for SASS; the wheels install it beside cuobjdump.
            Path dir = tool.toAbsolutePath().getParent();
            if (dir != null && Files.isExecutable(dir.resolve("nvdisasm"))) {
                pb.environment().put("NVDISASM_PATH", dir.toString());
                pb.environment().merge("PATH", dir.toString(), (old, add) -> add + ":" + old);
            }
            Process p = pb.start();
            byte[] out = p.getInputStream().readAllBytes();
            if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
                throw new IllegalStateException(tool + " -sass failed: " + new String(out, StandardCharsets.UTF_8).strip());
            }
            return new String(out, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot run " + tool, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while running " + tool, e);
        } finally {
            if (file != null) {
                try {
                    Files.deleteIfExists(file);
                } catch (IOException ignored) {
                    // a leftover temp file is harmless
                }
            }
        }
    }

    /** How often each opcode (the mnemonic before its first '.', e.g. IGMMA, MUFU) occurs in a listing. */
    public static Map<String, Integer> opcodes(String sass) {
        var counts = new TreeMap<String, Integer>();
        var m = INSTRUCTION.matcher(sass);
        while (m.find()) {
            counts.merge(m.group(1), 1, Integer::sum);
        }
        return counts;
    }
}
