package dev.sagejit.reference;

/**
 * The FP32 arithmetic the emulated attentions share for their log2-domain softmax, so both evaluate
 * it the same way: 2^x rounded once, and the constants that move between log2 and ln.
 */
final class Log2Domain {
    /** log2(e), in double: softmax scale * LOG2_E is rounded once to FP32. */
    static final double LOG2_E = 1.0 / Math.log(2.0);
    /** ln 2 in FP32: LSE = (log2-domain value) * LN2. */
    static final float LN2 = (float) Math.log(2.0);

    private Log2Domain() {
    }

    /** 2^x in FP32 (evaluated in double and rounded once). */
    static float exp2(float x) {
        return (float) Math.pow(2.0, x);
    }

    /** log2(x) of a positive FP32 value, rounded once to FP32. */
    static float log2(float x) {
        return (float) (Math.log(x) * LOG2_E);
    }
}
