package dev.sagejit.kernel;

import dev.sagejit.api.DType;
import dev.sagejit.api.DeviceTensor;
import dev.sagejit.runtime.TensorMap;
import java.util.Optional;

/**
 * The TMA tensor maps of a wgmma forward kernel: Q, K and V as rank-4 tensors {head dim, sequence,
 * heads, batch} with their strides (so BHSD, BSHD and GQA need nothing special), loaded in boxes of
 * one 128-byte swizzled column block by BLOCK_M (Q) or BLOCK_N (K, V) rows. Rows past the sequence
 * end load as zeros, which the kernel's masks rely on.
 */
final class TmaOperands {
    /** The three maps, in the kernel's parameter order. */
    record Maps(TensorMap q, TensorMap k, TensorMap v) {
    }

    private TmaOperands() {
    }

    /** Why TMA cannot load this problem's tensors, or empty when it can. */
    static Optional<String> whyNot(FwdProblem p, FwdKernelPlan plan) {
        for (var named : new Object[][] {{"q", p.q(), plan.tiles().blockM()}, {"k", p.k(), plan.tiles().blockN()},
                {"v", p.v(), plan.tiles().blockN()}}) {
            DeviceTensor t = (DeviceTensor) named[1];
            var why = TensorMap.whyInvalid(type(t.dtype()), t.address(), dims(t), byteStrides(t),
                    box(plan, (int) named[2]), TensorMap.Swizzle.forRowBytes(plan.qkRowBytes()));
            if (why.isPresent()) {
                return Optional.of(named[0] + " " + why.get());
            }
        }
        return Optional.empty();
    }

    static Maps encode(FwdProblem p, FwdKernelPlan plan) {
        return new Maps(map(p.q(), plan, plan.tiles().blockM()), map(p.k(), plan, plan.tiles().blockN()),
                map(p.v(), plan, plan.tiles().blockN()));
    }

    private static TensorMap map(DeviceTensor t, FwdKernelPlan plan, int rows) {
        return TensorMap.encodeTiled(type(t.dtype()), t.address(), dims(t), byteStrides(t), box(plan, rows),
                TensorMap.Swizzle.forRowBytes(plan.qkRowBytes()));
    }

    static TensorMap.DataType type(DType dtype) {
        return switch (dtype) {
            case BF16 -> TensorMap.DataType.BFLOAT16;
            case FP16 -> TensorMap.DataType.FLOAT16;
            case FP32 -> TensorMap.DataType.FLOAT32;
        };
    }

    /** Innermost first; an empty sequence is described as one row (the kernel loads none of it). */
    static long[] dims(DeviceTensor t) {
        return new long[] {t.headDim(), Math.max(1, t.seq()), Math.max(1, t.heads()), Math.max(1, t.batch())};
    }

    /** Strides of sequence, head and batch in bytes; a size-1 dimension's stride is irrelevant. */
    static long[] byteStrides(DeviceTensor t) {
        long eb = t.dtype().bytes();
        long rowBytes = (long) t.headDim() * eb;
        long seq = t.seq() > 1 ? t.seqStride() * eb : rowBytes;
        long head = t.heads() > 1 ? t.headStride() * eb : seq * Math.max(1, t.seq());
        long batch = t.batch() > 1 ? t.batchStride() * eb : head * Math.max(1, t.heads());
        return new long[] {seq, head, batch};
    }

    private static int[] box(FwdKernelPlan plan, int rows) {
        return new int[] {plan.columnBlockElements(), rows, 1, 1};
    }
}
