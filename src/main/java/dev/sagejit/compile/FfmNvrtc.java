package dev.sagejit.compile;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import dev.sagejit.api.SageException;
import dev.sagejit.spec.Arch;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * NVRTC through {@code java.lang.foreign}: binds the C API of any libnvrtc (13.x is the main target;
 * 12.x works too since the symbols are unversioned). Libraries are loaded once per path for the life
 * of the JVM; the libnvrtc-builtins beside the library is loaded first so NVRTC finds it by soname.
 */
// Loading native code is this class's purpose; the JVM runs with --enable-native-access.
@SuppressWarnings("restricted")
public final class FfmNvrtc extends AbstractNvrtc {
    private static final Map<Path, Bindings> BOUND = new ConcurrentHashMap<>();
    private static final int SUCCESS = 0;

    private final Bindings c;
    private final String version;
    private final List<Arch> archs;

    /**
     * Loads {@code library} and binds its C API.
     *
     * @param dumpDir where sources that fail to compile are written
     * @throws SageException.Unsupported when the library cannot be loaded or lacks NVRTC symbols
     */
    public FfmNvrtc(NvrtcLibrary library, Path dumpDir) {
        super(library, dumpDir);
        this.c = BOUND.computeIfAbsent(library.path(), p -> Bindings.load(library));
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment major = arena.allocate(JAVA_INT);
            MemorySegment minor = arena.allocate(JAVA_INT);
            check(call(c.version, major, minor), "nvrtcVersion");
            int ma = major.get(JAVA_INT, 0);
            int mi = minor.get(JAVA_INT, 0);
            this.version = ma + "." + mi;
            this.archs = archsFor(supportedSms(arena), ma, mi);
        }
    }

    /** The C functions this binding calls; the two supported-arch calls are absent before 11.2. */
    private record Bindings(MethodHandle version, MethodHandle create, MethodHandle compile,
            MethodHandle logSize, MethodHandle log, MethodHandle cubinSize, MethodHandle cubin,
            MethodHandle ptxSize, MethodHandle ptx, MethodHandle destroy, MethodHandle errorString,
            Optional<MethodHandle> numArchs, Optional<MethodHandle> archs) {

        static Bindings load(NvrtcLibrary library) {
            SymbolLookup lookup;
            try {
                builtinsBeside(library).ifPresent(p -> SymbolLookup.libraryLookup(p, Arena.global()));
                lookup = SymbolLookup.libraryLookup(library.path(), Arena.global());
            } catch (IllegalArgumentException e) {
                throw new SageException.Unsupported("could not load " + library + ": " + e.getMessage()
                        + "; check the file is a working x86-64 libnvrtc, or set SAGEJIT_NVRTC to another one");
            }
            var linker = Linker.nativeLinker();
            var binder = new Object() {
                Optional<MethodHandle> find(String name, FunctionDescriptor fd) {
                    return lookup.find(name).map(sym -> linker.downcallHandle(sym, fd));
                }

                MethodHandle need(String name, FunctionDescriptor fd) {
                    return find(name, fd).orElseThrow(() -> new SageException.Unsupported(library.path()
                            + " has no symbol " + name + "; it is not a usable NVRTC, set SAGEJIT_NVRTC to another one"));
                }
            };
            var sizeCall = FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS);
            return new Bindings(
                    binder.need("nvrtcVersion", sizeCall),
                    binder.need("nvrtcCreateProgram",
                            FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS)),
                    binder.need("nvrtcCompileProgram", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS)),
                    binder.need("nvrtcGetProgramLogSize", sizeCall),
                    binder.need("nvrtcGetProgramLog", sizeCall),
                    binder.need("nvrtcGetCUBINSize", sizeCall),
                    binder.need("nvrtcGetCUBIN", sizeCall),
                    binder.need("nvrtcGetPTXSize", sizeCall),
                    binder.need("nvrtcGetPTX", sizeCall),
                    binder.need("nvrtcDestroyProgram", FunctionDescriptor.of(JAVA_INT, ADDRESS)),
                    binder.need("nvrtcGetErrorString", FunctionDescriptor.of(ADDRESS, JAVA_INT)),
                    binder.find("nvrtcGetNumSupportedArchs", FunctionDescriptor.of(JAVA_INT, ADDRESS)),
                    binder.find("nvrtcGetSupportedArchs", FunctionDescriptor.of(JAVA_INT, ADDRESS)));
        }
    }

    private Optional<int[]> supportedSms(Arena arena) {
        if (c.numArchs.isEmpty() || c.archs.isEmpty()) {
            return Optional.empty();
        }
        MemorySegment n = arena.allocate(JAVA_INT);
        if (call(c.numArchs.get(), n) != SUCCESS || n.get(JAVA_INT, 0) <= 0) {
            return Optional.empty();
        }
        MemorySegment list = arena.allocate(JAVA_INT, n.get(JAVA_INT, 0));
        return call(c.archs.get(), list) == SUCCESS ? Optional.of(list.toArray(JAVA_INT)) : Optional.empty();
    }

    @Override
    public String backend() {
        return "ffm";
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
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment programSlot = arena.allocate(ADDRESS);
            check(call(c.create, programSlot, arena.allocateFrom(code), arena.allocateFrom(fileName), 0,
                    MemorySegment.NULL, MemorySegment.NULL), "nvrtcCreateProgram");
            MemorySegment program = programSlot.get(ADDRESS, 0);
            try {
                MemorySegment opts = arena.allocate(ADDRESS, args.size());
                for (int i = 0; i < args.size(); i++) {
                    opts.setAtIndex(ADDRESS, i, arena.allocateFrom(args.get(i)));
                }
                int rc = call(c.compile, program, args.size(), opts);
                String log = text(read(arena, program, c.logSize, c.log, "nvrtcGetProgramLog"));
                if (rc != SUCCESS) {
                    return new Raw(log, null, "nvrtcCompileProgram: " + errorName(rc));
                }
                byte[] image = output == Output.CUBIN
                        ? read(arena, program, c.cubinSize, c.cubin, "nvrtcGetCUBIN")
                        : text(read(arena, program, c.ptxSize, c.ptx, "nvrtcGetPTX"))
                                .getBytes(StandardCharsets.UTF_8);
                return new Raw(log, image, null);
            } finally {
                call(c.destroy, programSlot);
            }
        }
    }

    private byte[] read(Arena arena, MemorySegment program, MethodHandle size, MethodHandle get, String what) {
        MemorySegment n = arena.allocate(JAVA_LONG);
        check(call(size, program, n), what + "Size");
        long bytes = n.get(JAVA_LONG, 0);
        if (bytes == 0) {
            return new byte[0];
        }
        MemorySegment buf = arena.allocate(bytes);
        check(call(get, program, buf), what);
        return buf.toArray(JAVA_BYTE);
    }

    /** NVRTC's text buffers end with a NUL; drop it and anything after. */
    private static String text(byte[] bytes) {
        int end = 0;
        while (end < bytes.length && bytes[end] != 0) {
            end++;
        }
        return new String(bytes, 0, end, StandardCharsets.UTF_8);
    }

    private String errorName(int rc) {
        try {
            MemorySegment s = (MemorySegment) c.errorString.invokeWithArguments(rc);
            return s.equals(MemorySegment.NULL) ? "NVRTC error " + rc : s.reinterpret(256).getString(0) + " (" + rc + ")";
        } catch (Throwable t) {
            return "NVRTC error " + rc;
        }
    }

    private void check(int rc, String what) {
        if (rc != SUCCESS) {
            throw new SageException.Unsupported(what + " failed with " + errorName(rc)
                    + "; the NVRTC library may be broken, set SAGEJIT_NVRTC to another one");
        }
    }

    private static int call(MethodHandle h, Object... args) {
        try {
            return (int) h.invokeWithArguments(args);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("native NVRTC call failed", t);
        }
    }
}
