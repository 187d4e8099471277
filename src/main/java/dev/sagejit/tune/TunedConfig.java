package dev.sagejit.tune;

import dev.sagejit.spec.TileConfig;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.Objects;
import java.util.OptionalDouble;

/**
 * The best tile config measured for one kernel spec in one shape bucket.
 *
 * @param specKey         kernel spec key, e.g. {@code fwd_int8fp8_d128_causal_lse_sm90a}
 * @param bucket          shape bucket key, e.g. {@code q4096_k4096_bh128} ({@link ShapeBucket#key()})
 * @param tiles           tile config key, e.g. {@code wgm128n128w8s2} ({@link TileConfig#key()})
 * @param medianMs        median kernel time with these tiles, milliseconds
 * @param tops            throughput at that time, tera-operations per second
 * @param measuredAt      when it was measured, an ISO-8601 instant such as {@code 2025-06-01T12:00:00Z}
 * @param run             id of the tuning run that measured it (free text, e.g. a run timestamp)
 * @param defaultMedianMs median time of the default tiles in the same run, when it was measured
 */
public record TunedConfig(String specKey, String bucket, String tiles, double medianMs, double tops,
        String measuredAt, String run, OptionalDouble defaultMedianMs) {

    public TunedConfig {
        Objects.requireNonNull(specKey, "specKey");
        Objects.requireNonNull(run, "run");
        Objects.requireNonNull(defaultMedianMs, "defaultMedianMs (use OptionalDouble.empty())");
        if (specKey.isBlank() || !specKey.equals(specKey.strip())) {
            throw new IllegalArgumentException("tuned config: spec key '" + specKey
                    + "' must be a KernelSpec.key() such as fwd_bf16_d128_sm90a");
        }
        bucket = ShapeBucket.parse(Objects.requireNonNull(bucket, "bucket")).key();
        tiles = TileConfig.parse(Objects.requireNonNull(tiles, "tiles")).key();
        requireTime(medianMs, "medianMs");
        if (!(tops >= 0) || Double.isInfinite(tops)) {
            throw new IllegalArgumentException("tuned config: tops must be a finite number >= 0, got " + tops);
        }
        try {
            Instant.parse(Objects.requireNonNull(measuredAt, "measuredAt"));
        } catch (DateTimeParseException e) {
            throw new IllegalArgumentException("tuned config: measuredAt '" + measuredAt
                    + "' is not an ISO-8601 instant such as 2025-06-01T12:00:00Z (use Instant.toString())", e);
        }
        if (defaultMedianMs.isPresent()) {
            requireTime(defaultMedianMs.getAsDouble(), "defaultMedianMs");
        }
    }

    /** A tuned config without a measurement of the default tiles. */
    public TunedConfig(String specKey, String bucket, String tiles, double medianMs, double tops,
            String measuredAt, String run) {
        this(specKey, bucket, tiles, medianMs, tops, measuredAt, run, OptionalDouble.empty());
    }

    private static void requireTime(double ms, String what) {
        if (!(ms > 0) || Double.isInfinite(ms)) {
            throw new IllegalArgumentException("tuned config: " + what + " must be a finite time > 0 ms, got " + ms);
        }
    }

    /** The tile config this record names. */
    public TileConfig tileConfig() {
        return TileConfig.parse(tiles);
    }

    /** When it was measured. */
    public Instant measuredInstant() {
        return Instant.parse(measuredAt);
    }

    /** How many times faster than the default tiles ({@code defaultMedianMs / medianMs}), when known. */
    public OptionalDouble speedup() {
        return defaultMedianMs.isPresent() ? OptionalDouble.of(defaultMedianMs.getAsDouble() / medianMs)
                : OptionalDouble.empty();
    }
}
