package dev.sagejit.kernel;

import dev.sagejit.api.AttentionOptions;
import dev.sagejit.api.DeviceTensor;
import dev.sagejit.api.SageException.InvalidInput;
import dev.sagejit.runtime.Device;
import dev.sagejit.runtime.DeviceBuffer;
import dev.sagejit.runtime.KernelArgs;
import dev.sagejit.runtime.LaunchGeometry;
import dev.sagejit.runtime.LoadedKernel;
import dev.sagejit.runtime.Stream;
import dev.sagejit.runtime.TensorMap;
import dev.sagejit.spec.Arch;
import dev.sagejit.spec.SageBwdLayout;
import dev.sagejit.spec.SageBwdLayout.Order;

/**
 * SageBwd, the 8-bit attention for training (docs/sagebwd.md): a forward that quantizes Q, K
 * (smoothed) and V per block and runs INT8 Q K^T and INT8 P~ V, keeping what the backward needs in a
 * {@link Workspace}; and a backward that quantizes dO and runs six of its seven products in INT8
 * (dP = dO V^T in 16 bits). Everything is enqueued on the caller's stream without waiting.
 */
public final class SageBwd {
    private final KernelLoader loader;
    /** dQ's conversion from the FP32 accumulator is the 16-bit backward's. */
    private final FlashBackward flashBackward;

    SageBwd(KernelLoader loader) {
        this.loader = loader;
        this.flashBackward = new FlashBackward(loader);
    }

    /**
     * The quantized operands and scales of one training step, the backward's LSE (smoothed, log2
     * domain), dO's codes, D and the dQ accumulator: one allocation, sized for a problem's shapes.
     */
    public static final class Workspace implements AutoCloseable {
        private final CarvedAllocation regions;
        private DeviceBuffer q8, q8t, qScale, qShift, lse2, k8, k8t, kScale, kSum, vMax, v8t, vScale, g8t, gScale,
                delta, dqAcc;

        public Workspace(Device device) {
            this.regions = new CarvedAllocation(device);
        }

        /** Lays the regions out for the shapes of {@code p}, growing the allocation when needed. */
        void ensure(FwdProblem p) {
            int d = p.q().headDim(), nq = p.q().seq(), nk = p.k().seq();
            long bh = (long) p.batch() * p.heads(), bhk = (long) p.batch() * p.k().heads();
            long qPad = SageBwdLayout.padded(nq), kPad = SageBwdLayout.padded(nk);
            long qBlocks = SageBwdLayout.blocks(nq), kBlocks = SageBwdLayout.blocks(nk);
            DeviceBuffer[] v = regions.views(bh * nq * d, bh * d * qPad, bh * qBlocks * 4, bh * nq * 4, bh * nq * 4,
                    bhk * nk * d, bhk * d * kPad, bhk * kBlocks * 4, bhk * d * 4, bhk * d * 4, bhk * d * kPad,
                    bhk * kBlocks * 4, bh * d * qPad, bh * qBlocks * 4, bh * nq * 4, bh * nq * d * 4);
            q8 = v[0]; q8t = v[1]; qScale = v[2]; qShift = v[3]; lse2 = v[4];
            k8 = v[5]; k8t = v[6]; kScale = v[7]; kSum = v[8]; vMax = v[9]; v8t = v[10]; vScale = v[11];
            g8t = v[12]; gScale = v[13]; delta = v[14]; dqAcc = v[15];
        }

        /** Q's INT8 codes [B, Hq, Nq, D] (tests read them back). */
        public DeviceBuffer q8() {
            return q8;
        }

        /** Q's block scales [B, Hq, blocks(Nq)]. */
        public DeviceBuffer qScale() {
            return qScale;
        }

        /** K's INT8 codes (smoothed) [B, Hkv, Nk, D]. */
        public DeviceBuffer k8() {
            return k8;
        }

        /**
         * V's codes transposed [B, Hkv, D, padded(Nk)]: INT8 in {@link Order#COLUMNS}, the order the forward's
         * INT8 P~ V meets them in (P~'s A fragments take an accumulator's columns {2t, 2t+1, 8+2t, 9+2t}).
         */
        public DeviceBuffer v8t() {
            return v8t;
        }

        // The other regions, for the quantizer tests: transposed codes [B, H, D, padded(N)], block scales
        // [B, H, blocks(N)], K's channel sums [B, Hkv, D], Q's shifts and D (rowsum(dO * O)) [B, Hq, Nq].
        DeviceBuffer q8t() {
            return q8t;
        }

        DeviceBuffer qShift() {
            return qShift;
        }

        DeviceBuffer k8t() {
            return k8t;
        }

