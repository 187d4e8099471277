package dev.sagejit.api;

import java.util.Objects;
import java.util.Optional;

/**
 * What an attention call computes, independent of the tensors it runs on. Build with
 * {@link #builder()}; invalid combinations fail in {@link Builder#build()} with a message naming the
 * conflict.
 *
 * @param precision precision mode
 * @param causal    bottom-right aligned causal mask (query i sees key j when j <= i + Nk - Nq)
 * @param scale     softmax scale; empty means 1/sqrt(head dim)
 * @param lse       whether to also return the FP32 log-sum-exp of each query row (natural log)
 * @param tiles     a tile config key (e.g. {@code m128n64w4s2}) forcing the kernel's tiles; empty
 *                  means the tuned or default choice
 */
public record AttentionOptions(Precision precision, boolean causal, Optional<Double> scale, boolean lse,
        Optional<String> tiles) {

    public AttentionOptions {
        Objects.requireNonNull(precision, "precision");
        Objects.requireNonNull(scale, "scale");
        Objects.requireNonNull(tiles, "tiles");
        scale.ifPresent(s -> {
            if (!(s > 0) || s.isInfinite()) {
                throw new IllegalArgumentException("softmax scale must be a positive finite number, got " + s);
            }
        });
    }

    /** log2(e) in double: the softmax scale times it is rounded once to FP32. */
    private static final double LOG2_E = 1.0 / Math.log(2.0);

    /** These options asking for the LSE or not (a training forward and the backward need it). */
    public AttentionOptions withLse(boolean wanted) {
        return new AttentionOptions(precision, causal, scale, wanted, tiles);
    }

    /** These options with the precision {@code p} (e.g. {@link Precision#AUTO} resolved). */
    public AttentionOptions withPrecision(Precision p) {
        return new AttentionOptions(p, causal, scale, lse, tiles);
    }

    /** The scale used for a head dim: the given one or 1/sqrt(headDim). */
    public double effectiveScale(int headDim) {
        return scale.orElse(1.0 / Math.sqrt(headDim));
    }

    /**
     * The scale the kernels take, for exp2: {@code effectiveScale(headDim) * log2(e)} rounded once to
     * FP32 (the CPU emulations round it the same way).
     */
    public float scaleLog2(int headDim) {
        return (float) (effectiveScale(headDim) * LOG2_E);
    }

    public static Builder builder() {
        return new Builder();
    }

    /** Builder with defaults: BF16, not causal, scale 1/sqrt(D), no LSE, default tiles. */
    public static final class Builder {
        private Precision precision = Precision.BF16;
        private boolean causal;
        private Double scale;
        private boolean lse;
        private String tiles;

        private Builder() {
        }

        public Builder precision(Precision p) {
            this.precision = p;
            return this;
        }

        public Builder causal(boolean c) {
            this.causal = c;
            return this;
        }

        public Builder scale(double s) {
            this.scale = s;
            return this;
        }

        public Builder lse(boolean wanted) {
            this.lse = wanted;
            return this;
        }

        public Builder tiles(String key) {
            this.tiles = key;
            return this;
        }

        public AttentionOptions build() {
            return new AttentionOptions(precision, causal, Optional.ofNullable(scale), lse, Optional.ofNullable(tiles));
        }
    }
}
