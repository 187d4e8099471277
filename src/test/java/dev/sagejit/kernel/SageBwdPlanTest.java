package dev.sagejit.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sagejit.api.AttentionOptions;
import dev.sagejit.api.DType;
import dev.sagejit.api.DeviceTensor;
import dev.sagejit.api.Layout;
import dev.sagejit.api.Precision;
import dev.sagejit.api.SageException;
import dev.sagejit.codegen.TemplateRenderer;
import dev.sagejit.spec.Arch;
import dev.sagejit.spec.Direction;
import dev.sagejit.spec.KernelSpec;
import dev.sagejit.spec.SageBwdLayout;
import org.junit.jupiter.api.Test;

/** SageBwd's modules render from their plans' numbers (NVRTC compiles them in CI); bad calls fail early. */
class SageBwdPlanTest {
    private static final TemplateRenderer RENDERER = new TemplateRenderer();

    @Test
    void everyVariantRendersBothEntriesWithItsNumbers() {
        for (DType type : new DType[] {DType.BF16, DType.FP16}) {
            for (int d : new int[] {64, 128}) {
                for (boolean causal : new boolean[] {false, true}) {
                    var plan = new SageBwdPlan(Arch.SM90A, type, d, causal);
                    String code = KernelLoader.source(RENDERER, plan).code();
                    assertTrue(code.contains(plan.forwardEntry() + "(") && code.contains(plan.backwardEntry() + "("),
                            plan.key());
                    assertTrue(code.contains("constexpr int HEAD_DIM = " + d + ";"), plan.key());
                    assertTrue(code.contains("constexpr int BLOCK = " + SageBwdLayout.BLOCK + ";"), plan.key());
                    assertTrue(code.contains("constexpr bool CAUSAL = " + causal + ";"), plan.key());
                    assertTrue(code.contains("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32"), plan.key());
                    assertTrue(code.contains("mma.sync.aligned.m16n8k16.row.col.f32." + type.ptxName()), plan.key());
                }
            }
        }
        String quant = KernelLoader.source(RENDERER, new SageBwdQuantPlan(Arch.SM120A, DType.BF16, 128)).code();
        assertTrue(quant.contains("extern \"C\" __global__") && quant.contains(SageBwdQuantPlan.ENTRY + "("));
        assertTrue(quant.contains("{0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15}"), "PERM_ROWS in the table");
    }

    /**
     * sm_90a's forward is the TMA pipeline one: a producer and two consumer warpgroups, INT8 S = Q8 K8^T and
     * INT8 P~ V (A from registers, V^T in PERM_COLUMNS order), persistent over the SMs; the other archs keep
     * the mma.sync forward over the same INT8 V^T.
     */
    @Test
    void hopperForwardRunsOnTheTmaPipeline() {
        for (int d : new int[] {64, 128}) {
            for (boolean causal : new boolean[] {false, true}) {
                var plan = new SageBwdPlan(Arch.SM90A, DType.BF16, d, causal);
                assertTrue(plan.wgmmaForward(), plan.key());
                assertEquals(3 * 128, plan.forwardThreads());
                String code = KernelLoader.source(RENDERER, plan).code();
                assertTrue(code.contains("wgmma.mma_async.sync.aligned.m64n" + d + "k32.s32.s8.s8"), plan.key());
                assertTrue(!code.contains("k16.f32.f16.f16"), plan.key() + ": no 16-bit P~ V");
                assertTrue(code.contains("const __grid_constant__ SageTensorMap tm_v"), plan.key());
                assertTrue(code.contains("setmaxnreg.inc.sync.aligned.u32 240"), plan.key());
                assertTrue(code.contains("constexpr bool PINGPONG = " + !causal + ";"), plan.key());
                assertEquals(132, plan.forwardGrid(4, 32, 4096, 132)[0], "one block per SM over 1024 tiles");
                assertEquals(3, plan.forwardGrid(1, 1, 300, 132)[0], "one block per tile when tiles are few");
            }
        }
        var blackwell = new SageBwdPlan(Arch.SM120A, DType.BF16, 128, false);
        assertEquals(256, blackwell.forwardThreads());
        assertEquals(java.util.List.of(32, 32, 4), java.util.Arrays.stream(blackwell.forwardGrid(4, 32, 4096, 188))
                .boxed().toList());
        assertTrue(!KernelLoader.source(RENDERER, blackwell).code().contains("wgmma."));
    }