        DeviceBuffer kScale() {
            return kScale;
        }

        DeviceBuffer kSum() {
            return kSum;
        }

        DeviceBuffer vScale() {
            return vScale;
        }

        DeviceBuffer g8t() {
            return g8t;
        }

        DeviceBuffer gScale() {
            return gScale;
        }

        DeviceBuffer delta() {
            return delta;
        }

        @Override
        public void close() {
            regions.close();
        }
    }

    /**
     * Enqueues the training forward: O and the caller's LSE (natural log, [B, Hq, Nq]); the quantized
     * operands and the backward's LSE stay in {@code ws} for {@link #backward}.
     */
    public void forward(AttentionOptions options, DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor o,
            long lseAddress, Arch arch, Stream stream, Workspace ws) {
        var p = new FwdProblem(options.withLse(true), q, k, v, o, lseAddress);
        var plan = plan(options, q, arch);
        ws.ensure(p);
        int b = p.batch(), hq = p.heads(), hkv = k.heads(), nq = q.seq(), nk = k.seq();
        var qp = new SageBwdQuantPlan(arch, plan.type(), plan.headDim());
        ws.kSum.zeroAsync(stream);
        if (nk > 0) {
            // K's channel sums (and, for K itself, maxima nobody reads) from the int8-fp8 quantizer module.
            Sage2Launcher.kvStats(loader, new Sage2QuantPlan(arch, plan.type(), plan.headDim()), k, k, ws.kSum, ws.vMax,
                    stream);
            quantize(qp, k, 1, nk, SageBwdQuantPlan.Mean.SUBTRACT, ws.k8, ws.k8t, Order.ROWS, ws.kScale, null,
                    null, ws, stream);
            quantize(qp, v, 1, nk, SageBwdQuantPlan.Mean.NONE, null, ws.v8t, Order.COLUMNS, ws.vScale, null, null,
                    ws, stream);
        }
        if (nq == 0) {
            return;
        }
        quantize(qp, q, p.group(), nk, SageBwdQuantPlan.Mean.SHIFT, ws.q8, ws.q8t, Order.COLUMNS, ws.qScale, ws.qShift,
                null, ws, stream);
        float scaleLog2 = options.scaleLog2(q.headDim());
        int[] grid = plan.forwardGrid(b, hq, nq, loader.device().smCount());
        var geometry = new LaunchGeometry(grid[0], grid[1], grid[2], plan.forwardThreads(), 1, 1,
                plan.forwardSharedBytes());
        var args = KernelArgs.builder();
        if (plan.wgmmaForward()) {
            forwardTensorMaps(args, plan, ws, b, hq, hkv, nq, nk);
        } else {
            args.ptr(ws.q8).ptr(ws.k8).ptr(ws.v8t);
        }
        args.ptr(ws.qScale).ptr(ws.kScale).ptr(ws.vScale).ptr(ws.qShift).ptr(o.address()).ptr(lseAddress)
                .ptr(ws.lse2).i64(o.batchStride()).i64(o.headStride()).i64(o.seqStride()).i32(nq).i32(nk)
                .i32(p.group()).f32(scaleLog2);
        if (plan.wgmmaForward()) {
            args.i32(hq).i32(b);
        }
        kernel(plan, plan.forwardEntry()).launch(geometry, stream, args.build());
    }

    /**
     * The wgmma forward's TMA maps: Q8 and K8 rows ({@code headDim} bytes, whole rows per box), and V's
     * INT8 codes transposed (PERM_COLUMNS; a key block of every channel per box), each swizzled as its rows' width.
     */
    private static void forwardTensorMaps(KernelArgs.Builder args, SageBwdPlan plan, Workspace ws, int b, int hq,
            int hkv, int nq, int nk) {
        int d = plan.headDim(), block = SageBwdLayout.BLOCK;
        long kRows = Math.max(1, nk), kPad = Math.max(block, SageBwdLayout.padded(nk)); // valid maps for nk = 0
        var u8 = TensorMap.DataType.UINT8;
        var tmQ = rowsMap(ws.q8, u8, d, Math.max(1, nq), hq, b, d, SageBwdPlan.FWD_BLOCK_M);
        var tmK = rowsMap(ws.k8, u8, d, kRows, hkv, b, d, block);
        var tmV = columnsMap(ws.v8t, kPad, d, hkv, b);
        args.blob(tmQ.bytes()).blob(tmK.bytes()).blob(tmV.bytes());
    }

