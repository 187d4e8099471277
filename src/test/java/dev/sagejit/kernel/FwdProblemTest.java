package dev.sagejit.kernel;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sagejit.api.AttentionOptions;
import dev.sagejit.api.DType;
import dev.sagejit.api.DeviceTensor;
import dev.sagejit.api.Layout;
import dev.sagejit.api.Precision;
import dev.sagejit.api.SageException;
import dev.sagejit.spec.Arch;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * Bad input is refused before anything is launched, with a message that says what to change (no GPU
 * needed: validation is plain Java over the tensors' descriptions).
 */
class FwdProblemTest {
    private static final long BASE = 0x7f00_0000_0000L;
    private static final AttentionOptions BF16 = AttentionOptions.builder().precision(Precision.BF16).build();

    private static DeviceTensor t(long address, DType dtype, int b, int h, int n, int d) {
        return DeviceTensor.contiguous(address, dtype, Layout.BHSD, b, h, n, d);
    }

    private static DeviceTensor q() {
        return t(BASE, DType.BF16, 2, 8, 100, 128);
    }

    private static DeviceTensor kv() {
        return t(BASE + (1 << 24), DType.BF16, 2, 2, 80, 128);
    }

    private static void refused(Class<? extends SageException> type, String fragment, Executable call) {
        var e = assertThrows(type, call);
        assertTrue(e.getMessage().contains(fragment), "'" + fragment + "' in: " + e.getMessage());
    }

    private static void refusedCall(String fragment, Executable call) {
        refused(SageException.InvalidInput.class, fragment, call);
    }

    private static void refused(String fragment, Supplier<FwdProblem> problem) {
        refused(SageException.InvalidInput.class, fragment, problem::get);
    }

    @Test
    void aValidProblemPasses() {
        assertDoesNotThrow(() -> new FwdProblem(BF16, q(), kv(), kv(), q(), 0L));
        // Empty sequences are valid (nothing is launched; O is empty, or zero rows attend to nothing).
        assertDoesNotThrow(() -> new FwdProblem(BF16, t(BASE, DType.BF16, 2, 8, 0, 128), kv(), kv(),
                t(BASE, DType.BF16, 2, 8, 0, 128), 0L));
        assertDoesNotThrow(() -> new FwdProblem(BF16, q(), t(BASE, DType.BF16, 2, 2, 0, 128),
                t(BASE, DType.BF16, 2, 2, 0, 128), q(), 0L));
    }

    @Test
    void everyInvalidTensorIsNamed() {
        refused("q is null", () -> new FwdProblem(BF16, null, kv(), kv(), q(), 0L));
        refused("v is FP16 but the precision needs BF16",
                () -> new FwdProblem(BF16, q(), kv(), t(BASE, DType.FP16, 2, 2, 80, 128), q(), 0L));
        refused("o has a null device address", () -> new FwdProblem(BF16, q(), kv(), kv(), t(0L, DType.BF16, 2, 8, 100, 128), 0L));
        refused("not 16-byte aligned", () -> new FwdProblem(BF16, t(BASE + 2, DType.BF16, 2, 8, 100, 128), kv(), kv(), q(), 0L));
        refused("multiples of 8 elements", () -> new FwdProblem(BF16,
                new DeviceTensor(BASE, DType.BF16, 2, 8, 100, 128, new long[] {8 * 100 * 128, 100 * 128, 130}), kv(), kv(),
                q(), 0L));
        refused("rows overlap", () -> new FwdProblem(BF16,
                new DeviceTensor(BASE, DType.BF16, 2, 8, 100, 128, new long[] {8 * 100 * 128, 100 * 128, 64}), kv(), kv(),
                q(), 0L));
        refused("strides must be {batch, head, seq}",
                () -> new FwdProblem(BF16, new DeviceTensor(BASE, DType.BF16, 2, 8, 100, 128, new long[] {1, 2}), kv(),
                        kv(), q(), 0L));
        refused("negative size", () -> new FwdProblem(BF16, t(BASE, DType.BF16, 2, 8, -1, 128), kv(), kv(), q(), 0L));
    }

    @Test
    void shapesMustAgree() {
        refused(SageException.Unsupported.class, "use 64 or 128", () -> new FwdProblem(BF16,
                t(BASE, DType.BF16, 2, 8, 100, 96), t(BASE, DType.BF16, 2, 2, 80, 96), t(BASE, DType.BF16, 2, 2, 80, 96),
                t(BASE, DType.BF16, 2, 8, 100, 96), 0L));
        refused("head dims differ", () -> new FwdProblem(BF16, q(), t(BASE, DType.BF16, 2, 2, 80, 64), kv(), q(), 0L));
        refused("batch sizes differ", () -> new FwdProblem(BF16, q(), t(BASE, DType.BF16, 1, 2, 80, 128),
                t(BASE, DType.BF16, 1, 2, 80, 128), q(), 0L));
        refused("same heads and length", () -> new FwdProblem(BF16, q(), kv(), t(BASE, DType.BF16, 2, 2, 81, 128), q(), 0L));
        refused("o must be shaped like q", () -> new FwdProblem(BF16, q(), kv(), kv(), t(BASE, DType.BF16, 2, 8, 99, 128), 0L));
        refused("multiple of H_kv", () -> new FwdProblem(BF16, q(), t(BASE, DType.BF16, 2, 3, 80, 128),
                t(BASE, DType.BF16, 2, 3, 80, 128), q(), 0L));
        refused(SageException.Unsupported.class, "split the call", () -> new FwdProblem(BF16,
                t(BASE, DType.BF16, 70_000, 1, 16, 128), t(BASE, DType.BF16, 70_000, 1, 16, 128),
                t(BASE, DType.BF16, 70_000, 1, 16, 128), t(BASE, DType.BF16, 70_000, 1, 16, 128), 0L));
    }

    @Test
    void lseBufferIsChecked() {
        var withLse = AttentionOptions.builder().precision(Precision.BF16).lse(true).build();
        refused("no LSE buffer was given", () -> new FwdProblem(withLse, q(), kv(), kv(), q(), 0L));
        refused("not 4-byte aligned", () -> new FwdProblem(withLse, q(), kv(), kv(), q(), BASE + 2));
    }

    @Test
    void int8Fp8AndNvfp4TakeTheirInputType() {
        var int8fp16 = AttentionOptions.builder().precision(Precision.INT8_FP8_FP16).build();
        refused("precision needs FP16", () -> new FwdProblem(int8fp16, q(), kv(), kv(), q(), 0L));
        var nvfp4 = AttentionOptions.builder().precision(Precision.NVFP4_EMULATED).build();
        assertDoesNotThrow(() -> new FwdProblem(nvfp4, q(), kv(), kv(), q(), 0L));
    }

    /** The backward validates dO, dQ, dK and dV like the forward's tensors, before touching the GPU. */
    @Test
    void theBackwardRefusesBadInputBeforeLaunching() {
        var bwd = new FlashBackward(null); // never reaches the loader: every call below is refused first
        var int8 = AttentionOptions.builder().precision(Precision.INT8_FP8).build();
        refusedCall("the 16-bit backward runs bf16 or fp16, not int8-fp8", () -> bwd.enqueue(int8, q(), kv(), kv(), q(), q(), BASE, q(), kv(), kv(), Arch.SM90A,
                null, null));
        refusedCall("no LSE buffer was given", () -> bwd.enqueue(BF16, q(), kv(), kv(), q(), q(), 0L, q(), kv(), kv(),
                Arch.SM90A, null, null));
        refusedCall("o must be shaped like q", () -> bwd.enqueue(BF16, q(), kv(), kv(), q(), q(), BASE,
                t(BASE, DType.BF16, 2, 8, 99, 128), kv(), kv(), Arch.SM90A, null, null));
        refusedCall("precision needs BF16", () -> bwd.enqueue(BF16, q(), kv(), kv(), q(), t(BASE, DType.FP16, 2, 8, 100, 128),
                BASE, q(), kv(), kv(), Arch.SM90A, null, null));
    }
}
