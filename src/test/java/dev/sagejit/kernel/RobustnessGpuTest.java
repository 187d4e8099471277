package dev.sagejit.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sagejit.api.AttentionOptions;
import dev.sagejit.api.DType;
import dev.sagejit.api.HostQkv;
import dev.sagejit.api.Layout;
import dev.sagejit.api.Precision;
import dev.sagejit.api.SageException;
import dev.sagejit.reference.AttentionProblem;
import dev.sagejit.reference.CpuAttention;
import dev.sagejit.reference.HostTensor;
import dev.sagejit.reference.Inputs;
import dev.sagejit.reference.Metrics;
import dev.sagejit.runtime.DeviceBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * One engine under load (issue 7): many threads with mixed specs, long runs without memory growth,
 * and out-of-memory reported with the engine still usable after it.
 */
@Tag("gpu")
class RobustnessGpuTest extends dev.sagejit.testing.GpuSession {
    private record Job(Precision precision, boolean causal, int d, Layout layout) {
    }

    /** One call on host arrays, checked against FP64 with the precision's bar; returns its O error. */
    private static Metrics.Errors checkedCall(Job j, long seed) {
        var p = new AttentionProblem(1, 4, 2, 192, 160, j.d(), j.causal());
        var t = j.precision().inputType();
        var raw = Inputs.generate(Inputs.GAUSSIAN, p, j.layout(), seed);
        HostTensor q = raw.q().roundTo(t), k = raw.k().roundTo(t), v = raw.v().roundTo(t);
        var opts = AttentionOptions.builder().precision(j.precision()).causal(j.causal()).build();
        var out = sage.forward(opts, new HostQkv(j.layout(), 1, 4, 2, 192, 160, j.d(), q.data(), k.data(), v.data()));
        var ref = CpuAttention.forward(p, q, k, v);
        return Metrics.output(new HostTensor(out.o(), 1, 4, 192, j.d(), j.layout()), ref, p);
    }

    private static boolean passes(Job j, Metrics.Errors e) {
        if (j.precision().quantized()) {
            return e.cosine() >= 0.999 && e.relL1() <= 0.045;
        }
        return e.relL2() <= dev.sagejit.bench.Accuracy.tolerance(j.precision());
    }

    @Test
    void manyThreadsMixedSpecsCorrectAndCompiledOnce() throws Exception {
        var jobs = new ArrayList<Job>();
        for (Precision pr : List.of(Precision.BF16, Precision.FP16, Precision.INT8_FP8)) {
            for (boolean causal : new boolean[] {false, true}) {
                for (int d : new int[] {64, 128}) {
                    jobs.add(new Job(pr, causal, d, d == 64 ? Layout.BSHD : Layout.BHSD));
                }
            }
        }
        int before = SageInternals.launcher(sage).loadedKernels();
        try (var pool = Executors.newFixedThreadPool(16)) {
            var futures = new ArrayList<Future<String>>();
            for (int round = 0; round < 4; round++) {
                for (int i = 0; i < jobs.size(); i++) {
                    Job j = jobs.get(i);
                    long seed = 100L * round + i;
                    futures.add(pool.submit(() -> {
                        var e = checkedCall(j, seed);
                        return passes(j, e) ? null : j + ": " + e.summary();
                    }));
                }
            }
            var failures = new ArrayList<String>();
            for (var f : futures) {
                String why = f.get();
                if (why != null) {
                    failures.add(why);
                }
            }
            assertTrue(failures.isEmpty(), failures.toString());
        }
        // Each spec's kernel was compiled and loaded once, whatever the number of threads asking for it.
        int loaded = SageInternals.launcher(sage).loadedKernels() - before;
        assertTrue(loaded <= jobs.size(), loaded + " kernels loaded for " + jobs.size() + " specs");
    }

