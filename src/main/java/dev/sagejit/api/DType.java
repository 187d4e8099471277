package dev.sagejit.api;

/** Element types of tensors that cross the API. {@code cudaName} is the type the templates use. */
public enum DType {
    BF16(2, "__nv_bfloat16"),
    FP16(2, "__half"),
    FP32(4, "float");

    private final int bytes;
    private final String cudaName;

    DType(int bytes, String cudaName) {
        this.bytes = bytes;
        this.cudaName = cudaName;
    }

    /** Size of one element in bytes. */
    public int bytes() {
        return bytes;
    }

    /** Name of the element type in generated CUDA code. */
    public String cudaName() {
        return cudaName;
    }
}
