package dev.sagejit.compile;

import java.nio.file.Path;

/**
 * A libnvrtc shared library found on this machine.
 *
 * @param path     absolute path of the library file
 * @param major    CUDA major version it belongs to (12 or 13)
 * @param foundVia where the locator found it, e.g. {@code SAGEJIT_PYTHON_PATH wheel}
 */
public record NvrtcLibrary(Path path, int major, String foundVia) {

    public NvrtcLibrary {
        path = path.toAbsolutePath().normalize();
    }

    @Override
    public String toString() {
        return path + " (CUDA " + major + ", via " + foundVia + ")";
    }
}
