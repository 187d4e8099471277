package dev.sagejit.reference;

import dev.sagejit.api.Layout;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

/**
 * Seeded generators of the input families of RESULTS.md, so figures from different runs mean the
 * same thing. Each (tensor, batch, head) slice draws from its own stream derived from the seed, so
 * the values are the same for every layout and for any thread count; slices are filled in parallel.
 */
public final class Inputs {
    public static final String GAUSSIAN = "gaussian";
    public static final String K_CHANNEL_OFFSET = "k-channel-offset";
    public static final String HEAVY_TAIL = "heavy-tail";
    public static final String PEAKY = "peaky";

    /** Magnitude of the K channel offset of {@code k-channel-offset}. */
    public static final double CHANNEL_OFFSET = 20.0;
    /** Share of K's head-dim channels that carry the offset. */
    public static final double OFFSET_CHANNEL_FRACTION = 0.12;
    /** Degrees of freedom of the Student-t entries of {@code heavy-tail}. */
    public static final int HEAVY_TAIL_DOF = 3;

    private static final List<String> FAMILIES = List.of(GAUSSIAN, K_CHANNEL_OFFSET, HEAVY_TAIL, PEAKY);

    // Stream tags: one independent stream per tensor role.
    private static final long TAG_Q = 1, TAG_K = 2, TAG_V = 3, TAG_CHANNELS = 4, TAG_PEAK = 5;

    private Inputs() {
    }

    /** Q [B, Hq, Nq, D], K and V [B, Hkv, Nk, D], all in one layout. */
    public record Qkv(HostTensor q, HostTensor k, HostTensor v) {
    }

    /** The family names {@link #generate} accepts. */
    public static List<String> families() {
        return FAMILIES;
    }

    /**
     * The upstream gradient dO of a backward test or study: Gaussian values shaped like Q, drawn with
     * {@code seed} (pass a seed other than the inputs').
     */
    public static HostTensor gradient(AttentionProblem p, Layout layout, long seed) {
        return generate(GAUSSIAN, p, layout, seed).q();
    }

    /**
     * Generates Q, K and V of family {@code family} for problem {@code p}; the same seed gives the same
     * logical values in every layout.
     */
    public static Qkv generate(String family, AttentionProblem p, Layout layout, long seed) {
        HostTensor q = HostTensor.zeros(p.batch(), p.hq(), p.nq(), p.headDim(), layout);
        HostTensor k = HostTensor.zeros(p.batch(), p.hkv(), p.nk(), p.headDim(), layout);
        HostTensor v = HostTensor.zeros(p.batch(), p.hkv(), p.nk(), p.headDim(), layout);
        switch (family) {
            case GAUSSIAN -> {
                fillGaussian(q, seed, TAG_Q);
                fillGaussian(k, seed, TAG_K);
                fillGaussian(v, seed, TAG_V);
            }
            case K_CHANNEL_OFFSET -> {
                fillGaussian(q, seed, TAG_Q);
                fillGaussian(k, seed, TAG_K);
                fillGaussian(v, seed, TAG_V);
                addChannelOffset(k, seed);
            }
            case HEAVY_TAIL -> {
                fillStudentT(q, seed, TAG_Q);
                fillStudentT(k, seed, TAG_K);
                fillStudentT(v, seed, TAG_V);
            }
            case PEAKY -> {
                fillGaussian(k, seed, TAG_K);
                fillGaussian(v, seed, TAG_V);
                fillPeakyQueries(q, k, p, seed);
            }
            default -> throw new IllegalArgumentException("unknown input family '" + family + "'; expected one of "
                    + FAMILIES);
        }
        return new Qkv(q, k, v);
    }

