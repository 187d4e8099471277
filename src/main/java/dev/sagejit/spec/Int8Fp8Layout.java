package dev.sagejit.spec;

import java.util.Arrays;
import java.util.List;

/**
 * The one place the int8-fp8 (SageAttention2) operand layout is decided (docs/int8-fp8-quantization.md):
 * the scale groups of Q and K, the FP8 range of P and V, and the token order of V^T. The quantizer
 * kernels, the attention kernels (through their template models) and the CPU emulation all read it.
 */
public final class Int8Fp8Layout {
    /** Largest INT8 code magnitude: codes are symmetric, -128 is never produced. */
    public static final int INT8_MAX = 127;
    /** Largest finite FP8 E4M3 value: V's channel scale maps its maximum here, P~'s row max too. */
    public static final float FP8_MAX = 448f;
    /** log2(448): P~ = exp2(S * sl - m + log2 448) maps each row's maximum to {@link #FP8_MAX}. */
    public static final double LOG2_FP8_MAX = Math.log(FP8_MAX) / Math.log(2.0);
    /**
     * Log2 units by which the speculative softmax base (FwdKernelPlan.speculativeSoftmax) may lag a
     * row's maximum: P~ = exp2(s - base + log2(448) - headroom), so the row maximum maps to 448 /
     * 2^headroom = 3.5 at the base and to at most 448 while the base lags; a warp whose row rises
     * further redoes its block exactly. 7 makes the redo rare (a score 2^7 times the running maximum);
     * the price is E4M3's subnormal range starting at 0.4% of the row maximum instead of 0.003%.
     * Measured on the H200 (benchmarks/results/2026-12-01-h200-int8fp8-spec-headroom-ab.jsonl, N 4096
     * d128, same run): headroom 2 757, 4 839, 7 845-856 TOPS against 784 without speculation;
     * cosine 0.99923-0.99942 and relative L1 0.0382-0.0392 on the checks that give 0.9992x / 0.0379.
     */
    public static final float SOFTMAX_HEADROOM_LOG2 = 7f;

    /**
     * Whether the quantizers rotate Q and K (docs/int8-fp8-quantization.md, "Q/K rotation"): every row
     * x (K after smoothing) becomes R x with R = H diag(sigma), H block-diagonal of
     * {@link #ROTATION_BLOCK} x {@link #ROTATION_BLOCK} Sylvester Hadamard matrices (entries +-1) and
     * sigma the fixed signs {@link #rotationNegates}. R R^T = ROTATION_BLOCK I, so Q K^T is unchanged
     * once Q's scale carries 1 / ROTATION_BLOCK; a token's outlier channel is spread over its block, so
     * it no longer sets the INT8 step of the other channels alone.
     */
    public static final boolean ROTATE_QK = true;
    /**
     * Channels of one Hadamard block: the 8 channels (16 bytes of BF16/FP16) one quantizer thread
     * holds, so the rotation needs no data from other lanes. NumPy emulation on heavy-tailed (Student-t,
     * 3 dof) N 4096 D 128 (benchmarks/heavy_tail_ablation.py, seeds 0 / 2): cosine 0.99795 / 0.99850
     * unrotated, 0.99938 / 0.99943 with blocks of 8, 0.99950 / 0.99951 of 16, 0.99959 / 0.99958 of 128.
     * The whole-row rotation (4 shuffle stages) cost the quantizers about 0.1 ms at B4 H32 N4096 D128
     * on the H200 (benchmarks/results/2026-12-01-h200-int8fp8-rotation.jsonl).
     */
    public static final int ROTATION_BLOCK = 8;
    /** Bit c of word c / 64 set: channel c is negated before the Hadamard transform (a fixed, arbitrary draw). */
    private static final long[] ROTATION_SIGN_BITS = {0xe71b9592244ececaL, 0x3fcb4b70f79a7ffcL};
    /** Largest head dim the rotation's sign table covers. */
    public static final int ROTATION_MAX_DIM = 64 * ROTATION_SIGN_BITS.length;

