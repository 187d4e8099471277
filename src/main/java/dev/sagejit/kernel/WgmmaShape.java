package dev.sagejit.kernel;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One wgmma instruction shape a template wraps in a device function (common/wgmma.ftl renders the
 * plan's list of them).
 *
 * @param immSuffix the immediate operands after the scale-d predicate (negate/transpose flags)
 * @param accType   C type of the accumulator registers ({@code float} or {@code int})
 */
record WgmmaShape(String name, String doc, int n, int k, String dtype, String atype, String btype,
        boolean aFromRegs, String immSuffix, String accType) {
    /** Bytes of each operand row one instruction consumes (its K times the element size). */
    static final int K_BYTES = 32;

    /** An INT8 x INT8 -> INT32 shape (k32, B K-major from shared memory; no immediates). */
    static WgmmaShape int8(String name, String doc, int n, boolean aFromRegs) {
        return new WgmmaShape(name, doc, n, K_BYTES, "s32", "s8", "s8", aFromRegs, "", "int");
    }

    /**
     * A 16-bit ({@code elem}: {@code bf16} or {@code f16}) x 16-bit -> FP32 shape (k16). Its immediates are
     * the A and B scales (1), A's transpose flag when A comes from shared memory (K-major: 0), and B's
     * ({@code bMnMajor}: B stored N-major, as row-major V for P V).
     */
    static WgmmaShape sixteenBit(String name, String doc, int n, String elem, boolean aFromRegs, boolean bMnMajor) {
        String imm = ", 1, 1" + (aFromRegs ? "" : ", 0") + (bMnMajor ? ", 1" : ", 0");
        return new WgmmaShape(name, doc, n, K_BYTES / 2, "f32", elem, elem, aFromRegs, imm, "float");
    }

    Map<String, Object> model() {
        var m = new LinkedHashMap<String, Object>();
        m.put("name", name);
        m.put("doc", doc + " (m64n" + n + "k" + k + ")");
        m.put("n", n);
        m.put("k", k);
        m.put("dtype", dtype);
        m.put("atype", atype);
        m.put("btype", btype);
        m.put("aFromRegs", aFromRegs);
        m.put("immSuffix", immSuffix);
        m.put("accType", accType);
        m.put("accConstraint", accType.equals("int") ? "r" : "f");
        return m;
    }
}