    /**
     * The head-dim channels of K head {@code h} that carry an offset in {@code k-channel-offset} and
     * its sign: {@code +1}, {@code -1} or {@code 0} (no offset) per channel. The same for every batch
     * entry and token, as a property of the (model's) head.
     */
    public static int[] channelOffsetSigns(int headDim, int h, long seed) {
        int count = (int) Math.max(1, Math.round(OFFSET_CHANNEL_FRACTION * headDim));
        SplittableRandom rng = stream(seed, TAG_CHANNELS, 0, h);
        int[] order = IntStream.range(0, headDim).toArray();
        for (int i = 0; i < count; i++) { // partial Fisher-Yates: the first count entries are the pick
            int j = i + rng.nextInt(headDim - i);
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        int[] signs = new int[headDim];
        for (int i = 0; i < count; i++) {
            signs[order[i]] = rng.nextBoolean() ? 1 : -1;
        }
        return signs;
    }

    private static void fillGaussian(HostTensor t, long seed, long tag) {
        forEachSlice(t, (b, h) -> {
            SplittableRandom rng = stream(seed, tag, b, h);
            float[] data = t.data();
            for (int n = 0; n < t.seq(); n++) {
                int base = t.index(b, h, n, 0);
                for (int d = 0; d < t.headDim(); d++) {
                    data[base + d] = (float) rng.nextGaussian();
                }
            }
        });
    }

    private static void fillStudentT(HostTensor t, long seed, long tag) {
        forEachSlice(t, (b, h) -> {
            SplittableRandom rng = stream(seed, tag, b, h);
            float[] data = t.data();
            for (int n = 0; n < t.seq(); n++) {
                int base = t.index(b, h, n, 0);
                for (int d = 0; d < t.headDim(); d++) {
                    data[base + d] = (float) studentT(rng, HEAVY_TAIL_DOF);
                }
            }
        });
    }

    /** t = Z / sqrt(chi2_nu / nu), chi2_nu a sum of nu squared standard normals. */
    private static double studentT(SplittableRandom rng, int dof) {
        double z = rng.nextGaussian();
        double chi2 = 0;
        for (int i = 0; i < dof; i++) {
            double g = rng.nextGaussian();
            chi2 += g * g;
        }
        return z / Math.sqrt(chi2 / dof);
    }

    private static void addChannelOffset(HostTensor k, long seed) {
        float[] data = k.data();
        for (int h = 0; h < k.heads(); h++) {
            int[] signs = channelOffsetSigns(k.headDim(), h, seed);
            for (int b = 0; b < k.batch(); b++) {
                for (int n = 0; n < k.seq(); n++) {
                    int base = k.index(b, h, n, 0);
                    for (int d = 0; d < k.headDim(); d++) {
                        data[base + d] += (float) (signs[d] * CHANNEL_OFFSET);
                    }
                }
            }
        }
    }

    /**
     * Each query row is 0.5 * N(0, 1) + 2 * (a random key of its kv head). Under a causal mask the key
     * is drawn among the keys the row can see (so the peak is not masked away); a fully masked row
     * draws from all keys.
     */
    private static void fillPeakyQueries(HostTensor q, HostTensor k, AttentionProblem p, long seed) {
        forEachSlice(q, (b, h) -> {
            SplittableRandom noise = stream(seed, TAG_Q, b, h);
            SplittableRandom pick = stream(seed, TAG_PEAK, b, h);
            int kvh = p.kvHead(h);
            float[] qd = q.data();
            float[] kd = k.data();
            for (int n = 0; n < q.seq(); n++) {
                int visible = p.visibleKeys(n);
                int key = pick.nextInt(visible > 0 ? visible : p.nk());
                int qBase = q.index(b, h, n, 0);
                int kBase = k.index(b, kvh, key, 0);
                for (int d = 0; d < q.headDim(); d++) {
                    qd[qBase + d] = (float) (0.5 * noise.nextGaussian() + 2.0 * kd[kBase + d]);
                }
            }
        });
    }

    private interface SliceAction {
        void run(int b, int h);
    }

    private static void forEachSlice(HostTensor t, SliceAction action) {
        int heads = t.heads();
        IntStream.range(0, t.batch() * heads).parallel().forEach(bh -> action.run(bh / heads, bh % heads));
    }

    /** An independent stream for (seed, tag, b, h): the coordinates are hashed into the stream's seed. */
    private static SplittableRandom stream(long seed, long tag, int b, int h) {
        long s = mix(seed ^ 0x5DEECE66DL);
        s = mix(s + tag);
        s = mix(s + b);
        s = mix(s + h);
        return new SplittableRandom(s);
    }

    /** SplitMix64 finaliser: a bijective avalanche of 64 bits. */
    private static long mix(long z) {
        z += 0x9E3779B97F4A7C15L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
