package dev.sagejit.cli;

import dev.sagejit.compile.KernelCache;
import java.util.Locale;
import picocli.CommandLine.Command;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code cache info} and {@code cache clear}: the disk cache of compiled kernels. */
@Command(name = "cache", mixinStandardHelpOptions = true,
        description = "Inspect or clear the compiled-kernel cache (SAGEJIT_CACHE_DIR).")
final class CacheCommand implements Runnable {
    @ParentCommand
    Main main;

    @Spec
    CommandSpec spec;

    @Override
    public void run() {
        info();
    }

    @Command(name = "info", mixinStandardHelpOptions = true, description = "Show location, entries and bytes.")
    void info() {
        var r = new KernelCache(main.knobs()).report();
        var out = spec.commandLine().getOut();
        out.println("location: " + r.location());
        out.println("enabled:  " + main.knobs().cacheEnabled());
        out.println("entries:  " + r.entries());
        out.printf(Locale.ROOT, "bytes:    %d (%s)%n", r.totalBytes(), Format.bytes(r.totalBytes()));
    }

    @Command(name = "clear", mixinStandardHelpOptions = true, description = "Delete every cached kernel.")
    void clear() {
        var cache = new KernelCache(main.knobs());
        var where = cache.report().location();
        int removed = cache.clear();
        spec.commandLine().getOut().println("removed " + removed + " entries from " + where);
    }
}
