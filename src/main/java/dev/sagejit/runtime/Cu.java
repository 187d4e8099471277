package dev.sagejit.runtime;

import dev.sagejit.api.SageException;
import jcuda.driver.CUresult;

/**
 * The one place driver result codes become exceptions. Exceptions are disabled in JCuda (see
 * {@link CudaDriver}) so every call returns its code and passes it through here with a name.
 */
final class Cu {
    private Cu() {
    }

    /** Throws {@link SageException.Launch} (or OutOfResources for out-of-memory) unless result is success. */
    static void check(int result, String call) {
        if (result == CUresult.CUDA_SUCCESS) {
            return;
        }
        if (result == CUresult.CUDA_ERROR_OUT_OF_MEMORY) {
            throw new SageException.OutOfResources(call + " failed with CUDA_ERROR_OUT_OF_MEMORY ("
                    + result + "): the GPU has no room for this request; free buffers or use smaller inputs");
        }
        throw new SageException.Launch(call, result, name(result));
    }

    /** CUresult's symbolic name, never throwing even for codes this JCuda version does not know. */
    static String name(int result) {
        try {
            return CUresult.stringFor(result);
        } catch (RuntimeException e) {
            return "CUresult " + result;
        }
    }

    /** Human size: 1536 becomes "1.5 KiB". */
    static String bytes(long n) {
        if (n < 1024) {
            return n + " B";
        }
        String[] units = {"KiB", "MiB", "GiB", "TiB", "PiB"};
        double v = n;
        int u = -1;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return String.format(java.util.Locale.ROOT, "%.1f %s", v, units[u]);
    }
}
