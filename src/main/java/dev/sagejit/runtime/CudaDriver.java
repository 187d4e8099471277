package dev.sagejit.runtime;

import dev.sagejit.api.SageException;
import jcuda.driver.CUresult;
import jcuda.driver.JCudaDriver;

/**
 * Whether the CUDA driver can be used on this machine. The first question loads JCuda's native
 * library (which links libcuda.so.1) and calls cuInit(0) once; the answer is kept for the life of the
 * process. Nothing here throws on a machine without a GPU.
 */
public final class CudaDriver {
    /** CUresult 35; JCuda 12.6's CUresult class does not name it. */
    private static final int CUDA_ERROR_INSUFFICIENT_DRIVER = 35;

    private CudaDriver() {
    }

    /** Outcome of the one-time probe: {@code reason} is null when the driver is usable. */
    private record Probe(String reason, int deviceCount, int driverVersion) {
    }

    private static final class Holder {
        static final Probe PROBE = probe();
    }

    /** True iff libcuda loads, cuInit(0) succeeds and at least one device is visible. Never throws. */
    public static boolean available() {
        return Holder.PROBE.reason() == null;
    }

    /**
     * Why {@link #available()} is false, as a sentence (e.g. "no NVIDIA driver (libcuda.so.1 not
     * found)"), or "the CUDA driver is available" when it is true.
     */
    public static String unavailableReason() {
        String r = Holder.PROBE.reason();
        return r == null ? "the CUDA driver is available" : r;
    }

    /** Number of CUDA devices; 0 when the driver is unavailable. */
    public static int deviceCount() {
        return Holder.PROBE.deviceCount();
    }

    /**
     * Driver API version as CUDA encodes it (1000 * major + 10 * minor, e.g. 13000 for CUDA 13.0).
     *
     * @throws SageException.Unsupported when no usable driver is installed
     */
    public static int driverVersion() {
        Probe p = Holder.PROBE;
        if (p.driverVersion() <= 0) {
            throw new SageException.Unsupported("no CUDA driver version: " + unavailableReason());
        }
        return p.driverVersion();
    }

    /** Throws Unsupported with the reason unless the driver is usable; used by {@link Device#open}. */
    static void requireAvailable(String what) {
        if (!available()) {
            throw new SageException.Unsupported("no GPU: cannot " + what + " because " + unavailableReason()
                    + ". Run on a machine with an NVIDIA GPU and driver, or skip GPU work (CudaDriver.available()).");
        }
    }

    private static Probe probe() {
        try {
            JCudaDriver.setExceptionsEnabled(false);
        } catch (Throwable t) {
            return new Probe(describeLoadFailure(t), 0, 0);
        }
        try {
            int[] version = {0};
            int vr = JCudaDriver.cuDriverGetVersion(version);
            int ir = JCudaDriver.cuInit(0);
            if (ir == CUresult.CUDA_ERROR_NO_DEVICE) {
                return new Probe("no CUDA device (cuInit reported CUDA_ERROR_NO_DEVICE; check nvidia-smi and CUDA_VISIBLE_DEVICES)",
                        0, vr == 0 ? version[0] : 0);
            }
            if (ir == CUDA_ERROR_INSUFFICIENT_DRIVER) {
                return new Probe("the NVIDIA driver is older than the CUDA version JCuda needs (cuInit reported "
                        + "CUDA_ERROR_INSUFFICIENT_DRIVER); update the driver", 0, vr == 0 ? version[0] : 0);
            }
            if (ir != CUresult.CUDA_SUCCESS) {
                return new Probe("the CUDA driver failed to initialise (cuInit(0) returned " + Cu.name(ir) + ")",
                        0, vr == 0 ? version[0] : 0);
            }
            int[] count = {0};
            int cr = JCudaDriver.cuDeviceGetCount(count);
            if (cr != CUresult.CUDA_SUCCESS) {
                return new Probe("cuDeviceGetCount failed with " + Cu.name(cr), 0, version[0]);
            }
            if (count[0] < 1) {
                return new Probe("no CUDA device (the driver loaded but sees 0 devices)", 0, version[0]);
            }
            return new Probe(null, count[0], version[0]);
        } catch (Throwable t) {
            return new Probe(describeLoadFailure(t), 0, 0);
        }
    }

    private static String describeLoadFailure(Throwable t) {
        StringBuilder all = new StringBuilder();
        for (Throwable c = t; c != null && all.length() < 2000; c = c.getCause()) {
            all.append(c.getClass().getSimpleName()).append(": ").append(c.getMessage()).append("; ");
        }
        String text = all.toString();
        if (text.contains("libcuda")) {
            return "no NVIDIA driver (libcuda.so.1 not found)";
        }
        if (t instanceof NoClassDefFoundError || t instanceof ExceptionInInitializerError
                || t instanceof UnsatisfiedLinkError) {
            return "no NVIDIA driver (JCuda's native driver library could not be loaded: " + shorten(text) + ")";
        }
        return "the CUDA driver could not be probed (" + shorten(text) + ")";
    }

    private static String shorten(String s) {
        String t = s.endsWith("; ") ? s.substring(0, s.length() - 2) : s;
        return t.length() > 300 ? t.substring(0, 300) + "..." : t;
    }
}
