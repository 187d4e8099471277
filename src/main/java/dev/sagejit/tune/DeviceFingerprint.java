package dev.sagejit.tune;

import dev.sagejit.codegen.GeneratorVersion;
import dev.sagejit.compile.CacheKey;
import java.nio.charset.StandardCharsets;
import java.text.Normalizer;
import java.util.Locale;
import java.util.Objects;

/**
 * The device and software a tuning measurement was taken on. The first three parts say <em>which
 * device</em> (and name its tuning file); the last three say <em>under which software</em>: a
 * record measured under another driver, NVRTC or generator version is stale, because the same tile
 * config may now compile to different code or run at a different speed.
 *
 * @param gpuName          device name as the driver reports it, e.g. {@code NVIDIA H200}
 * @param arch             architecture id, e.g. {@code sm90a} (see {@code Arch.id()})
 * @param smCount          streaming multiprocessors (tells apart parts and MIG slices of one chip)
 * @param driverVersion    CUDA driver version, e.g. {@code 12080}
 * @param nvrtcVersion     NVRTC version, e.g. {@code 12.8}
 * @param generatorVersion code generator version ({@link GeneratorVersion#VALUE})
 */
public record DeviceFingerprint(String gpuName, String arch, int smCount, int driverVersion,
        String nvrtcVersion, String generatorVersion) {

    /** Longest readable GPU-name part of a file name; longer names are cut and get a hash suffix. */
    private static final int MAX_NAME_CHARS = 48;

    public DeviceFingerprint {
        requireText(gpuName, "gpuName");
        requireText(arch, "arch");
        requireText(nvrtcVersion, "nvrtcVersion");
        requireText(generatorVersion, "generatorVersion");
        if (smCount <= 0) {
            throw new IllegalArgumentException("device fingerprint: smCount must be positive, got " + smCount);
        }
        if (driverVersion < 0) {
            throw new IllegalArgumentException("device fingerprint: driverVersion must not be negative, got "
                    + driverVersion);
        }
    }

    /** A fingerprint for this build of sagejit's generator ({@link GeneratorVersion#VALUE}). */
    public static DeviceFingerprint current(String gpuName, String arch, int smCount, int driverVersion,
            String nvrtcVersion) {
        return new DeviceFingerprint(gpuName, arch, smCount, driverVersion, nvrtcVersion, GeneratorVersion.VALUE);
    }

    private static void requireText(String value, String what) {
        Objects.requireNonNull(value, what);
        if (value.isBlank()) {
            throw new IllegalArgumentException("device fingerprint: " + what + " must not be blank");
        }
    }

    /** Whether {@code other} names the same device: GPU name, arch and SM count. */
    public boolean sameDevice(DeviceFingerprint other) {
        return gpuName.equals(other.gpuName) && arch.equals(other.arch) && smCount == other.smCount;
    }

    /** Whether a record measured under these versions is current for {@code this} fingerprint. */
    public boolean sameSoftware(int driverVersion, String nvrtcVersion, String generatorVersion) {
        return this.driverVersion == driverVersion && this.nvrtcVersion.equals(nvrtcVersion)
                && this.generatorVersion.equals(generatorVersion);
    }

    /** The device part for messages, e.g. {@code NVIDIA H200 (sm90a, 132 SMs)}. */
    public String describeDevice() {
        return gpuName + " (" + arch + ", " + smCount + " SMs)";
    }

    /** The software part for messages, e.g. {@code driver 12080, NVRTC 12.8, generator 0.1.0}. */
    public String describeSoftware() {
        return "driver " + driverVersion + ", NVRTC " + nvrtcVersion + ", generator " + generatorVersion;
    }

    /**
     * The tuning file of this device, e.g. {@code nvidia-h200_sm90a_132sm.json}: lower-case ASCII
     * letters, digits, {@code -} and {@code _} only. Only the device parts are in the name, so a
     * driver, NVRTC or generator upgrade finds the old file and reports its records as stale. Where
     * the readable form loses information (slashes, unicode, long names), 8 hex digits of the exact
     * name's SHA-256 are appended so two different GPUs never share a file.
     */
    public String fileName() {
        return slug(gpuName, MAX_NAME_CHARS, "gpu") + "_" + slug(arch, MAX_NAME_CHARS, "arch") + "_" + smCount
                + "sm.json";
    }

    /**
     * A readable, filesystem-safe rendering of {@code text}; suffixed with a short hash when it is
     * not simply the lower-cased text with spaces turned into dashes.
     */
    static String slug(String text, int maxChars, String fallback) {
        String ascii = Normalizer.normalize(text, Normalizer.Form.NFKD).replaceAll("\\p{M}+", "");
        String slug = ascii.toLowerCase(Locale.ROOT).replaceAll("[^a-z0-9]+", "-").replaceAll("^-+|-+$", "");
        if (slug.length() > maxChars) {
            slug = slug.substring(0, maxChars).replaceAll("-+$", "");
        }
        boolean lossless = slug.equals(text.toLowerCase(Locale.ROOT).replace(' ', '-'));
        if (lossless) {
            return slug;
        }
        String hash = CacheKey.sha256(text.getBytes(StandardCharsets.UTF_8)).substring(0, 8);
        return (slug.isEmpty() ? fallback : slug) + "-" + hash;
    }
}
