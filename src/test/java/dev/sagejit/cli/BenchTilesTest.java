package dev.sagejit.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sagejit.api.Precision;
import dev.sagejit.spec.Arch;
import dev.sagejit.spec.Direction;
import dev.sagejit.spec.KernelSpec;
import dev.sagejit.spec.TileTable;
import java.util.List;
import org.junit.jupiter.api.Test;

class BenchTilesTest {
    private static final KernelSpec INT8 = new KernelSpec(Direction.FWD, Arch.SM90A, Precision.INT8_FP8, 128, false, false);
    private static final KernelSpec BF16 = new KernelSpec(Direction.FWD, Arch.SM90A, Precision.BF16, 128, false, false);

    @Test
    void aListKeepsItsOrderDropsRepeatsAndKeysTheCaseCannotRun() {
        String dflt = TileTable.choose(INT8, 4096).tiles().key();
        assertEquals(List.of(dflt, "wgm128n128w8s3", "m64n64w4s2"),
                BenchCommand.configs("default," + dflt + ",wgm128n128w8s3,m64n64w4s2", INT8, 4096));
        // BLOCK_N 32 serves the BF16 kernel, not int8-fp8 (its V^T rows need 64 or 128 keys).
        assertTrue(TileTable.whyInvalid(INT8, dev.sagejit.spec.TileConfig.parse("m128n32w4s2")).isPresent());
        assertEquals(List.of(dflt), BenchCommand.configs("default,m128n32w4s2", INT8, 4096));
        assertEquals(List.of(TileTable.choose(BF16, 4096).tiles().key(), "m128n32w4s2"),
                BenchCommand.configs("default,m128n32w4s2", BF16, 4096));
    }

    @Test
    void aSingleKeyStaysEvenWhenItCannotRunSoTheRunSaysWhy() {
        assertEquals(List.of("m128n32w4s2"), BenchCommand.configs("m128n32w4s2", INT8, 4096));
    }

    @Test
    void allIsEveryCandidateDefaultFirst() {
        var all = BenchCommand.configs("all", INT8, 4096);
        assertEquals(TileTable.candidates(INT8).size(), all.size());
        assertEquals(TileTable.choose(INT8).tiles().key(), all.get(0));
    }
}
