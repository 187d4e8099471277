package dev.sagejit.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sagejit.codegen.GeneratorVersion;
import dev.sagejit.codegen.TemplateRenderer;
import dev.sagejit.spec.Arch;
import dev.sagejit.spec.KernelSpec;
import dev.sagejit.spec.TileTable;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** Golden properties of rendered forward kernels; needs no GPU and no NVRTC. */
class FwdKernelRenderTest {
    private final TemplateRenderer renderer = new TemplateRenderer();

    @Test
    void everyBaselineVariantRendersWithHeaderAndNoLeftoverMarkup() throws Exception {
        Path dump = Path.of("target", "rendered");
        Files.createDirectories(dump);
        for (Arch arch : java.util.List.of(Arch.SM90A, Arch.SM120A)) {
            var specs = new java.util.ArrayList<>(KernelSpec.baselineFamily(arch));
            specs.addAll(KernelSpec.sage2Family(arch));
            for (KernelSpec spec : specs) {
                for (var tiles : TileTable.candidates(spec)) {
                    var plan = new FwdKernelPlan(spec, tiles);
                    String cu = renderer.render(plan.template(), plan.templateModel());
                    Files.writeString(dump.resolve(plan.key() + ".cu"), cu);
                    assertTrue(cu.startsWith("// sagejit generated kernel: " + plan.key() + "\n"), plan.key());
                    assertTrue(cu.contains("generator " + GeneratorVersion.VALUE));
                    assertTrue(cu.contains(plan.entry() + "("), "entry point present");
                    assertFalse(cu.contains("${") || cu.contains("<#"), "unrendered markup in " + plan.key());
                    assertFalse(cu.contains("#include"), "kernels must be header-free for NVRTC");
                }
            }
        }
    }

