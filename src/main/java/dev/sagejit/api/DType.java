package dev.sagejit.api;

/**
 * Element types of tensors that cross the API. {@code cudaName} is the type the templates use,
 * {@code ptxName} the type suffix of their inline PTX.
 */
public enum DType {
    BF16(2, "__nv_bfloat16", "bf16"),
    FP16(2, "__half", "f16"),
    FP32(4, "float", "f32");

    private final int bytes;
    private final String cudaName;
    private final String ptxName;

    DType(int bytes, String cudaName, String ptxName) {
        this.bytes = bytes;
        this.cudaName = cudaName;
        this.ptxName = ptxName;
    }

    /** Size of one element in bytes. */
    public int bytes() {
        return bytes;
    }

    /** Name of the element type in generated CUDA code. */
    public String cudaName() {
        return cudaName;
    }

    /** Type suffix of the element in PTX instructions, e.g. {@code bf16} in {@code cvt.rn.bf16x2.f32}. */
    public String ptxName() {
        return ptxName;
    }
}