    /**
     * sm_90a's backward is the wgmma one: its four instruction shapes (INT8 S^T, 16-bit dP^T, INT8 dV / dK
     * with A from registers, INT8 dQ), two warpgroups over two key tiles, dQ reduce-added by TMA; the other archs
     * keep mma.sync.
     */
    @Test
    void hopperBackwardRunsOnWarpgroupMmas() {
        for (DType type : new DType[] {DType.BF16, DType.FP16}) {
            for (int d : new int[] {64, 128}) {
                var plan = new SageBwdPlan(Arch.SM90A, type, d, false);
                assertTrue(plan.wgmmaBackward() && plan.key().contains("_wg_"), plan.key());
                assertEquals(2 * 128, plan.backwardThreads(), plan.key());
                String code = KernelLoader.source(RENDERER, plan).code();
                assertTrue(code.contains("wgmma.mma_async.sync.aligned.m64n64k32.s32.s8.s8"), plan.key());
                assertTrue(code.contains("wgmma.mma_async.sync.aligned.m64n64k16.f32." + type.ptxName() + "."
                        + type.ptxName()), plan.key());
                assertTrue(code.contains("wgmma.mma_async.sync.aligned.m64n" + d / 2 + "k32.s32.s8.s8"),
                        plan.key() + ": dQ takes half the head dim per warpgroup");
                assertTrue(code.contains("cp.reduce.async.bulk.tensor.4d.global.shared::cta.add")
                        && code.contains("sagebwd_reduce_dq(sDQ"), plan.key() + ": dQ is reduce-added by TMA");
            }
        }
        var blackwell = new SageBwdPlan(Arch.SM120A, DType.BF16, 128, false);
        assertTrue(!blackwell.wgmmaBackward() && !KernelLoader.source(RENDERER, blackwell).code().contains("wgmma."));
    }

    @Test
    void sharedMemoryFitsTheArchs() {
        for (Arch arch : new Arch[] {Arch.SM90A, Arch.SM120A}) {
            for (int d : new int[] {64, 128}) {
                var plan = new SageBwdPlan(arch, DType.BF16, d, false);
                if (plan.wgmmaForward()) {
                    // Alignment slack, two Q slots, four stages of K8 and V8^T, the mbarriers.
                    assertEquals(1024 + 2 * SageBwdPlan.FWD_BLOCK_M * d + 4 * 2 * SageBwdLayout.BLOCK * d + 256,
                            plan.forwardSharedBytes());
                    assertEquals(3 * 128, plan.forwardThreads(), "a producer and two consumer warpgroups");
                } else {
                    assertEquals(SageBwdPlan.FWD_BLOCK_M * d + 4 * SageBwdLayout.BLOCK * d, plan.forwardSharedBytes());
                    assertEquals(256, plan.forwardThreads());
                }
                assertTrue(plan.forwardSharedBytes() <= arch.maxSmemPerBlock(), plan.key());
                assertTrue(plan.backwardSharedBytes() <= arch.maxSmemPerBlock(), plan.key() + ": "
                        + plan.backwardSharedBytes());
                assertEquals(plan.backwardKeys() / 16 * 32, plan.backwardThreads());
            }
        }
        assertEquals(SageBwdPlan.WIDE_BWD_KEYS, new SageBwdPlan(Arch.SM90A, DType.BF16, 128, true).backwardKeys());
        assertEquals(SageBwdLayout.BLOCK, new SageBwdPlan(Arch.SM120A, DType.BF16, 128, true).backwardKeys(),
                "sm_120a's 99 KB hold one key tile at head dim 128");
        assertTrue(KernelLoader.source(RENDERER, new SageBwdPlan(Arch.SM120A, DType.BF16, 128, false)).code()
                .contains("constexpr int BWD_KEYS = 64;"));
    }

    @Test
    void trainingModesAreNotForwardSpecs() {
        var e = assertThrows(IllegalArgumentException.class,
                () -> new KernelSpec(Direction.FWD, Arch.SM90A, Precision.SAGEBWD, 128, false, false));
        assertTrue(e.getMessage().contains("training mode"), e.getMessage());
        assertTrue(Precision.SAGEBWD.trainable() && Precision.BF16.trainable() && !Precision.INT8_FP8.trainable());
        assertEquals(Precision.SAGEBWD_FP16, Precision.parse("sagebwd-fp16"));
    }

    /** Shapes and precisions are checked before the loader (null here) is touched. */
    @Test
    void badCallsAreRefusedBeforeAnyLaunch() {
        var sb = new SageBwd(null);
        var q = DeviceTensor.contiguous(1L << 20, DType.BF16, Layout.BHSD, 1, 4, 100, 128);
        var kv = DeviceTensor.contiguous(1L << 21, DType.BF16, Layout.BHSD, 1, 3, 100, 128);
        var bf16 = AttentionOptions.builder().precision(Precision.BF16).build();
        var sage = AttentionOptions.builder().precision(Precision.SAGEBWD).build();
        try (var ws = new SageBwd.Workspace(null)) {
            var e = assertThrows(SageException.InvalidInput.class,
                    () -> sb.forward(sage, q, kv, kv, q, 1L << 22, Arch.SM90A, null, ws));
            assertTrue(e.getMessage().contains("multiple"), e.getMessage());
            var kv4 = DeviceTensor.contiguous(1L << 21, DType.BF16, Layout.BHSD, 1, 4, 100, 128);
            e = assertThrows(SageException.InvalidInput.class,
                    () -> sb.forward(bf16, q, kv4, kv4, q, 1L << 22, Arch.SM90A, null, ws));
            assertTrue(e.getMessage().contains("sagebwd precisions"), e.getMessage());
        }
    }
}
