package dev.sagejit.runtime;

import java.util.ArrayList;
import java.util.List;
import jcuda.NativePointerObject;
import jcuda.Pointer;

/**
 * The parameters of one kernel launch, in the kernel's parameter order, as the
 * {@code void** kernelParams} array cuLaunchKernel takes. Each value is held in its own one-element
 * array, so the values are fixed when {@link Builder#build()} runs.
 */
public final class KernelArgs {
    /** Kinds of parameter, with their size in bytes. */
    public enum Kind {
        PTR(8), I32(4), I64(8), F32(4),
        /** A struct passed by value, e.g. a 128-byte CUtensorMap ({@code __grid_constant__}). */
        BLOB(-1);

        private final int bytes;

        Kind(int bytes) {
            this.bytes = bytes;
        }

        public int bytes() {
            return bytes;
        }
    }

    /**
     * One parameter: its kind and value as raw bits (a float as its IEEE bits), or for a
     * {@link Kind#BLOB} its bytes.
     */
    public record Arg(Kind kind, long bits, byte[] blob) {
        Arg(Kind kind, long bits) {
            this(kind, bits, null);
        }

        @Override
        public String toString() {
            return switch (kind) {
                case BLOB -> "blob " + blob.length + " B";
                case PTR -> "ptr 0x" + Long.toHexString(bits);
                case I32 -> "i32 " + (int) bits;
                case I64 -> "i64 " + bits;
                case F32 -> "f32 " + Float.intBitsToFloat((int) bits);
            };
        }
    }

    private final List<Arg> args;
    private final Pointer kernelParams;

    private KernelArgs(List<Arg> args) {
        this.args = List.copyOf(args);
        NativePointerObject[] slots = new NativePointerObject[args.size()];
        for (int i = 0; i < slots.length; i++) {
            Arg a = args.get(i);
            slots[i] = switch (a.kind()) {
                case PTR, I64 -> Pointer.to(new long[] {a.bits()});
                case I32 -> Pointer.to(new int[] {(int) a.bits()});
                case F32 -> Pointer.to(new float[] {Float.intBitsToFloat((int) a.bits())});
                case BLOB -> Pointer.to(a.blob());
            };
        }
        this.kernelParams = Pointer.to(slots);
    }

    public static Builder builder() {
        return new Builder();
    }

    /** The {@code void**} array for cuLaunchKernel's kernelParams (JCuda types stay inside this package). */
    Pointer kernelParams() {
        return kernelParams;
    }

    public int count() {
        return args.size();
    }

    /** The parameters in order. */
    public List<Arg> args() {
        return args;
    }

    @Override
    public String toString() {
        return "KernelArgs" + args;
    }

    /** Collects parameters in the kernel's order. */
    public static final class Builder {
        private final List<Arg> args = new ArrayList<>();

        private Builder() {
        }

        /** A pointer parameter given as a raw device address (0 is a null pointer). */
        public Builder ptr(long address) {
            args.add(new Arg(Kind.PTR, address));
            return this;
        }

        /** A pointer parameter: the buffer's device address. */
        public Builder ptr(DeviceBuffer buffer) {
            return ptr(buffer.address());
        }

        public Builder i32(int value) {
            args.add(new Arg(Kind.I32, value));
            return this;
        }

        public Builder i64(long value) {
            args.add(new Arg(Kind.I64, value));
            return this;
        }

        public Builder f32(float value) {
            args.add(new Arg(Kind.F32, Float.floatToRawIntBits(value) & 0xffffffffL));
            return this;
        }

        /** A struct parameter passed by value; the bytes are copied now. */
        public Builder blob(byte[] bytes) {
            args.add(new Arg(Kind.BLOB, bytes.length, bytes.clone()));
            return this;
        }

        public KernelArgs build() {
            return new KernelArgs(args);
        }
    }
}
