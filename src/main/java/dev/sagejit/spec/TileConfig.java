package dev.sagejit.spec;

/**
 * How a forward kernel tiles its work: BLOCK_M query rows per block, BLOCK_N keys per step, warps per
 * block, and the depth of the K/V shared-memory pipeline. Validated on construction.
 *
 * @param blockM query rows per thread block
 * @param blockN keys per main-loop step
 * @param warps  warps per block; each owns blockM / warps query rows (a multiple of 16)
 * @param stages K/V tiles in flight in shared memory (1 = load then compute, 2 = double buffered)
 */
public record TileConfig(int blockM, int blockN, int warps, int stages) {

    public TileConfig {
        require(blockM == 64 || blockM == 128 || blockM == 256, "blockM must be 64, 128 or 256, got " + blockM);
        require(blockN == 32 || blockN == 64 || blockN == 128, "blockN must be 32, 64 or 128, got " + blockN);
        require(warps == 2 || warps == 4 || warps == 8, "warps must be 2, 4 or 8, got " + warps);
        require(blockM % (16 * warps) == 0, "blockM " + blockM + " must be a multiple of 16 * warps (" + 16 * warps + ")");
        require(blockM / warps <= 32, "each warp may own at most 32 query rows; blockM / warps = " + blockM / warps);
        require(stages == 1 || stages == 2 || stages == 3, "stages must be 1, 2 or 3, got " + stages);
    }

    private static void require(boolean ok, String message) {
        if (!ok) {
            throw new IllegalArgumentException("invalid tile config: " + message);
        }
    }

    /** Query rows one warp owns. */
    public int warpRows() {
        return blockM / warps;
    }

    /** 16-row MMA tiles one warp owns. */
    public int warpRowTiles() {
        return warpRows() / 16;
    }

    public int threads() {
        return warps * 32;
    }

    /** Readable id, e.g. {@code m128n64w4s2}. */
    public String key() {
        return "m" + blockM + "n" + blockN + "w" + warps + "s" + stages;
    }

    /** Parses {@link #key()}. */
    public static TileConfig parse(String key) {
        var m = java.util.regex.Pattern.compile("m(\\d+)n(\\d+)w(\\d+)s(\\d+)").matcher(key.trim());
        if (!m.matches()) {
            throw new IllegalArgumentException("tile config '" + key + "' is not of the form m128n64w4s2");
        }
        return new TileConfig(Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2)),
                Integer.parseInt(m.group(3)), Integer.parseInt(m.group(4)));
    }
}
