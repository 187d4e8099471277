package dev.sagejit.api;

import java.nio.file.Path;
import java.util.List;

/**
 * Every failure sagejit reports. Each subtype carries the facts needed to act on it, and its message
 * says what to do next.
 */
public abstract sealed class SageException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    SageException(String message, Throwable cause) {
        super(message, cause);
    }

    /** The request is valid but this machine, GPU or build cannot serve it. */
    public static final class Unsupported extends SageException {
        private static final long serialVersionUID = 1L;

        public Unsupported(String message) {
            super(message, null);
        }
    }

    /** Shapes, strides, dtypes or values of the caller's tensors are wrong; nothing was launched. */
    public static final class InvalidInput extends SageException {
        private static final long serialVersionUID = 1L;

        public InvalidInput(String message) {
            super(message, null);
        }
    }

    /** NVRTC rejected a generated kernel. */
    public static final class Compile extends SageException {
        private static final long serialVersionUID = 1L;
        private final String log;
        private final List<String> options;
        private final Path dumpedSource;

        public Compile(String kernel, String log, List<String> options, Path dumpedSource) {
            super("NVRTC failed to compile " + kernel + "; source dumped to " + dumpedSource
                    + ", options " + options + ". Log:\n" + log, null);
            this.log = log;
            this.options = List.copyOf(options);
            this.dumpedSource = dumpedSource;
        }

        public String log() {
            return log;
        }

        public List<String> options() {
            return options;
        }

        public Path dumpedSource() {
            return dumpedSource;
        }
    }

    /** A CUDA driver call failed; the message names the call and its result code. */
    public static final class Launch extends SageException {
        private static final long serialVersionUID = 1L;
        private final String call;
        private final int code;

        public Launch(String call, int code, String codeName) {
            super(call + " failed with " + codeName + " (" + code + ")", null);
            this.call = call;
            this.code = code;
        }

        public String call() {
            return call;
        }

        public int code() {
            return code;
        }
    }

    /** A kernel needs more shared memory, registers or device memory than the GPU has. */
    public static final class OutOfResources extends SageException {
        private static final long serialVersionUID = 1L;

        public OutOfResources(String message) {
            super(message, null);
        }
    }
}
