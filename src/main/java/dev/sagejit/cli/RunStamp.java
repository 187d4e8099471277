package dev.sagejit.cli;

import java.time.Instant;
import java.time.temporal.ChronoUnit;
import picocli.CommandLine.Option;

/**
 * {@code --run} and {@code --commit} of the commands that write results lines (mixed in): the run id
 * (default: now, to the second, the same for every line of the call) and the commit (default: git
 * rev-parse --short HEAD).
 */
final class RunStamp {
    @Option(names = "--run", description = "Run id written to each results line (default: ISO timestamp now).")
    String run;

    @Option(names = "--commit", description = "Commit written to each results line (default: git rev-parse --short HEAD).")
    String commit;

    private String now;

    String run() {
        if (run != null) {
            return run;
        }
        if (now == null) {
            now = Instant.now().truncatedTo(ChronoUnit.SECONDS).toString();
        }
        return now;
    }

    String commit() {
        return commit != null ? commit : GitCommit.shortHead();
    }
}
