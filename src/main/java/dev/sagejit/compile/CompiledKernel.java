package dev.sagejit.compile;

import dev.sagejit.spec.Arch;
import java.time.Duration;

/**
 * A kernel image NVRTC produced (or the cache returned), with what is known about it.
 *
 * @param name         spec key of the source
 * @param entry        {@code extern "C"} function to look up after loading the image
 * @param arch         architecture it was built for
 * @param output       CUBIN or PTX
 * @param image        the image bytes (PTX is NUL-free text); do not modify
 * @param report       ptxas's resource report (all zero for PTX)
 * @param log          NVRTC's program log
 * @param backend      {@code jcuda} or {@code ffm}
 * @param nvrtcVersion e.g. {@code 12.9}
 * @param compileTime  time NVRTC took when it was compiled
 * @param fromCache    true when this call did not run NVRTC
 */
public record CompiledKernel(String name, String entry, Arch arch, Output output, byte[] image,
        PtxasReport report, String log, String backend, String nvrtcVersion, Duration compileTime,
        boolean fromCache) {

    /** The same kernel marked as served from the cache. */
    public CompiledKernel asCached() {
        return fromCache ? this : new CompiledKernel(name, entry, arch, output, image, report, log,
                backend, nvrtcVersion, compileTime, true);
    }

    @Override
    public String toString() {
        return "CompiledKernel[" + name + " " + arch.name() + " " + output + " " + image.length + " B, "
                + report.summary() + ", " + backend + " " + nvrtcVersion + (fromCache ? ", cached" : "")
                + "]";
    }
}
