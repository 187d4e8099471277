package dev.sagejit.kernel;

import dev.sagejit.api.DeviceTensor;
import dev.sagejit.runtime.DeviceBuffer;
import dev.sagejit.runtime.KernelArgs;
import dev.sagejit.runtime.LaunchGeometry;
import dev.sagejit.runtime.LoadedKernel;
import dev.sagejit.runtime.Stream;
import dev.sagejit.runtime.TensorMap;
import dev.sagejit.spec.Int8Fp8Layout;

/**
 * The int8-fp8 forward: quantize Q, K, V into a workspace (four kernels), then run the attention
 * kernel on the quantized operands, all on one stream. Each call leases its workspace from a pool, so
 * calls from many threads and streams never share one while the GPU still reads it.
 * {@link #quantize} alone is what the end-to-end benchmarks add to the kernel-only time, and what the
 * quantizer tests read back.
 */
final class Sage2Launcher implements AutoCloseable {
    /** Workspaces for as many streams enqueueing at once; more wait for one on the GPU. */
    static final int MAX_WORKSPACES = 8;
    private final KernelLoader loader;
    private final WorkspacePool<Sage2Workspace> workspaces;

    Sage2Launcher(KernelLoader loader) {
        this.loader = loader;
        this.workspaces = new WorkspacePool<>(loader.device(), MAX_WORKSPACES, () -> new Sage2Workspace(loader.device()));
    }

    /**
     * Enqueues the quantizers; returns the workspace views holding their output, valid until the
     * next call on another stream or thread may take the workspace (tests read them back).
     */
    Sage2Workspace.Views quantize(FwdProblem p, FwdKernelPlan plan, Stream stream) {
        try (var lease = workspaces.lease(stream)) {
            return quantize(p, plan, stream, lease.workspace().views(p));
        }
    }

    private Sage2Workspace.Views quantize(FwdProblem p, FwdKernelPlan plan, Stream stream, Sage2Workspace.Views w) {
        var qp = new Sage2QuantPlan(plan.spec().arch(), plan.spec().elementType(), p.q().headDim());
        w.kSum().zeroAsync(stream);
        w.vMax().zeroAsync(stream);
        if (p.k().seq() == 0) {
            w.vScale().zeroAsync(stream);  // no V quantizer runs; the epilogue still scales O (all zero)
        }
        int nq = p.q().seq();
        int nk = p.k().seq();
        int hkv = p.k().heads();
        var k = p.k();
        var v = p.v();
        if (nk > 0 && nq > 0 && !plan.spec().lse()) {
            // Without LSE nothing needs qshift, so quant_q runs beside kv_stats, and quant_k beside
            // quant_v: two interleaved launches whose memory waits overlap (docs/perf-notes-int8fp8.md).
            // Each merged kernel takes its two quantizers' parameters in turn, then its grid.
            int statsX = Sage2QuantPlan.statsBlocks(nk);
            int qX = blocks(nq);
            long statsAndQ = (long) statsX * hkv * p.batch() + (long) qX * p.heads() * p.batch();
            launch(qp, Sage2QuantPlan.STATS_AND_Q, Math.toIntExact(statsAndQ), 1, 1, stream,
                    quantQArgs(kvStatsArgs(KernelArgs.builder(), k, v, w.kSum(), w.vMax()), p, w)
                            .i32(statsX).i32(hkv).i32(qX).i32(p.heads()).i32(p.batch()));
            int kvX = blocks(nk);
            launch(qp, Sage2QuantPlan.QUANT_KV, Math.toIntExact(2L * kvX * hkv * p.batch()), 1, 1, stream,
                    quantVArgs(quantKArgs(KernelArgs.builder(), k, w), v, w).i32(kvX).i32(hkv).i32(p.batch()));
            return w;
        }
        if (nk > 0) {
            kvStats(loader, qp, k, v, w.kSum(), w.vMax(), stream);
        }
        if (nq > 0) {
            launch(qp, Sage2QuantPlan.QUANT_Q, blocks(nq), p.heads(), p.batch(), stream,
                    quantQArgs(KernelArgs.builder(), p, w));
        }
        if (nk > 0) {
            launch(qp, Sage2QuantPlan.QUANT_K, blocks(nk), hkv, p.batch(), stream, quantKArgs(KernelArgs.builder(), k, w));
            launch(qp, Sage2QuantPlan.QUANT_V, blocks(nk), hkv, p.batch(), stream, quantVArgs(KernelArgs.builder(), v, w));
        }
        return w;
    }

