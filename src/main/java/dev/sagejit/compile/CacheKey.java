package dev.sagejit.compile;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Map;
import java.util.TreeMap;

/**
 * Content address of a compiled kernel, built from named parts so a cache folder's manifest says
 * exactly why two entries differ. Parts are kept sorted; {@link #digest()} hashes their canonical
 * {@code k=v\n} listing.
 *
 * @param parts named parts, e.g. {@code generator}, {@code source_sha256}, {@code options}
 */
public record CacheKey(Map<String, String> parts) {

    public CacheKey {
        parts = java.util.Collections.unmodifiableMap(new TreeMap<>(parts));
        for (var e : parts.entrySet()) {
            if (e.getKey().contains("=") || e.getKey().contains("\n") || e.getValue().contains("\n")) {
                throw new IllegalArgumentException("cache key part '" + e.getKey()
                        + "' may not contain '=' in its name or a newline anywhere");
            }
        }
    }

    /** The key of compiling {@code source} with {@code options} by {@code nvrtc}. */
    public static CacheKey of(String generatorVersion, KernelSource source, CompileOptions options, Nvrtc nvrtc) {
        return new CacheKey(Map.of(
                "generator", generatorVersion,
                "source_sha256", sha256(source.code().getBytes(StandardCharsets.UTF_8)),
                "options", String.join(" ", options.nvrtcArgs()),
                "arch", options.arch().name(),
                "output", options.output().name(),
                "nvrtc", nvrtc.backend() + " " + nvrtc.version(),
                "entry", source.entry()));
    }

    /** The canonical listing that is hashed: one {@code k=v} line per part, sorted by name. */
    public String canonical() {
        var sb = new StringBuilder();
        parts.forEach((k, v) -> sb.append(k).append('=').append(v).append('\n'));
        return sb.toString();
    }

    /** SHA-256 hex of {@link #canonical()}. */
    public String digest() {
        return sha256(canonical().getBytes(StandardCharsets.UTF_8));
    }

    /** Lower-case hex SHA-256 of {@code bytes}. */
    public static String sha256(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("this JVM has no SHA-256", e);
        }
    }
}
