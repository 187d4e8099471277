package dev.sagejit.cli;

import dev.sagejit.util.Knobs;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Properties;

/** Runs the command line in-process with a private cache folder and captures its output. */
final class Cli {
    record Result(int code, String out, String err) {
        String lastLine() {
            var lines = out.strip().lines().toList();
            return lines.isEmpty() ? "" : lines.get(lines.size() - 1);
        }
    }

    private Cli() {
    }

    /** Knobs of this process (so SAGEJIT_PYTHON_PATH etc. apply) with the cache in {@code cacheDir}. */
    static Knobs knobs(Path cacheDir) {
        var props = new Properties();
        props.putAll(System.getProperties());
        props.setProperty("sagejit.cache.dir", cacheDir.toString());
        return Knobs.from(new HashMap<>(System.getenv()), props);
    }

    static Result run(Knobs knobs, String... args) {
        var out = new StringWriter();
        var err = new StringWriter();
        int code = Main.execute(new Main(knobs), new PrintWriter(out), new PrintWriter(err), args);
        return new Result(code, out.toString(), err.toString());
    }
}