    /** Query rows of one Q scale slice (an m16 MMA tile); scales are stored for whole slices. */
    public static final int Q_SCALE_ROWS = 16;
    /**
     * Q scale groups per slice: one per row. (Sharing one scale between the rows g and g + 8 that a
     * thread owns, SageAttention2's per-thread grouping, costs about 0.001 cosine on heavy-tailed
     * inputs: one outlier row coarsens its partner; docs/int8-fp8-quantization.md.)
     */
    public static final int Q_GROUPS_PER_SLICE = 16;
    /** Keys of one K scale block; its groups are tokens with equal (token % 8) / 2. */
    public static final int K_SCALE_TOKENS = 64;
    /** K scale groups per block: the key columns {2t, 2t + 1} (mod 8) one thread of a quad owns. */
    public static final int K_GROUPS_PER_BLOCK = 4;
    /** Period of V^T's token permutation; V^T rows are padded to a multiple of it. */
    public static final int V_PERM_PERIOD = 16;
    /**
     * Columns of ones appended to V (one n8 MMA tile): P~ V then also yields P~'s row sums, the
     * softmax denominator l, in the PV accumulator, so l is the sum of the FP8 P~ actually multiplied
     * (and costs no per-element adds).
     */
    public static final int ROW_SUM_COLUMNS = 8;
    /** E4M3 bits of 1.0: the ones columns' bytes. */
    public static final int E4M3_ONE = 0x38;
    /** Position p of every 16-token slice of V^T holds token V_PERM[p] of that slice. */
    private static final int[] V_PERM = {0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15};
    private static final int[] V_PERM_INV = new int[V_PERM_PERIOD];

    static {
        for (int p = 0; p < V_PERM_PERIOD; p++) {
            V_PERM_INV[V_PERM[p]] = p;
        }
    }

    private Int8Fp8Layout() {
    }

    /** Whether the rotation negates channel c (c < {@link #ROTATION_MAX_DIM}). */
    public static boolean rotationNegates(int c) {
        if (c < 0 || c >= ROTATION_MAX_DIM) {
            throw new IllegalArgumentException("channel " + c + " is outside the rotation's " + ROTATION_MAX_DIM
                    + " channels");
        }
        return (ROTATION_SIGN_BITS[c / 64] >>> (c % 64) & 1L) != 0;
    }

    /** The rotation's signs as 32-bit words for the templates: bit c % 32 of word c / 32 is channel c's. */
    public static List<String> rotationSignWords(int headDim) {
        var words = new java.util.ArrayList<String>();
        for (int w = 0; w < headDim / 32; w++) {
            long bits = ROTATION_SIGN_BITS[w / 2] >>> (32 * (w % 2)) & 0xffffffffL;
            words.add(String.format(java.util.Locale.ROOT, "0x%08Xu", bits));
        }
        return words;
    }

    /** Q scale entries per (batch, head): {@link #Q_GROUPS_PER_SLICE} per started slice. */
    public static int qGroups(int nq) {
        return ceilDiv(nq, Q_SCALE_ROWS) * Q_GROUPS_PER_SLICE;
    }

    /** K scale entries per (batch, kv head): {@link #K_GROUPS_PER_BLOCK} per started block. */
    public static int kGroups(int nk) {
        return ceilDiv(nk, K_SCALE_TOKENS) * K_GROUPS_PER_BLOCK;
    }

    /** Row pitch of V^T in bytes: tokens padded to {@link #V_PERM_PERIOD}. */
    public static int nkPad(int nk) {
        return ceilDiv(nk, V_PERM_PERIOD) * V_PERM_PERIOD;
    }

    /** Index of query row n's group among its (batch, head)'s {@link #qGroups} scales. */
    public static int qGroup(int n) {
        return Q_GROUPS_PER_SLICE * (n / Q_SCALE_ROWS) + n % Q_GROUPS_PER_SLICE;
    }

    /** Index of key token n's group among its (batch, kv head)'s {@link #kGroups} scales. */
    public static int kGroup(int n) {
        return K_GROUPS_PER_BLOCK * (n / K_SCALE_TOKENS) + (n % 8) / 2;
    }

    /** Position in a V^T row of token n. */
    public static int vPosition(int n) {
        return V_PERM_PERIOD * (n / V_PERM_PERIOD) + V_PERM_INV[n % V_PERM_PERIOD];
    }

    /** Token stored at position p of a V^T row. */
    public static int vToken(int p) {
        return V_PERM_PERIOD * (p / V_PERM_PERIOD) + V_PERM[p % V_PERM_PERIOD];
    }

    /** V_PERM: position p of every 16-token slice of V^T holds that slice's token vPerm()[p]. */
    public static int[] vPerm() {
        return Arrays.copyOf(V_PERM, V_PERM_PERIOD);
    }

    private static int ceilDiv(int n, int d) {
        return (int) (((long) n + d - 1) / d);
    }
}