    @Test
    void int8Fp8WgmmaKernelsRenderTheirSoftmaxAndTimelineVariants() {
        var d128 = new KernelSpec(dev.sagejit.spec.Direction.FWD, Arch.SM90A, dev.sagejit.api.Precision.INT8_FP8, 128,
                false, false);
        var d64 = new KernelSpec(dev.sagejit.spec.Direction.FWD, Arch.SM90A, dev.sagejit.api.Precision.INT8_FP8, 64,
                false, false);
        var spec128 = FwdKernelPlan.ofDefault(d128);
        assertTrue(spec128.speculativeSoftmax(), spec128.key());
        String cu = renderer.render(spec128.template(), spec128.templateModel());
        assertTrue(cu.contains("sage2_pack_spec(p_cur, acc_s, c, m_run)"), "d128 co-resident steady blocks speculate");
        assertTrue(cu.contains("constexpr float SAGE2_P_LOG2 = LOG2_FP8_MAX - SOFTMAX_HEADROOM;"));
        var exact64 = FwdKernelPlan.ofDefault(d64);
        assertFalse(exact64.speculativeSoftmax());
        String cu64 = renderer.render(exact64.template(), exact64.templateModel());
        assertFalse(cu64.contains("sage2_pack_spec("), "d64 keeps the exact step");
        assertFalse(cu64.contains("sage_timeline"));
        // The timeline build is another kernel (own key and entry) with the stamps' global.
        var timeline = spec128.withTimeline(8);
        assertFalse(timeline.key().equals(spec128.key()));
        String tl = renderer.render(timeline.template(), timeline.templateModel());
        assertTrue(tl.contains("__device__ unsigned long long sage_timeline[TL_MAX_CTAS * CONSUMERS * TL_BLOCKS * TL_STAMPS];"));
        assertTrue(tl.contains(timeline.entry() + "("));
        var bf16 = new KernelSpec(dev.sagejit.spec.Direction.FWD, Arch.SM90A, dev.sagejit.api.Precision.BF16, 128,
                false, false);
        org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> FwdKernelPlan.ofDefault(bf16).withTimeline(8), "only the int8-fp8 wgmma kernel has a timeline");
    }

    @Test
    void quantizerModulesRender() throws Exception {
        Path dump = Path.of("target", "rendered");
        Files.createDirectories(dump);
        for (var type : java.util.List.of(dev.sagejit.api.DType.BF16, dev.sagejit.api.DType.FP16)) {
            for (int d : new int[] {64, 128}) {
                var plan = new Sage2QuantPlan(Arch.SM90A, type, d);
                var src = KernelLoader.source(renderer, plan);
                Files.writeString(dump.resolve(plan.key() + ".cu"), src.code());
                assertTrue(src.code().startsWith("// sagejit generated kernel: " + plan.key() + "\n"));
                for (String entry : java.util.List.of(Sage2QuantPlan.KV_STATS, Sage2QuantPlan.QUANT_Q,
                        Sage2QuantPlan.QUANT_K, Sage2QuantPlan.QUANT_V)) {
                    assertTrue(src.code().contains(entry + "("), entry);
                }
                assertFalse(src.code().contains("${") || src.code().contains("<#"));
                var fp4 = new Nvfp4QuantPlan(Arch.SM90A, type, d);
                var fp4Src = KernelLoader.source(renderer, fp4);
                Files.writeString(dump.resolve(fp4.key() + ".cu"), fp4Src.code());
                for (String entry : java.util.List.of(Nvfp4QuantPlan.KMEAN, Nvfp4QuantPlan.QMEAN, Nvfp4QuantPlan.QUANT_Q,
                        Nvfp4QuantPlan.QUANT_K, Nvfp4QuantPlan.QUANT_V, Nvfp4QuantPlan.DELTA_S)) {
                    assertTrue(fp4Src.code().contains(entry + "("), entry);
                }
                assertFalse(fp4Src.code().contains("${") || fp4Src.code().contains("<#"));
            }
        }
    }

    @Test
    void numbersRenderAsCLiterals() {
        var spec = KernelSpec.baselineFamily(Arch.SM90A).get(0);
        var plan = FwdKernelPlan.ofDefault(spec);
        String cu = renderer.render(plan.template(), plan.templateModel());
        assertTrue(cu.contains("constexpr u32 Q_TILE_BYTES = " + plan.templateModel().get("qTileBytes") + ";"));
        assertEquals(-1, cu.indexOf("1,0"), "no locale grouping in numbers");
    }

    /** V's ones columns: four E4M3 1.0 bytes (0x38) in one word; 0x56 (a decimal 56 printed as hex) is 14.0. */
    @Test
    void int8Fp8KernelsCarryE4m3OnesForTheRowSums() {
        for (KernelSpec spec : KernelSpec.sage2Family(Arch.SM90A)) {
            for (var tiles : java.util.List.of(dev.sagejit.spec.TileTable.choose(spec).tiles(),
                    new dev.sagejit.spec.TileConfig(64, 64, 4, dev.sagejit.spec.TileTable.FWD_STAGES))) {
                var plan = new FwdKernelPlan(spec, tiles);
                String cu = renderer.render(plan.template(), plan.templateModel());
                assertTrue(cu.contains("constexpr u32 SAGE_E4M3_ONES = 0x38383838u;"), plan.key());
            }
        }
        assertEquals(1.0f, dev.sagejit.reference.Sage2Reference.e4m3ToFloat((byte) dev.sagejit.spec.Int8Fp8Layout.E4M3_ONE));
    }

    /** The 16-bit backward module renders its three entries for every type, head dim and mask. */
    @Test
    void backwardModulesRenderThreeEntries() {
        for (var type : java.util.List.of(dev.sagejit.api.DType.BF16, dev.sagejit.api.DType.FP16)) {
            for (int d : new int[] {64, 128}) {
                for (boolean causal : new boolean[] {false, true}) {
                    var plan = new FlashBwdPlan(Arch.SM90A, type, d, causal);
                    String cu = KernelLoader.source(renderer, plan).code();
                    assertTrue(cu.startsWith("// sagejit generated kernel: " + plan.key()), plan.key());
                    for (String entry : new String[] {plan.prepEntry() + "(", plan.dqEntry() + "(", plan.entry() + "("}) {
                        assertTrue(cu.contains(entry), plan.key() + " has " + entry);
                    }
                    assertTrue(cu.contains("constexpr bool CAUSAL = " + causal + ";"), plan.key());
                    assertEquals(-1, cu.indexOf("${"), "no leftover markup in " + plan.key());
                }
            }
        }
    }
}
