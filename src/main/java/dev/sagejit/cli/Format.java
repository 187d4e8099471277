package dev.sagejit.cli;

import java.util.Locale;

/** Human-readable numbers for command output. */
final class Format {
    private Format() {
    }

    /** {@code 1536} as {@code 1.5 KiB}, up to GiB. */
    static String bytes(long n) {
        if (n < 1024) {
            return n + " B";
        }
        String[] units = {"KiB", "MiB", "GiB", "TiB"};
        double v = n;
        int u = -1;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return String.format(Locale.ROOT, "%.1f %s", v, units[u]);
    }

    /** CUDA's encoded version (e.g. 12090) as {@code 12.9}. */
    static String cudaVersion(int encoded) {
        return encoded / 1000 + "." + (encoded % 1000) / 10;
    }
}
