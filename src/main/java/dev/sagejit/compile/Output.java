package dev.sagejit.compile;

/** What NVRTC hands back: a device binary for one arch, or PTX the driver JIT-compiles at load. */
public enum Output {
    /** SASS in an ELF container, for exactly one {@code sm_XX}; the ptxas report comes with it. */
    CUBIN("kernel.cubin"),
    /** PTX text for a {@code compute_XX} virtual arch. */
    PTX("kernel.ptx");

    private final String fileName;

    Output(String fileName) {
        this.fileName = fileName;
    }

    /** Name of the image file inside a cache entry. */
    public String fileName() {
        return fileName;
    }
}
