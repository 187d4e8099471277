package dev.sagejit.kernel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import dev.sagejit.api.Precision;
import dev.sagejit.spec.Arch;
import dev.sagejit.spec.Direction;
import dev.sagejit.spec.KernelSpec;
import dev.sagejit.spec.TileConfig;
import dev.sagejit.spec.TileTable;
import dev.sagejit.tune.DeviceFingerprint;
import dev.sagejit.tune.ShapeBucket;
import dev.sagejit.tune.TunedConfig;
import dev.sagejit.tune.TuningDatabase;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The launcher's tile choice consults the tuning database; needs no GPU. */
class TunedTilesTest {
    @TempDir
    Path dir;

    private final KernelSpec spec = new KernelSpec(Direction.FWD, Arch.SM90A, Precision.INT8_FP8, 128, false, false);
    private final String bucket = ShapeBucket.keyOf(4, 32, 4096, 4096);
    private final DeviceFingerprint h200 = DeviceFingerprint.current("NVIDIA H200", "sm90a", 132, 13000, "13.0");

    @Test
    void aTunedRecordChangesTheChosenTiles() {
        var db = new TuningDatabase(dir, h200);
        TileConfig def = TileTable.choose(spec).tiles();
        assertEquals(def, FwdLauncher.chooseTiles(spec, 4096, bucket, db), "no record: the default");
        TileConfig tuned = TileConfig.wgmma(128, 64, 3);
        assertNotEquals(def, tuned);
        db.record(new TunedConfig(spec.key(), bucket, tuned.key(), 1.5, 700, "2026-11-30T12:00:00Z", "test"));
        assertEquals(tuned, FwdLauncher.chooseTiles(spec, 4096, bucket, new TuningDatabase(dir, h200)));
        assertEquals(def, FwdLauncher.chooseTiles(spec, 256, ShapeBucket.keyOf(1, 8, 256, 256), db), "other bucket");
        assertEquals(def, FwdLauncher.chooseTiles(spec, 4096, bucket, null), "no database");
    }

    @Test
    void aTunedRecordThatNoLongerFitsTheSpecIsIgnored() {
        var db = new TuningDatabase(dir, h200);
        // An mma.sync config with 32-row warps cannot run the int8-fp8 kernels: the default wins.
        db.record(new TunedConfig(spec.key(), bucket, new TileConfig(256, 64, 8, 2).key(), 1.0, 900,
                "2026-11-30T12:00:00Z", "test"));
        assertEquals(TileTable.choose(spec).tiles(), FwdLauncher.chooseTiles(spec, 4096, bucket, db));
    }
}