    /**
     * A TMA map of a contiguous [b][heads][rows][d] tensor of {@code type} (Q8 and K8 codes, the FP32 dQ
     * accumulator): boxes of {@code boxCols} elements of {@code boxRows} rows, swizzled as the box's row width.
     */
    private static TensorMap rowsMap(DeviceBuffer buffer, TensorMap.DataType type, int d, long rows, int heads, int b,
            int boxCols, int boxRows) {
        long rowBytes = (long) d * type.bytes();
        return TensorMap.encodeTiled(type, buffer.address(), new long[] {d, rows, heads, b},
                new long[] {rowBytes, rowBytes * rows, rowBytes * rows * heads}, new int[] {boxCols, boxRows, 1, 1},
                TensorMap.Swizzle.forRowBytes(boxCols * type.bytes()));
    }

    /**
     * A TMA map of transposed INT8 codes ([b][heads][d][pad]: V^T, Q8^T, dO8^T), one BLOCK of tokens of every
     * channel per box, swizzled as that block's width.
     */
    private static TensorMap columnsMap(DeviceBuffer codes, long pad, int d, int heads, int b) {
        int block = SageBwdLayout.BLOCK;
        return TensorMap.encodeTiled(TensorMap.DataType.UINT8, codes.address(), new long[] {pad, d, heads, b},
                new long[] {pad, pad * d, pad * d * heads}, new int[] {block, d, 1, 1},
                TensorMap.Swizzle.forRowBytes(block));
    }

    /**
     * The wgmma backward's TMA maps, one box per step and operand: Q8 rows ({@code headDim} bytes each), the
     * Q8^T and dO8^T column blocks (a query block of every channel), and dO in 128-byte panels of its rows
     * (from its own strides), each swizzled as its rows' width; and the FP32 dQ accumulator that each step's dQ
     * tile is reduce-added into, in 128-byte panels.
     */
    private static void backwardTensorMaps(KernelArgs.Builder args, SageBwdPlan plan, Workspace ws, DeviceTensor dO,
            int b, int hq, int nq) {
        int d = plan.headDim(), block = SageBwdLayout.BLOCK;
        long qPad = Math.max(block, SageBwdLayout.padded(nq));
        long qRows = Math.max(1, nq);
        var tmQ = rowsMap(ws.q8, TensorMap.DataType.UINT8, d, qRows, hq, b, d, block);
        var tmQt = columnsMap(ws.q8t, qPad, d, hq, b);
        var tmGt = columnsMap(ws.g8t, qPad, d, hq, b);
        // dO through TmaOperands' rank-4 view of a tensor (its own strides), in 128-byte panels.
        int panel = plan.panelElements();
        var type = TmaOperands.type(dO.dtype());
        long[] gDims = TmaOperands.dims(dO);
        long[] gStrides = TmaOperands.byteStrides(dO);
        int[] gBox = {panel, block, 1, 1};
        var swizzle = TensorMap.Swizzle.forRowBytes(panel * dO.dtype().bytes());
        TensorMap.whyInvalid(type, dO.address(), gDims, gStrides, gBox, swizzle).ifPresent(why -> {
            throw new InvalidInput("SageBwd's Hopper backward loads dO through TMA, but dO " + why
                    + "; pass a dO whose rows are 16-byte aligned (e.g. a contiguous copy)");
        });
        var tmG = TensorMap.encodeTiled(type, dO.address(), gDims, gStrides, gBox, swizzle);
        // The FP32 dQ accumulator, reduced into by 128-byte panels of a query block's rows.
        var f32 = TensorMap.DataType.FLOAT32;
        var tmDq = rowsMap(ws.dqAcc, f32, d, qRows, hq, b, FwdKernelPlan.SWIZZLE_ROW_BYTES / f32.bytes(), block);
        args.blob(tmQ.bytes()).blob(tmQt.bytes()).blob(tmGt.bytes()).blob(tmG.bytes()).blob(tmDq.bytes());
    }