    /** Enqueues quantization and attention for a validated problem and its int8-fp8 plan. */
    void launch(FwdProblem p, FwdKernelPlan plan, KernelLoader.Ready ready, float scaleLog2, Stream stream) {
        try (var lease = workspaces.lease(stream)) {
            attend(p, plan, ready, scaleLog2, stream, quantize(p, plan, stream, lease.workspace().views(p)));
        }
    }

    /**
     * Enqueues only the attention kernel over the workspace as the last {@link #quantize} of a
     * problem of the same shape left it (kernel-only timing).
     */
    void attendOnly(FwdProblem p, FwdKernelPlan plan, KernelLoader.Ready ready, float scaleLog2, Stream stream) {
        try (var lease = workspaces.lease(stream)) {
            attend(p, plan, ready, scaleLog2, stream, lease.workspace().views(p));
        }
    }

    private void attend(FwdProblem p, FwdKernelPlan plan, KernelLoader.Ready ready, float scaleLog2, Stream stream,
            Sage2Workspace.Views w) {
        if (!plan.usesTensorMaps()) {
            attendMmaSync(p, plan, ready, scaleLog2, stream, w);
            return;
        }
        int nq = p.q().seq();
        int nk = p.k().seq();
        int d = p.q().headDim();
        int hkv = p.k().heads();
        var qkSwizzle = TensorMap.Swizzle.forRowBytes(plan.qkRowBytes());
        var u8 = TensorMap.DataType.UINT8;
        int b = p.batch();
        var tmQ = TensorMap.encodeTiled(u8, w.q8().address(), new long[] {d, Math.max(1, nq), p.heads(), b},
                new long[] {d, (long) d * Math.max(1, nq), (long) d * Math.max(1, nq) * p.heads()},
                new int[] {plan.columnBlockElements(), plan.tiles().blockM(), 1, 1}, qkSwizzle);
        var tmK = TensorMap.encodeTiled(u8, w.k8().address(), new long[] {d, Math.max(1, nk), hkv, b},
                new long[] {d, (long) d * Math.max(1, nk), (long) d * Math.max(1, nk) * hkv},
                new int[] {plan.columnBlockElements(), plan.tiles().blockN(), 1, 1}, qkSwizzle);
        long pad = Math.max(Int8Fp8Layout.V_PERM_PERIOD, Int8Fp8Layout.nkPad(nk));
        var tmV = TensorMap.encodeTiled(u8, w.v8t().address(), new long[] {pad, d, hkv, b},
                new long[] {pad, pad * d, pad * d * hkv}, new int[] {plan.tiles().blockN(), d, 1, 1},
                TensorMap.Swizzle.forRowBytes(plan.vRowBytes()));
        int[] grid = plan.persistentGrid(b, p.heads(), nq, loader.device().smCount());
        var geometry = new LaunchGeometry(grid[0], grid[1], grid[2], plan.threads(), 1, 1, plan.sharedBytes());
        var args = KernelArgs.builder().blob(tmQ.bytes()).blob(tmK.bytes()).blob(tmV.bytes())
                .ptr(p.o().address()).ptr(p.lseAddress())
                .ptr(w.qScale()).ptr(w.kScale()).ptr(w.qShift()).ptr(w.vScale())
                .i64(p.o().batchStride()).i64(p.o().headStride()).i64(p.o().seqStride())
                .i32(nq).i32(nk).i32(p.group()).f32(scaleLog2)
                .i32(Int8Fp8Layout.qGroups(nq)).i32(Int8Fp8Layout.kGroups(nk)).i32(p.heads()).i32(b);
        ready.kernel().launch(geometry, stream, args.build());
    }

