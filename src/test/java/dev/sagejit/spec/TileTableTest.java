package dev.sagejit.spec;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sagejit.api.Precision;
import org.junit.jupiter.api.Test;

/** Properties of the tile table over every spec of every arch: defaults valid, candidates valid. */
class TileTableTest {
    @Test
    void everyDefaultAndCandidateFitsItsArch() {
        for (Arch arch : Arch.ALL) {
            var specs = new java.util.ArrayList<>(KernelSpec.baselineFamily(arch));
            specs.addAll(KernelSpec.sage2Family(arch));
            for (KernelSpec spec : specs) {
                var choice = TileTable.choose(spec);
                assertTrue(TileTable.whyInvalid(spec, choice.tiles()).isEmpty(),
                        spec.key() + " default " + choice.tiles().key() + ": " + TileTable.whyInvalid(spec, choice.tiles()));
                assertFalse(choice.reason().isBlank());
                var candidates = TileTable.candidates(spec);
                assertEquals(choice.tiles(), candidates.get(0), "default first");
                for (var t : candidates) {
                    assertTrue(TileTable.forwardSharedBytes(spec, t) <= arch.maxSmemPerBlock(), spec.key(t));
                    assertEquals(candidates.indexOf(t), candidates.lastIndexOf(t), "no duplicates");
                }
            }
        }
    }

    @Test
    void tooLargeTilesAreRejectedWithTheReason() {
        var spec = new KernelSpec(Direction.FWD, Arch.SM120A, Precision.BF16, 128, false, false);
        var wide = new KernelSpec(Direction.FWD, Arch.SM90A, Precision.BF16, 128, false, false);
        var why = TileTable.whyInvalid(spec, new TileConfig(256, 64, 8, 2));
        assertTrue(why.orElseThrow().contains("shared memory"), why.toString());
        var regs = TileTable.whyInvalid(wide, new TileConfig(128, 128, 4, 2));
        assertTrue(regs.orElseThrow().contains("registers"), regs.toString());
    }

    @Test
    void keysRoundTrip() {
        var t = new TileConfig(128, 64, 4, 2);
        assertEquals(t, TileConfig.parse(t.key()));
        assertEquals("fwd_bf16_d128_causal_lse_sm90a_m128n64w4s2",
                new KernelSpec(Direction.FWD, Arch.SM90A, Precision.BF16, 128, true, true).key(t));
    }

    @Test
    void wgmmaKeysRoundTripAndCountTheProducerWarpgroup() {
        var t = TileConfig.wgmma(128, 128, 3);
        assertEquals("wgm128n128w8s3", t.key());
        assertEquals(t, TileConfig.parse(t.key()));
        assertEquals(TileConfig.Engine.WGMMA, t.engine());
        assertEquals(2, t.consumerWarpgroups());
        assertEquals(384, t.threads(), "8 consumer warps + the 4-warp producer warpgroup");
        var ex = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> new TileConfig(TileConfig.Engine.WGMMA, 128, 128, 4, 2));
        assertTrue(ex.getMessage().contains("blockM / 16"), ex.getMessage());
    }

    @Test
    void wgmmaIsTheDefaultOnlyWhereTheArchHasIt() {
        for (Arch arch : Arch.ALL) {
            for (KernelSpec spec : KernelSpec.baselineFamily(arch)) {
                var engine = TileTable.choose(spec).tiles().engine();
                assertEquals(arch.has(MmaKind.WGMMA) ? TileConfig.Engine.WGMMA : TileConfig.Engine.MMA_SYNC, engine,
                        spec.key());
                assertEquals(TileConfig.Engine.MMA_SYNC, TileTable.chooseMmaSync(spec).tiles().engine());
            }
        }
        var sm120 = new KernelSpec(Direction.FWD, Arch.SM120A, Precision.BF16, 128, false, false);
        var why = TileTable.whyInvalid(sm120, TileConfig.wgmma(128, 128, 2));
        assertTrue(why.orElseThrow().contains("no wgmma"), why.toString());
        assertTrue(TileTable.candidates(sm120).stream().noneMatch(c -> c.engine() == TileConfig.Engine.WGMMA));
    }

    @Test
    void int8Fp8ExistsWhereFp8TensorCoresDo() {
        assertTrue(KernelSpec.sage2Family(Arch.SM80).isEmpty(), "sm_80 has no FP8 mma");
        var ex = org.junit.jupiter.api.Assertions.assertThrows(dev.sagejit.api.SageException.Unsupported.class,
                () -> new KernelSpec(Direction.FWD, Arch.SM80, Precision.INT8_FP8, 128, false, false));
        assertTrue(ex.getMessage().contains("bf16"), ex.getMessage());
        var sm120 = new KernelSpec(Direction.FWD, Arch.SM120A, Precision.INT8_FP8, 128, false, false);
        assertEquals(TileConfig.Engine.MMA_SYNC, TileTable.choose(sm120).tiles().engine());
        var sm90 = new KernelSpec(Direction.FWD, Arch.SM90A, Precision.INT8_FP8, 128, false, false);
        assertEquals(TileConfig.Engine.WGMMA, TileTable.choose(sm90).tiles().engine());
        assertTrue(TileTable.candidates(sm90).stream().anyMatch(t -> t.engine() == TileConfig.Engine.MMA_SYNC),
                "the portable kernel is a candidate on sm_90a too, so the H200 tests it");
    }

    @Test
    void int8Fp8OnHopperRunsCoResidentBlocksUntilLongSequences() {
        var spec = new KernelSpec(Direction.FWD, Arch.SM90A, Precision.INT8_FP8, 128, false, false);
        var shortTiles = TileTable.choose(spec, 4096).tiles();
        assertEquals(TileTable.choose(spec).tiles(), shortTiles);
        assertTrue(TileTable.coResident(spec, shortTiles), shortTiles.key());
        assertEquals(2, TileTable.persistentQSlots(spec, shortTiles));
        assertEquals(232, TileTable.consumerRegisters(Arch.SM90A, shortTiles, 2), "(64K / 2 - 128 * 24) / 128");
        var longTiles = TileTable.choose(spec, TileTable.longKeys(spec)).tiles();
        assertEquals(2, longTiles.consumerWarpgroups());
        assertFalse(TileTable.coResident(spec, longTiles));
        assertEquals(240, TileTable.consumerRegisters(Arch.SM90A, longTiles, 1));
        // The speculative softmax runs where the H200 measured it faster: d128 co-resident blocks only.
        assertTrue(TileTable.speculativeSoftmax(spec, shortTiles));
        assertFalse(TileTable.speculativeSoftmax(spec, longTiles));
        var d64 = new KernelSpec(Direction.FWD, Arch.SM90A, Precision.INT8_FP8, 64, false, false);
        assertFalse(TileTable.speculativeSoftmax(d64, TileTable.choose(d64, 4096).tiles()));
        // d128 with 3 stages: two blocks fit only with one Q slot each.
        var s3 = TileConfig.wgmma(64, 128, 3);
        assertTrue(TileTable.coResident(spec, s3));
        assertEquals(1, TileTable.persistentQSlots(spec, s3));
        assertTrue(2 * (TileTable.forwardSharedBytes(spec, s3) + TileTable.SMEM_RESERVED_PER_BLOCK)
                <= Arch.SM90A.smemPerSm());
        // The 16-bit modes keep one default whatever the length.
        var bf16 = new KernelSpec(Direction.FWD, Arch.SM90A, Precision.BF16, 128, false, false);
        assertEquals(TileTable.choose(bf16).tiles(), TileTable.choose(bf16, 1 << 20).tiles());
    }
}
