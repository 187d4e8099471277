package dev.sagejit.bench;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * The Python scripts that travel in the jar ({@code benchmarks/peers.py}: PyTorch SDPA flash and
 * cuDNN timed like sagejit; {@code plot.py}: PNG plots of a results file), run with the host's
 * {@code python3} when it has what they need.
 */
public final class PythonTools {
    private static final List<String> SCRIPTS = List.of("peers.py", "plot.py", "resultslines.py");

    private final Path dir;
    private final String python;

    private PythonTools(Path dir, String python) {
        this.dir = dir;
        this.python = python;
    }

    /** The scripts unpacked into a temporary folder, run with {@code python} (e.g. "python3"). */
    public static PythonTools unpack(String python) {
        try {
            Path dir = Files.createTempDirectory("sagejit-python-");
            dir.toFile().deleteOnExit();
            for (String name : SCRIPTS) {
                try (InputStream in = PythonTools.class.getResourceAsStream("/python/" + name)) {
                    if (in == null) {
                        throw new IllegalStateException("python/" + name + " is missing from the sagejit jar; rebuild it");
                    }
                    Path target = dir.resolve(name);
                    Files.copy(in, target);
                    target.toFile().deleteOnExit();
                }
            }
            return new PythonTools(dir, python);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot unpack the Python benchmark scripts", e);
        }
    }

    /**
     * Why the PyTorch peers cannot run on this host (no python3, no torch, no CUDA device), or empty
     * when they can.
     */
    public Optional<String> whyNoPeers() {
        var r = run(List.of(python, "-c", "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 3)"), 120);
        return switch (r.code()) {
            case 0 -> Optional.empty();
            case 3 -> Optional.of("PyTorch is installed but sees no CUDA device");
            case -1 -> Optional.of(python + " was not found (" + r.output().strip() + ")");
            default -> Optional.of("PyTorch is not importable with " + python + ": "
                    + r.output().strip().lines().reduce((a, b) -> b).orElse(""));
        };
    }

    /** Runs one script with arguments; returns its exit code and output. */
    public Result script(String name, List<String> args, int timeoutSeconds) {
        var cmd = new ArrayList<String>();
        cmd.add(python);
        cmd.add(dir.resolve(name).toString());
        cmd.addAll(args);
        return run(cmd, timeoutSeconds);
    }

    /** Exit code (-1: could not start, -2: timed out) and combined output of a process. */
    public record Result(int code, String output) {
    }

    private static Result run(List<String> cmd, int timeoutSeconds) {
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            var out = new StringBuilder();
            Thread reader = Thread.ofPlatform().start(() -> {
                try {
                    out.append(new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8));
                } catch (IOException ignored) {
                    // the process died; its exit code says so
                }
            });
            if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                reader.join(1000);
                return new Result(-2, out + "\n(timed out after " + timeoutSeconds + " s)");
            }
            reader.join();
            return new Result(p.exitValue(), out.toString());
        } catch (IOException e) {
            return new Result(-1, e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new Result(-2, "interrupted");
        }
    }
}