    /**
     * Enqueues the backward of the last {@link #forward} on {@code ws} (same tensors, options and
     * stream): dQ (shaped like Q), dK and dV (shaped like K) from dO (shaped like O).
     */
    public void backward(AttentionOptions options, DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor o,
            DeviceTensor dO, DeviceTensor dq, DeviceTensor dk, DeviceTensor dv, Arch arch, Stream stream,
            Workspace ws) {
        var p = FlashBackward.checkGradients(options, q, k, v, o, dO, dq, dk, dv, ws.lse2.address());
        var plan = plan(options, q, arch);
        var flash = plan.flashPlan();
        int b = p.batch(), hq = p.heads(), nq = q.seq(), nk = k.seq(), d = q.headDim();
        double scale = options.effectiveScale(d);
        if (nq == 0) {
            return;
        }
        // dO's codes, D = rowsum(dO * O) and the zeroed dQ accumulator in one pass over dO.
        quantize(new SageBwdQuantPlan(arch, plan.type(), d), dO, 1, 0, SageBwdQuantPlan.Mean.NONE, null, ws.g8t,
                Order.COLUMNS, ws.gScale, null, new Partner(o, ws.delta, ws.dqAcc), ws, stream);
        if (nk > 0) {
            var args = KernelArgs.builder();
            if (plan.wgmmaBackward()) {
                backwardTensorMaps(args, plan, ws, dO, b, hq, nq);
            } else {
                args.ptr(ws.q8).ptr(ws.q8t);
            }
            args.ptr(ws.k8).ptr(ws.k8t).ptr(v.address());
            if (!plan.wgmmaBackward()) {
                args.ptr(dO.address()).ptr(ws.g8t);
            }
            args.ptr(ws.qScale).ptr(ws.kScale).ptr(ws.gScale).ptr(ws.lse2).ptr(ws.delta);
            if (!plan.wgmmaBackward()) {
                args.ptr(ws.dqAcc);
            }
            args.ptr(dk.address()).ptr(dv.address());
            for (DeviceTensor t : plan.wgmmaBackward() ? new DeviceTensor[] {v, dk, dv}
                    : new DeviceTensor[] {v, dO, dk, dv}) {
                args.i64(t.batchStride()).i64(t.headStride()).i64(t.seqStride());
            }
            args.i32(nq).i32(nk).i32(hq).i32(p.group()).f32((float) scale).f32(options.scaleLog2(d));
            int keys = plan.backwardKeys();
            kernel(plan, plan.backwardEntry()).launch(new LaunchGeometry((nk + keys - 1) / keys, k.heads(), b,
                    plan.backwardThreads(), 1, 1, plan.backwardSharedBytes()), stream, args.build());
        }
        flashBackward.convertDq(flash, ws.dqAcc, dq, scale, stream);
    }

    private static SageBwdPlan plan(AttentionOptions options, DeviceTensor q, Arch arch) {
        if (!options.precision().sageBwd()) {
            throw new InvalidInput("SageBwd runs the sagebwd precisions, not " + options.precision().id());
        }
        return new SageBwdPlan(arch, options.precision().inputType(), q.headDim(), options.causal());
    }

    /**
     * The tensor a quantizer launch pairs with its input (O for dO): it writes {@code delta} = rowsum(x * with)
     * per row and zeroes the rows of {@code zeroRows} (the FP32 dQ accumulator, [B, H, N, D]).
     */
    private record Partner(DeviceTensor with, DeviceBuffer delta, DeviceBuffer zeroRows) {
    }

    /**
     * One quantizer launch over the rows of {@code x} (n rows per head; the Q call reads K's sums; dO's pairs
     * with O, or {@code partner} null).
     */
    private void quantize(SageBwdQuantPlan qp, DeviceTensor x, int group, int nk, SageBwdQuantPlan.Mean mean,
            DeviceBuffer out8, DeviceBuffer out8t, Order order, DeviceBuffer scale, DeviceBuffer shift,
            Partner partner, Workspace ws, Stream stream) {
        int n = x.seq();
        if (n == 0) {
            return;
        }
        LoadedKernel kernel = loader.auxKernel(qp.key(), () -> KernelLoader.source(loader.renderer(), qp), qp.arch(),
                SageBwdQuantPlan.ENTRY);
        var args = KernelArgs.builder().ptr(x.address()).i64(x.batchStride()).i64(x.headStride())
                .i64(x.seqStride()).i32(n).i32(group).ptr(ws.kSum).i32(mean == SageBwdQuantPlan.Mean.SUBTRACT ? n : nk)
                .i32(mean.code).ptr(out8 == null ? 0L : out8.address()).ptr(out8t == null ? 0L : out8t.address())
                .i32(order.code()).ptr(scale).ptr(shift == null ? 0L : shift.address()).i32(SageBwdLayout.padded(n));
        if (partner == null) {
            args.ptr(0L).i64(0).i64(0).i64(0).ptr(0L).ptr(0L);
        } else {
            var w = partner.with();
            args.ptr(w.address()).i64(w.batchStride()).i64(w.headStride()).i64(w.seqStride())
                    .ptr(partner.delta()).ptr(partner.zeroRows());
        }
        kernel.launch(new LaunchGeometry(SageBwdLayout.blocks(n), x.heads(), x.batch(), SageBwdQuantPlan.THREADS, 1, 1,
                0), stream, args.build());
    }

    private LoadedKernel kernel(SageBwdPlan plan, String entry) {
        return loader.auxKernel(plan.key(), () -> KernelLoader.source(loader.renderer(), plan), plan.arch(), entry);
    }

}
