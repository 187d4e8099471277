package dev.sagejit.spec;

/**
 * How a forward kernel tiles its work: which tensor-core engine it is built on, BLOCK_M query rows
 * per block, BLOCK_N keys per step, consumer warps per block, and the depth of the K/V shared-memory
 * pipeline. Validated on construction.
 *
 * <p>Two engines exist. {@link Engine#MMA_SYNC}: every warp loads (cp.async) and computes with
 * mma.sync; each warp owns {@code blockM / warps} rows (16 or 32). {@link Engine#WGMMA} (sm_90a):
 * one producer warpgroup issues TMA loads while {@code warps / 4} consumer warpgroups compute with
 * wgmma, each owning 64 query rows, so {@code warps = blockM / 16}; the producer's 4 warps come on top.
 *
 * @param engine tensor-core engine (decides the kernel template)
 * @param blockM query rows per thread block
 * @param blockN keys per main-loop step
 * @param warps  consumer warps per block
 * @param stages K/V tiles in flight in shared memory (1 = load then compute, 2 = double buffered, ...)
 */
public record TileConfig(Engine engine, int blockM, int blockN, int warps, int stages) {
    /** The tensor-core instruction family a kernel is built on. */
    public enum Engine {
        /** mma.sync m16n8k16 per warp, cp.async loads by all warps (sm_80+). */
        MMA_SYNC(""),
        /** wgmma per warpgroup, TMA loads by a producer warpgroup, mbarrier pipeline (sm_90a). */
        WGMMA("wg");

        private final String prefix;

        Engine(String prefix) {
            this.prefix = prefix;
        }

        /** Prefix of tile keys built on this engine ({@code wg} for wgmma, none for mma.sync). */
        public String prefix() {
            return prefix;
        }
    }

    /** Rows of one wgmma warpgroup tile (m64nNk16). */
    public static final int WGMMA_ROWS = 64;

    public TileConfig {
        java.util.Objects.requireNonNull(engine, "engine");
        require(blockM == 64 || blockM == 128 || blockM == 256, "blockM must be 64, 128 or 256, got " + blockM);
        require(blockN == 32 || blockN == 64 || blockN == 128, "blockN must be 32, 64 or 128, got " + blockN);
        require(stages >= 1 && stages <= 4, "stages must be 1 to 4, got " + stages);
        if (engine == Engine.MMA_SYNC) {
            require(warps == 2 || warps == 4 || warps == 8, "warps must be 2, 4 or 8, got " + warps);
            require(blockM % (16 * warps) == 0, "blockM " + blockM + " must be a multiple of 16 * warps (" + 16 * warps + ")");
            require(blockM / warps <= 32, "each warp may own at most 32 query rows; blockM / warps = " + blockM / warps);
        } else {
            require(blockM <= 128, "wgmma kernels have at most 2 consumer warpgroups (blockM 64 or 128), got blockM " + blockM);
            require(warps == blockM / 16, "a wgmma warpgroup owns 64 rows, so warps must be blockM / 16 = "
                    + blockM / 16 + ", got " + warps);
            require(blockN >= 64, "wgmma kernels load K/V in boxes of at least 64 keys; blockN " + blockN);
        }
    }

    /** An mma.sync tile config (the engine of every arch). */
    public TileConfig(int blockM, int blockN, int warps, int stages) {
        this(Engine.MMA_SYNC, blockM, blockN, warps, stages);
    }

    /** A wgmma tile config: {@code blockM / 64} consumer warpgroups plus the producer warpgroup. */
    public static TileConfig wgmma(int blockM, int blockN, int stages) {
        return new TileConfig(Engine.WGMMA, blockM, blockN, blockM / 16, stages);
    }

    private static void require(boolean ok, String message) {
        if (!ok) {
            throw new IllegalArgumentException("invalid tile config: " + message);
        }
    }

    /** Query rows one consumer warp owns. */
    public int warpRows() {
        return blockM / warps;
    }

    /** 16-row MMA tiles one consumer warp owns. */
    public int warpRowTiles() {
        return warpRows() / 16;
    }

    /** Consumer warpgroups of a wgmma kernel (0 for mma.sync). */
    public int consumerWarpgroups() {
        return engine == Engine.WGMMA ? blockM / WGMMA_ROWS : 0;
    }

    /** Threads per block: the consumer warps, plus the producer warpgroup of a wgmma kernel. */
    public int threads() {
        return (warps + (engine == Engine.WGMMA ? 4 : 0)) * 32;
    }

    /** Readable id, e.g. {@code m128n64w4s2} (mma.sync) or {@code wgm128n128w8s2} (wgmma). */
    public String key() {
        return engine.prefix() + "m" + blockM + "n" + blockN + "w" + warps + "s" + stages;
    }

    /** Parses {@link #key()}. */
    public static TileConfig parse(String key) {
        var m = java.util.regex.Pattern.compile("(wg)?m(\\d+)n(\\d+)w(\\d+)s(\\d+)").matcher(key.trim());
        if (!m.matches()) {
            throw new IllegalArgumentException("tile config '" + key
                    + "' is not of the form m128n64w4s2 (mma.sync) or wgm128n128w8s2 (wgmma)");
        }
        Engine engine = m.group(1) == null ? Engine.MMA_SYNC : Engine.WGMMA;
        return new TileConfig(engine, Integer.parseInt(m.group(2)), Integer.parseInt(m.group(3)),
                Integer.parseInt(m.group(4)), Integer.parseInt(m.group(5)));
    }
}
