package dev.sagejit.spec;

import java.util.Arrays;

/**
 * The one place the SageBwd (8-bit training) operand layout is decided (docs/sagebwd.md): the
 * quantization block, which is also the kernels' tile, and the token orders of the transposed INT8
 * copies the tensor cores read. The quantizer, the forward and backward kernels (through their
 * template models) and the CPU emulation's defaults read it.
 */
public final class SageBwdLayout {
    /**
     * Rows of one INT8 quantization block of Q, K, V and dO (one scale each), and the side of the
     * kernels' P and dS tiles (one scale per tile): {@code SageBwdReference.Options.DEFAULT}.
     */
    public static final int BLOCK = 64;
    /** Largest INT8 code magnitude. */
    public static final int INT8_MAX = Int8Fp8Layout.INT8_MAX;
    /** Period of the token permutations of the transposed copies. */
    public static final int PERM_PERIOD = 16;
    /**
     * Transposed copies whose tokens meet an operand built from an MMA accumulator's columns
     * (P~ V, P^T dO, dS^T Q): a thread holds columns {2t, 2t+1, 8+2t, 9+2t} of every 16 and packs them
     * into one A register, so position p holds token PERM_COLUMNS[p] (the int8-fp8 V^T order).
     */
    private static final int[] PERM_COLUMNS = Int8Fp8Layout.vPerm();
    /**
     * Transposed copies whose tokens meet an operand built from an accumulator's rows (dS K: dS^T's
     * rows g and g + 8 are stored side by side), so position p holds token p / 2 + 8 (p % 2).
     */
    private static final int[] PERM_ROWS = {0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15};

    /** Which token order a transposed copy has. */
    public enum Order {
        /** {@link #PERM_COLUMNS}: Q^T (for dK), V^T (for O), dO^T (for dV). */
        COLUMNS(0),
        /** {@link #PERM_ROWS}: K^T (for dQ). */
        ROWS(1);

        private final int code;

        Order(int code) {
            this.code = code;
        }

        /** The value the quantizer kernel takes for this order. */
        public int code() {
            return code;
        }

        /** Token stored at position p of a transposed row. */
        public int token(int p) {
            return PERM_PERIOD * (p / PERM_PERIOD) + perm()[p % PERM_PERIOD];
        }

        /** The token order inside each period of {@link #PERM_PERIOD} positions. */
        public int[] perm() {
            return switch (this) {
                case COLUMNS -> Arrays.copyOf(PERM_COLUMNS, PERM_PERIOD);
                case ROWS -> Arrays.copyOf(PERM_ROWS, PERM_PERIOD);
            };
        }
    }

    private SageBwdLayout() {
    }

    /** Quantization blocks (and scales) per head of a sequence of n rows. */
    public static int blocks(int n) {
        return (n + BLOCK - 1) / BLOCK;
    }

    /** Row pitch in bytes of a transposed copy: n rounded up to whole blocks. */
    public static int padded(int n) {
        return blocks(n) * BLOCK;
    }
}
