package dev.sagejit.cli;

import java.io.PrintWriter;
import java.util.Locale;

/**
 * A one-line progress bar on stderr (stdout stays machine-readable): phase, bar, count and the item
 * in work, redrawn in place; {@link #finish} ends the line. Thread-safe.
 */
final class ProgressBar {
    private static final int WIDTH = 24;
    private final PrintWriter err;
    private final String label;
    private int lastLength;

    ProgressBar(PrintWriter err, String label) {
        this.err = err;
        this.label = label;
    }

    synchronized void update(String phase, int done, int total, String item) {
        int filled = total <= 0 ? WIDTH : (int) ((long) WIDTH * Math.min(done, total) / total);
        String line = String.format(Locale.ROOT, "%s %-10s [%s%s] %d/%d %s", label, phase, "#".repeat(filled),
                " ".repeat(WIDTH - filled), done, total, item);
        err.print("\r" + line + " ".repeat(Math.max(0, lastLength - line.length())));
        lastLength = line.length();
        err.flush();
    }

    synchronized void finish() {
        if (lastLength > 0) {
            err.println();
            lastLength = 0;
        }
        err.flush();
    }
}
