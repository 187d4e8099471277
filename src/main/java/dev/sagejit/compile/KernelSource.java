package dev.sagejit.compile;

import java.util.Objects;

/**
 * One rendered CUDA C++ translation unit, ready for NVRTC.
 *
 * @param name  readable spec key, e.g. {@code fwd_bf16_d128_sm90a_m128n64w4s2}; used for file names
 * @param code  the CUDA C++ source
 * @param entry the {@code extern "C"} kernel function to launch
 */
public record KernelSource(String name, String code, String entry) {

    public KernelSource {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(code, "code");
        Objects.requireNonNull(entry, "entry");
        if (name.isBlank() || entry.isBlank()) {
            throw new IllegalArgumentException("kernel source needs a non-blank name and entry; got name '"
                    + name + "', entry '" + entry + "'");
        }
    }

    /** {@link #name()} reduced to characters safe in a file name. */
    public String fileStem() {
        return name.replaceAll("[^A-Za-z0-9._-]", "_");
    }
}