    /** The portable mma.sync kernel reads the workspace through plain pointers. */
    private void attendMmaSync(FwdProblem p, FwdKernelPlan plan, KernelLoader.Ready ready, float scaleLog2,
            Stream stream, Sage2Workspace.Views w) {
        int nq = p.q().seq();
        int nk = p.k().seq();
        int[] grid = plan.grid(p.batch(), p.heads(), nq);
        var geometry = new LaunchGeometry(grid[0], grid[1], grid[2], plan.threads(), 1, 1, plan.sharedBytes());
        var args = KernelArgs.builder().ptr(w.q8()).ptr(w.k8()).ptr(w.v8t()).ptr(p.o().address()).ptr(p.lseAddress())
                .ptr(w.qScale()).ptr(w.kScale()).ptr(w.qShift()).ptr(w.vScale())
                .i64(p.o().batchStride()).i64(p.o().headStride()).i64(p.o().seqStride())
                .i32(nq).i32(nk).i32(p.group()).f32(scaleLog2)
                .i32(Int8Fp8Layout.qGroups(nq)).i32(Int8Fp8Layout.kGroups(nk)).i32(Int8Fp8Layout.nkPad(nk));
        ready.kernel().launch(geometry, stream, args.build());
    }

    /**
     * Adds K's per-channel sums into {@code kSum} and V's per-channel abs-max bits into {@code vMax}
     * (both [B, Hkv, D], zeroed by the caller) with the kv_stats kernel; nk must be positive.
     */
    static void kvStats(KernelLoader loader, Sage2QuantPlan qp, DeviceTensor k, DeviceTensor v, DeviceBuffer kSum,
            DeviceBuffer vMax, Stream stream) {
        launch(loader, qp, Sage2QuantPlan.KV_STATS, Sage2QuantPlan.statsBlocks(k.seq()), k.heads(), k.batch(), stream,
                kvStatsArgs(KernelArgs.builder(), k, v, kSum, vMax));
    }

    // Each quantizer kernel's parameters (sage2_quant.ftl), appended to `b`; the merged kernels take two in turn.
    private static KernelArgs.Builder kvStatsArgs(KernelArgs.Builder b, DeviceTensor k, DeviceTensor v, DeviceBuffer kSum,
            DeviceBuffer vMax) {
        return b.ptr(k.address()).ptr(v.address()).i64(k.batchStride()).i64(k.headStride()).i64(k.seqStride())
                .i64(v.batchStride()).i64(v.headStride()).i64(v.seqStride()).i32(k.seq()).ptr(kSum).ptr(vMax);
    }

    private static KernelArgs.Builder quantQArgs(KernelArgs.Builder b, FwdProblem p, Sage2Workspace.Views w) {
        var q = p.q();
        return b.ptr(q.address()).i64(q.batchStride()).i64(q.headStride()).i64(q.seqStride()).i32(q.seq())
                .i32(p.group()).i32(p.k().seq()).ptr(w.kSum()).ptr(w.q8()).ptr(w.qScale()).ptr(w.qShift())
                .i32(Int8Fp8Layout.qGroups(q.seq()));
    }

    private static KernelArgs.Builder quantKArgs(KernelArgs.Builder b, DeviceTensor k, Sage2Workspace.Views w) {
        return b.ptr(k.address()).i64(k.batchStride()).i64(k.headStride()).i64(k.seqStride()).i32(k.seq())
                .ptr(w.kSum()).ptr(w.k8()).ptr(w.kScale()).i32(Int8Fp8Layout.kGroups(k.seq()));
    }

    private static KernelArgs.Builder quantVArgs(KernelArgs.Builder b, DeviceTensor v, Sage2Workspace.Views w) {
        return b.ptr(v.address()).i64(v.batchStride()).i64(v.headStride()).i64(v.seqStride()).i32(v.seq())
                .i32(Int8Fp8Layout.nkPad(v.seq())).ptr(w.vMax()).ptr(w.v8t()).ptr(w.vScale());
    }

    private static int blocks(int n) {
        return (n + Sage2QuantPlan.TOKENS - 1) / Sage2QuantPlan.TOKENS;
    }

    private void launch(Sage2QuantPlan qp, String entry, int gx, int gy, int gz, Stream stream, KernelArgs.Builder args) {
        launch(loader, qp, entry, gx, gy, gz, stream, args);
    }

    private static void launch(KernelLoader loader, Sage2QuantPlan qp, String entry, int gx, int gy, int gz,
            Stream stream, KernelArgs.Builder args) {
        LoadedKernel kernel = loader.auxKernel(qp.key(), () -> KernelLoader.source(loader.renderer(), qp), qp.arch(), entry);
        kernel.launch(new LaunchGeometry(gx, gy, gz, Sage2QuantPlan.THREADS, 1, 1, 0), stream, args.build());
    }

    @Override
    public void close() {
        workspaces.close();
    }
}
