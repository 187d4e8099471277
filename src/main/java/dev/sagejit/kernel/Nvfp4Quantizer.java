package dev.sagejit.kernel;

import dev.sagejit.api.DeviceTensor;
import dev.sagejit.reference.Nvfp4Reference;
import dev.sagejit.runtime.DeviceBuffer;
import dev.sagejit.runtime.KernelArgs;
import dev.sagejit.runtime.LaunchGeometry;
import dev.sagejit.runtime.Stream;
import dev.sagejit.spec.Arch;
import java.util.List;

/**
 * Runs the NVFP4 quantizers (docs/nvfp4-quantization.md) on device tensors: the operands of the
 * NVFP4 attention, each in its own buffer in the document's layout. Their output equals
 * {@link Nvfp4Reference#quantize} bit for bit (given the same kmean, whose summation order the
 * document leaves open; here tokens are summed in order, as the emulation does).
 */
public final class Nvfp4Quantizer {
    private final KernelLoader loader;

    Nvfp4Quantizer(KernelLoader loader) {
        this.loader = loader;
    }

    /** The quantized operands of one call; closing frees them. */
    public record Operands(DeviceBuffer q4, DeviceBuffer qscale, DeviceBuffer qmean, DeviceBuffer qshift,
            DeviceBuffer k4, DeviceBuffer kscale, DeviceBuffer kmean, DeviceBuffer deltaS, DeviceBuffer v4t,
            DeviceBuffer vscale) implements AutoCloseable {
        @Override
        public void close() {
            for (DeviceBuffer b : List.of(q4, qscale, qmean, qshift, k4, kscale, kmean, deltaS, v4t, vscale)) {
                b.close();
            }
        }
    }

    /**
     * Enqueues the quantizers of Q [B, Hq, Nq, D], K and V [B, Hkv, Nk, D] (BF16 or FP16, D
     * contiguous, one dtype) on {@code stream}. MXFP4 is an emulation-only ablation: the GPU
     * quantizes NVFP4.
     */
    public Operands quantize(DeviceTensor q, DeviceTensor k, DeviceTensor v, Nvfp4Reference.Options options,
            Arch arch, Stream stream) {
        if (options.format() != Nvfp4Reference.Format.NVFP4) {
            throw new IllegalArgumentException("the GPU quantizers produce NVFP4; " + options.format()
                    + " exists only in the CPU emulation (Nvfp4Reference)");
        }
        if (q.dtype() != k.dtype() || q.dtype() != v.dtype()) {
            throw new IllegalArgumentException("Q, K and V must share one dtype, got " + q.dtype() + ", " + k.dtype()
                    + ", " + v.dtype());
        }
        var plan = new Nvfp4QuantPlan(arch, q.dtype(), q.headDim());
        int b = q.batch(), hq = q.heads(), hkv = k.heads(), nq = q.seq(), nk = k.seq(), d = q.headDim();
        if (hkv <= 0 || hq % hkv != 0) {
            throw new IllegalArgumentException("query heads " + hq + " must be a multiple of key heads " + hkv);
        }
        int pad = Nvfp4Reference.padTokens(nk);
        int qg = Nvfp4Reference.queryGroups(nq);
        int bs = Nvfp4Reference.Format.NVFP4.blockSize();
        var dev = loader.device();
        long qRows = (long) b * hq * nq;
        long kRows = (long) b * hkv * pad;
        var out = new Operands(dev.allocate(Math.max(1, qRows * d / 2)), dev.allocate(Math.max(1, qRows * d / bs)),
                dev.allocate(Math.max(4, 4L * b * hq * qg * d)), dev.allocate(Math.max(4, 4 * qRows)),
                dev.allocate(Math.max(1, kRows * d / 2)), dev.allocate(Math.max(1, kRows * d / bs)),
                dev.allocate(4L * b * hkv * d), dev.allocate(Math.max(4, 4L * b * hq * qg * pad)),
                dev.allocate(Math.max(1, kRows * d / 2)), dev.allocate(Math.max(1, kRows * d / bs)));
        try {
            int group = hq / hkv;
            int permute = options.permuteK() ? 1 : 0;
            if (options.smoothK() && nk > 0) {
                launch(plan, Nvfp4QuantPlan.KMEAN, 1, hkv, b, d, stream, KernelArgs.builder().ptr(k.address())
                        .i64(k.batchStride()).i64(k.headStride()).i64(k.seqStride()).i32(nk).ptr(out.kmean()));
            } else {
                out.kmean().zeroAsync(stream);
            }
            long qmean = 0L;
            if (options.smoothQ() && nq > 0) {
                launch(plan, Nvfp4QuantPlan.QMEAN, qg, hq, b, d, stream, KernelArgs.builder().ptr(q.address())
                        .i64(q.batchStride()).i64(q.headStride()).i64(q.seqStride()).i32(nq).ptr(out.qmean()));
                qmean = out.qmean().address();
            } else {
                out.qmean().zeroAsync(stream);
            }
            int rows = plan.rowsPerBlock();
            if (nq > 0) {
                launch(plan, Nvfp4QuantPlan.QUANT_Q, (nq + rows - 1) / rows, hq, b, Nvfp4QuantPlan.THREADS, stream,
                        KernelArgs.builder().ptr(q.address()).i64(q.batchStride()).i64(q.headStride())
                                .i64(q.seqStride()).i32(nq).i32(group).i32(qg).ptr(qmean).ptr(out.kmean())
                                .ptr(out.q4()).ptr(out.qscale()).ptr(out.qshift()));
            }
            if (pad > 0) {
                launch(plan, Nvfp4QuantPlan.QUANT_K, pad / rows, hkv, b, Nvfp4QuantPlan.THREADS, stream,
                        KernelArgs.builder().ptr(k.address()).i64(k.batchStride()).i64(k.headStride())
                                .i64(k.seqStride()).i32(nk).i32(pad).i32(permute).ptr(out.kmean()).ptr(out.k4())
                                .ptr(out.kscale()));
                launch(plan, Nvfp4QuantPlan.QUANT_V, pad / bs, hkv, b, d, stream, KernelArgs.builder()
                        .ptr(v.address()).i64(v.batchStride()).i64(v.headStride()).i64(v.seqStride()).i32(nk)
                        .i32(pad).ptr(out.v4t()).ptr(out.vscale()));
                if (options.smoothQ() && nq > 0) {
                    launch(plan, Nvfp4QuantPlan.DELTA_S, (pad + Nvfp4QuantPlan.THREADS - 1) / Nvfp4QuantPlan.THREADS,
                            qg, b * hq, Nvfp4QuantPlan.THREADS, stream, KernelArgs.builder().ptr(k.address())
                                    .i64(k.batchStride()).i64(k.headStride()).i64(k.seqStride()).i32(nk).i32(pad)
                                    .i32(permute).i32(hq).i32(group).ptr(out.qmean()).ptr(out.kmean())
                                    .ptr(out.deltaS()));
                } else {
                    out.deltaS().zeroAsync(stream);
                }
            }
            return out;
        } catch (RuntimeException e) {
            out.close();
            throw e;
        }
    }

    private void launch(Nvfp4QuantPlan plan, String entry, int gx, int gy, int gz, int threads, Stream stream,
            KernelArgs.Builder args) {
        var kernel = loader.auxKernel(plan.key(), () -> KernelLoader.source(loader.renderer(), plan), plan.arch(), entry);
        kernel.launch(new LaunchGeometry(gx, gy, gz, threads, 1, 1, 0), stream, args.build());
    }
}