    @Test
    void thousandsOfCallsDoNotGrowMemory() {
        var opts = AttentionOptions.builder().precision(Precision.INT8_FP8).causal(true).build();
        var dev = sage.device();
        var p = new AttentionProblem(2, 8, 2, 512, 512, 128, true);
        var raw = Inputs.generate(Inputs.GAUSSIAN, p, Layout.BHSD, 5);
        try (DeviceBuffer dq = DeviceCopies.upload(dev, raw.q().roundTo(DType.BF16), DType.BF16);
                DeviceBuffer dk = DeviceCopies.upload(dev, raw.k().roundTo(DType.BF16), DType.BF16);
                DeviceBuffer dv = DeviceCopies.upload(dev, raw.v().roundTo(DType.BF16), DType.BF16);
                DeviceBuffer dout = dev.allocate(2L * raw.q().data().length)) {
            var q = DeviceCopies.tensor(dq, DType.BF16, raw.q());
            var k = DeviceCopies.tensor(dk, DType.BF16, raw.k());
            var v = DeviceCopies.tensor(dv, DType.BF16, raw.v());
            var o = DeviceCopies.tensor(dout, DType.BF16, raw.q());
            for (int i = 0; i < 50; i++) { // warm: kernels loaded, workspaces sized
                sage.forward(opts, q, k, v, o, 0L, null);
            }
            dev.synchronize();
            System.gc();
            long gpuBefore = dev.freeMemory();
            long heapBefore = usedHeap();
            for (int i = 0; i < 5000; i++) {
                sage.forward(opts, q, k, v, o, 0L, null);
                if (i % 500 == 499) {
                    dev.synchronize();
                }
            }
            dev.synchronize();
            System.gc();
            long gpuAfter = dev.freeMemory();
            long heapAfter = usedHeap();
            System.out.printf(Locale.ROOT, "5000 calls: GPU free memory %+d bytes, Java heap in use %+d bytes%n",
                    gpuAfter - gpuBefore, heapAfter - heapBefore);
            assertEquals(gpuBefore, gpuAfter, "device memory changed over 5000 calls");
            assertTrue(heapAfter - heapBefore < 16L << 20, "heap grew by " + (heapAfter - heapBefore) + " bytes");
        }
    }

    private static long usedHeap() {
        var rt = Runtime.getRuntime();
        return rt.totalMemory() - rt.freeMemory();
    }

    /** A freed buffer, host memory and a view past its allocation are refused before any launch. */
    @Test
    void freedAndForeignPointersAreRefusedBeforeLaunching() {
        var dev = sage.device();
        var opts = AttentionOptions.builder().precision(Precision.BF16).build();
        var p = new AttentionProblem(1, 2, 2, 64, 64, 64, false);
        long bytes = 2L * 2 * 64 * 64;
        try (DeviceBuffer a = dev.allocate(bytes); DeviceBuffer out = dev.allocate(bytes)) {
            var raw = Inputs.generate(Inputs.GAUSSIAN, p, Layout.BHSD, 1);
            var q = DeviceCopies.tensor(a, DType.BF16, raw.q());
            var o = DeviceCopies.tensor(out, DType.BF16, raw.q());
            DeviceBuffer freed = dev.allocate(bytes);
            var gone = DeviceCopies.tensor(freed, DType.BF16, raw.k());
            freed.close();
            var e = assertThrows(SageException.InvalidInput.class, () -> sage.forward(opts, q, gone, q, o, 0L, null));
            assertTrue(e.getMessage().contains("k at 0x") && e.getMessage().contains("not live device memory"),
                    e.getMessage());
            try (var arena = java.lang.foreign.Arena.ofConfined()) {
                var host = arena.allocate(bytes, 256);
                var onHost = new dev.sagejit.api.DeviceTensor(host.address(), DType.BF16, 1, 2, 64, 64,
                        new long[] {2 * 64 * 64, 64 * 64, 64});
                e = assertThrows(SageException.InvalidInput.class, () -> sage.forward(opts, q, q, onHost, o, 0L, null));
                assertTrue(e.getMessage().contains("v at 0x"), e.getMessage());
            }
            int rows = 1 << 20; // far past the 64 rows the buffer holds, whatever the driver rounds it to
            var tooLong = new dev.sagejit.api.DeviceTensor(a.address(), DType.BF16, 1, 2, rows, 64,
                    new long[] {2L * rows * 64, (long) rows * 64, 64});
            var tooLongOut = new dev.sagejit.api.DeviceTensor(out.address(), DType.BF16, 1, 2, rows, 64,
                    new long[] {2L * rows * 64, (long) rows * 64, 64});
            e = assertThrows(SageException.InvalidInput.class, () -> sage.forward(opts, tooLong, q, q, tooLongOut, 0L, null));
            assertTrue(e.getMessage().startsWith("q needs") && e.getMessage().contains("allocation ends"), e.getMessage());
            sage.forward(opts, q, q, q, o, 0L, null); // the engine is fine afterwards
            dev.synchronize();
        }
    }

    @Test
    void outOfMemoryIsReportedAndTheEngineStillWorks() {
        var dev = sage.device();
        var e = assertThrows(SageException.OutOfResources.class, () -> dev.allocate(dev.totalMemory() * 2));
        assertTrue(e.getMessage().contains("OUT_OF_MEMORY"), e.getMessage());
        var j = new Job(Precision.BF16, false, 128, Layout.BHSD);
        assertTrue(passes(j, checkedCall(j, 9)), "a call after the failed allocation");
    }
}
