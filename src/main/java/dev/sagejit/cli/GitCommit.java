package dev.sagejit.cli;

import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;

/** The short commit of the current folder's git checkout, for results files. */
final class GitCommit {
    private GitCommit() {
    }

    /** {@code git rev-parse --short HEAD}, or {@code unknown} when git or a repository is missing. */
    static String shortHead() {
        try {
            Process p = new ProcessBuilder("git", "rev-parse", "--short", "HEAD").redirectErrorStream(false).start();
            p.getOutputStream().close();
            String sha = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
            if (!p.waitFor(10, TimeUnit.SECONDS)) {
                p.destroy();
                return "unknown";
            }
            return p.exitValue() == 0 && !sha.isEmpty() ? sha : "unknown";
        } catch (java.io.IOException e) {
            return "unknown";
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "unknown";
        }
    }
}
