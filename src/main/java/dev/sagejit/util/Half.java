package dev.sagejit.util;

import dev.sagejit.api.DType;

/**
 * Bit-exact conversions between {@code float} and the two 16-bit float formats the GPU kernels read:
 * bfloat16 (8 exponent bits, 7 mantissa bits) and IEEE binary16 (5 exponent bits, 10 mantissa bits).
 * Both narrowing conversions round to nearest, ties to even, as the CUDA intrinsics
 * {@code __float2bfloat16_rn} and {@code __float2half_rn} do, so the values computed here are the
 * values the GPU sees.
 */
public final class Half {
    /** Quiet bit of a bf16 NaN (the top mantissa bit). */
    private static final int BF16_QUIET_BIT = 0x0040;

    private Half() {
    }

    /**
     * Rounds to bfloat16, nearest even. Values beyond the largest bf16 round to infinity; NaN stays
     * NaN (sign and top payload bits kept, quiet bit set, so truncation can never yield infinity).
     */
    public static short floatToBf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        if (Float.isNaN(f)) {
            return (short) ((bits >>> 16) | BF16_QUIET_BIT);
        }
        // Adding 0x7FFF plus the lowest kept bit rounds the dropped half to nearest, ties to even;
        // a carry out of the mantissa correctly bumps the exponent (up to infinity).
        int lsb = (bits >>> 16) & 1;
        return (short) ((bits + 0x7FFF + lsb) >>> 16);
    }

    /** Exact widening of bfloat16 bits to float. */
    public static float bf16ToFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xFFFF) << 16);
    }

    /**
     * Rounds to IEEE binary16, nearest even; overflow gives infinity, tiny values give correctly
     * rounded subnormals or signed zero (delegates to {@link Float#floatToFloat16}).
     */
    public static short floatToFp16(float f) {
        return Float.floatToFloat16(f);
    }

    /** Exact widening of binary16 bits to float. */
    public static float fp16ToFloat(short bits) {
        return Float.float16ToFloat(bits);
    }

    /** Rounds one float to the given 16-bit type and returns its bits. */
    public static short toBits(float f, DType t) {
        return switch (t) {
            case BF16 -> floatToBf16(f);
            case FP16 -> floatToFp16(f);
            case FP32 -> throw unsupported(t);
        };
    }

    /** Widens one 16-bit value of the given type to float. */
    public static float fromBits(short bits, DType t) {
        return switch (t) {
            case BF16 -> bf16ToFloat(bits);
            case FP16 -> fp16ToFloat(bits);
            case FP32 -> throw unsupported(t);
        };
    }

    /** Rounds a float to the nearest value representable in {@code t} (FP32 returns it unchanged). */
    public static float round(float f, DType t) {
        return t == DType.FP32 ? f : fromBits(toBits(f, t), t);
    }

    /** Rounds every element to {@code t} (BF16 or FP16) and returns the bits. */
    public static short[] toBits(float[] x, DType t) {
        short[] out = new short[x.length];
        switch (t) {
            case BF16 -> {
                for (int i = 0; i < x.length; i++) {
                    out[i] = floatToBf16(x[i]);
                }
            }
            case FP16 -> {
                for (int i = 0; i < x.length; i++) {
                    out[i] = floatToFp16(x[i]);
                }
            }
            case FP32 -> throw unsupported(t);
        }
        return out;
    }

    /** Widens every element of {@code bits}, read as {@code t} (BF16 or FP16), to float. */
    public static float[] fromBits(short[] bits, DType t) {
        float[] out = new float[bits.length];
        switch (t) {
            case BF16 -> {
                for (int i = 0; i < bits.length; i++) {
                    out[i] = bf16ToFloat(bits[i]);
                }
            }
            case FP16 -> {
                for (int i = 0; i < bits.length; i++) {
                    out[i] = fp16ToFloat(bits[i]);
                }
            }
            case FP32 -> throw unsupported(t);
        }
        return out;
    }

    /** Rounds every element through {@code t} into a new array (FP32: a copy). */
    public static float[] round(float[] x, DType t) {
        return t == DType.FP32 ? x.clone() : fromBits(toBits(x, t), t);
    }

    private static IllegalArgumentException unsupported(DType t) {
        return new IllegalArgumentException("16-bit conversion needs BF16 or FP16, got " + t);
    }
}
