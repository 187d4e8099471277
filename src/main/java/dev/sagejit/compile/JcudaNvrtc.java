package dev.sagejit.compile;

import dev.sagejit.api.SageException;
import dev.sagejit.spec.Arch;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import jcuda.nvrtc.JNvrtc;
import jcuda.nvrtc.nvrtcProgram;
import jcuda.nvrtc.nvrtcResult;

/**
 * NVRTC 12.x through JCuda's {@code JNvrtc}. JCuda's native glue links against
 * {@code libnvrtc.so.12} by soname; loading the discovered builtins and library by absolute path
 * first makes that soname resolve to them, so no {@code LD_LIBRARY_PATH} is needed. A process can
 * hold only one libnvrtc.so.12, so the first library bound wins for the life of the JVM.
 */
// Loading native code is this class's purpose; the JVM runs with --enable-native-access.
@SuppressWarnings("restricted")
public final class JcudaNvrtc extends AbstractNvrtc {
    private static Path loaded;

    private final String version;
    private final List<Arch> archs;

    /**
     * Loads {@code library} (a libnvrtc.so.12) and binds JCuda to it.
     *
     * @param dumpDir where sources that fail to compile are written
     * @throws SageException.Unsupported when it is not CUDA 12, or another .so.12 is already bound
     */
    public JcudaNvrtc(NvrtcLibrary library, Path dumpDir) {
        super(library, dumpDir);
        if (library.major() != 12) {
            throw new SageException.Unsupported("the JCuda backend needs libnvrtc.so.12 but was given "
                    + library + "; use the ffm backend (SAGEJIT_NVRTC_BACKEND=ffm) for CUDA " + library.major());
        }
        load(library);
        int[] major = new int[1];
        int[] minor = new int[1];
        check(JNvrtc.nvrtcVersion(major, minor), "nvrtcVersion");
        this.version = major[0] + "." + minor[0];
        this.archs = archsFor(supportedSms(), major[0], minor[0]);
    }

    private static synchronized void load(NvrtcLibrary library) {
        if (loaded != null) {
            if (!loaded.equals(library.path())) {
                throw new SageException.Unsupported("JCuda is already bound to " + loaded
                        + " in this JVM and cannot switch to " + library.path()
                        + "; point SAGEJIT_NVRTC at one library, or use the ffm backend");
            }
            return;
        }
        try {
            builtinsBeside(library).ifPresent(p -> System.load(p.toString()));
            System.load(library.path().toString());
        } catch (UnsatisfiedLinkError e) {
            throw new SageException.Unsupported("could not load " + library + ": " + e.getMessage()
                    + "; check the file is a working x86-64 libnvrtc, or set SAGEJIT_NVRTC to another one");
        }
        JNvrtc.setExceptionsEnabled(false);
        loaded = library.path();
    }

    private static Optional<int[]> supportedSms() {
        try {
            int[] n = new int[1];
            if (JNvrtc.nvrtcGetNumSupportedArchs(n) != nvrtcResult.NVRTC_SUCCESS || n[0] <= 0) {
                return Optional.empty();
            }
            int[] list = new int[n[0]];
            return JNvrtc.nvrtcGetSupportedArchs(list) == nvrtcResult.NVRTC_SUCCESS
                    ? Optional.of(list) : Optional.empty();
        } catch (UnsatisfiedLinkError e) {
            return Optional.empty();
        }
    }

    @Override
    public String backend() {
        return "jcuda";
    }

    @Override
    public String version() {
        return version;
    }

    @Override
    public List<Arch> supportedArchs() {
        return archs;
    }

    @Override
    Raw run(String code, String fileName, List<String> args, Output output) {
        nvrtcProgram program = new nvrtcProgram();
        check(JNvrtc.nvrtcCreateProgram(program, code, fileName, 0, null, null), "nvrtcCreateProgram");
        try {
            String[] opts = args.toArray(String[]::new);
            int rc = JNvrtc.nvrtcCompileProgram(program, opts.length, opts);
            String[] log = new String[1];
            check(JNvrtc.nvrtcGetProgramLog(program, log), "nvrtcGetProgramLog");
            String text = log[0] == null ? "" : log[0].replace("\0", "");
            if (rc != nvrtcResult.NVRTC_SUCCESS) {
                return new Raw(text, null, "nvrtcCompileProgram: " + nvrtcResult.stringFor(rc));
            }
            return new Raw(text, output == Output.CUBIN ? cubin(program) : ptx(program), null);
        } finally {
            JNvrtc.nvrtcDestroyProgram(program);
        }
    }

    private static byte[] cubin(nvrtcProgram program) {
        long[] size = new long[1];
        check(JNvrtc.nvrtcGetCUBINSize(program, size), "nvrtcGetCUBINSize");
        byte[] image = new byte[Math.toIntExact(size[0])];
        check(JNvrtc.nvrtcGetCUBIN(program, image), "nvrtcGetCUBIN");
        return image;
    }

    private static byte[] ptx(nvrtcProgram program) {
        String[] ptx = new String[1];
        check(JNvrtc.nvrtcGetPTX(program, ptx), "nvrtcGetPTX");
        return ptx[0].replace("\0", "").getBytes(java.nio.charset.StandardCharsets.UTF_8);
    }

    private static void check(int rc, String call) {
        if (rc != nvrtcResult.NVRTC_SUCCESS) {
            throw new SageException.Unsupported(call + " failed with " + nvrtcResult.stringFor(rc)
                    + " (" + rc + "); the NVRTC library may be broken, set SAGEJIT_NVRTC to another one");
        }
    }
}
