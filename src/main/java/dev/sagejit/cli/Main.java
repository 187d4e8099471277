package dev.sagejit.cli;

import dev.sagejit.api.SageException;
import dev.sagejit.codegen.GeneratorVersion;
import dev.sagejit.util.Knobs;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.util.Arrays;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * The {@code sagejit} command line. Exit codes: 0 success, 1 a check or compile failed, 2 a usage
 * error or an error sagejit reports (no GPU, no NVRTC, bad input).
 */
@Command(name = "sagejit", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        description = "Generates, compiles and runs CUDA attention kernels.",
        subcommands = {InfoCommand.class, CompileCommand.class, RunCommand.class, BenchCommand.class,
                TuneCommand.class, AccuracyCommand.class, CacheCommand.class})
public final class Main implements Runnable {
    /** Exit code of a usage error or a reported {@link SageException}. */
    static final int EXIT_ERROR = 2;

    @Option(names = "--verbose", description = "Print stack traces of errors.")
    boolean verbose;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    private final Knobs knobs;

    /** The command as launched: settings come from the environment and system properties. */
    public Main() {
        this(Knobs.fromEnvironment());
    }

    /** The command with fixed settings (tests pass their own cache folder and library paths). */
    public Main(Knobs knobs) {
        this.knobs = knobs;
    }

    /** Settings every subcommand reads; nothing in the CLI reads the environment itself. */
    Knobs knobs() {
        return knobs;
    }

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "missing command; try 'sagejit --help'");
    }

    public static void main(String[] args) {
        System.exit(execute(new Main(), new PrintWriter(System.out, true), new PrintWriter(System.err, true), args));
    }

    /** Runs one command line and returns its exit code; output goes to {@code out} and {@code err}. */
    public static int execute(Main main, PrintWriter out, PrintWriter err, String... args) {
        boolean verbose = Arrays.asList(args).contains("--verbose");
        var cl = new CommandLine(main);
        cl.setCaseInsensitiveEnumValuesAllowed(true);
        cl.setOut(out);
        cl.setErr(err);
        cl.setExecutionExceptionHandler((e, line, parsed) -> report(e, line.getErr(), verbose));
        int code = cl.execute(args);
        out.flush();
        err.flush();
        return code;
    }

    private static int report(Exception e, PrintWriter err, boolean verbose) {
        boolean expected = e instanceof SageException || e instanceof IllegalArgumentException
                || e instanceof UncheckedIOException;
        err.println("error: " + e.getMessage());
        if (verbose) {
            e.printStackTrace(err);
        } else if (!expected) {
            err.println("(an internal error: rerun with --verbose for the stack trace and report it)");
        }
        err.flush();
        return expected ? EXIT_ERROR : 1;
    }

    /** Version line: the generator version, which is also part of every kernel cache key. */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            return new String[] {"sagejit " + GeneratorVersion.VALUE + " (Java " + Runtime.version() + ")"};
        }
    }
}
