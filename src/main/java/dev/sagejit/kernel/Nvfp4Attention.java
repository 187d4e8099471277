package dev.sagejit.kernel;

import dev.sagejit.api.AttentionOptions;
import dev.sagejit.api.DeviceTensor;
import dev.sagejit.reference.Nvfp4Reference;
import dev.sagejit.runtime.KernelArgs;
import dev.sagejit.runtime.LaunchGeometry;
import dev.sagejit.runtime.Stream;
import dev.sagejit.spec.Arch;

/**
 * NVFP4 attention on device tensors: the quantizers, then the attention kernel (native FP4 MMA on
 * sm_120a, its exact emulation elsewhere), as docs/nvfp4-quantization.md specifies and
 * {@link Nvfp4Reference#attention} emulates. Not yet a precision of the public API: tests and tools
 * call it through {@link FwdLauncher#nvfp4Attention()}.
 */
public final class Nvfp4Attention {
    private final KernelLoader loader;
    private final Nvfp4Quantizer quantizer;

    Nvfp4Attention(KernelLoader loader) {
        this.loader = loader;
        this.quantizer = new Nvfp4Quantizer(loader);
    }

    /**
     * Computes O (and the LSE when {@code lseAddress} is not 0) for Q [B, Hq, Nq, D], K and V
     * [B, Hkv, Nk, D], O like Q; waits for the GPU (the quantized operands are freed after the
     * kernel). The kernel implements two-level P over permuted K: {@code options} may turn Q and K
     * smoothing off, nothing else, and its blockN must be the kernel's ({@link Nvfp4FwdPlan#OPTIONS}).
     *
     * @param mode      native (sm_120a) or emulated (other GPUs); the wrong one for the GPU is refused
     * @param attention the call's mask and softmax scale
     */
    public void forward(Nvfp4FwdPlan.Mode mode, DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor o,
            long lseAddress, AttentionOptions attention, Nvfp4Reference.Options options, Arch arch, Stream stream) {
        if (options.format() != Nvfp4Reference.Format.NVFP4 || !options.twoLevelP() || !options.permuteK()) {
            throw new IllegalArgumentException("the NVFP4 kernel runs NVFP4 with two-level P over permuted K; "
                    + options + " is an emulation-only ablation (Nvfp4Reference)");
        }
        if (options.blockN() != Nvfp4FwdPlan.BLOCK_N) {
            throw new IllegalArgumentException("the NVFP4 kernel runs its online softmax over blocks of "
                    + Nvfp4FwdPlan.BLOCK_N + " keys, not " + options.blockN() + ": pass options.withBlockN("
                    + Nvfp4FwdPlan.BLOCK_N + ") (Nvfp4FwdPlan.OPTIONS is the default)");
        }
        var plan = Nvfp4FwdPlan.of(mode, arch, o.dtype(), q.headDim(), attention.causal(), lseAddress != 0L);
        int b = q.batch(), hq = q.heads(), nq = q.seq(), nk = k.seq();
        float scaleLog2 = attention.scaleLog2(q.headDim());  // as Nvfp4Reference computes sl
        try (var ops = quantizer.quantize(q, k, v, options, arch, stream)) {
            if (nq > 0) {
                var kernel = loader.auxKernel(plan.key(), () -> KernelLoader.source(loader.renderer(), plan), arch,
                        plan.entry());
                var geometry = new LaunchGeometry((nq + Nvfp4FwdPlan.BLOCK_M - 1) / Nvfp4FwdPlan.BLOCK_M, hq, b,
                        Nvfp4FwdPlan.THREADS, 1, 1, 0);
                kernel.launch(geometry, stream, KernelArgs.builder().ptr(ops.q4()).ptr(ops.qscale()).ptr(ops.k4())
                        .ptr(ops.kscale()).ptr(ops.v4t()).ptr(ops.vscale()).ptr(ops.deltaS()).ptr(ops.qshift())
                        .ptr(o.address()).ptr(lseAddress).i64(o.batchStride()).i64(o.headStride()).i64(o.seqStride())
                        .i32(nq).i32(nk).i32(Nvfp4Reference.padTokens(nk)).i32(hq / k.heads())
                        .i32(Nvfp4Reference.queryGroups(nq)).f32(scaleLog2).build());
            }
            stream.synchronize();
        }
    }
}
