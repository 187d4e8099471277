package dev.sagejit.kernel;

import dev.sagejit.api.DType;
import dev.sagejit.spec.KernelSpec;
import dev.sagejit.spec.TileConfig;
import dev.sagejit.spec.TileTable;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Everything derived from a forward spec and its tiles that the template, the compiler and the
 * launcher need: one place computes each number, the template only prints them.
 *
 * @param spec  the kernel spec
 * @param tiles its tile config (valid for the spec)
 */
public record FwdKernelPlan(KernelSpec spec, TileConfig tiles) {
    /** Template of this kernel family. */
    public static final String TEMPLATE = "attn/fwd/flash_fwd_mma.ftl";

    public FwdKernelPlan {
        TileTable.whyInvalid(spec, tiles).ifPresent(why -> {
            throw new IllegalArgumentException("tile config " + tiles.key() + " cannot run " + spec.key() + ": " + why);
        });
    }

    /** The plan with the default tiles of {@link TileTable}. */
    public static FwdKernelPlan ofDefault(KernelSpec spec) {
        return new FwdKernelPlan(spec, TileTable.choose(spec).tiles());
    }

    /** The extern "C" name of the kernel: the readable spec key with its tiles. */
    public String entry() {
        return "sagejit_" + spec.key(tiles);
    }

    public String key() {
        return spec.key(tiles);
    }

    public int threads() {
        return tiles.threads();
    }

    public int sharedBytes() {
        return TileTable.forwardSharedBytes(spec, tiles);
    }

    /**
     * Q fragments stay in registers for the whole key loop when they cost at most 32 registers
     * (16 rows x 128 or 32 rows x 64 of 16-bit values per warp); otherwise they are re-read from
     * shared memory at every key block to leave registers to the accumulators.
     */
    public boolean qInRegisters() {
        return tiles.warpRowTiles() * spec.headDim() <= 128;
    }

    /**
     * Blocks per SM promised to ptxas through __launch_bounds__, which caps registers per thread at
     * 65536 / (threads * blocks). Two blocks of 4 warps keep the cap at 255; blocks of 8 warps ask
     * for one so the accumulators are never squeezed into spills.
     */
    public int minBlocksPerSm() {
        int bySmem = Math.max(1, spec.arch().smemPerSm() / (sharedBytes() + 1024));
        return tiles.warps() >= 8 ? 1 : Math.min(2, bySmem);
    }

    /** Launch grid: query blocks x query heads x batch. */
    public int[] grid(int batch, int heads, int nq) {
        return new int[] {(nq + tiles.blockM() - 1) / tiles.blockM(), heads, batch};
    }

    /** The template model: numbers and booleans only, named as the template uses them. */
    public Map<String, Object> templateModel() {
        int rowBytes = spec.headDim() * spec.elementType().bytes();
        var m = new LinkedHashMap<String, Object>();
        m.put("specKey", key());
        m.put("entry", entry());
        m.put("elemPtx", spec.elementType() == DType.BF16 ? "bf16" : "f16");
        m.put("blockM", tiles.blockM());
        m.put("blockN", tiles.blockN());
        m.put("threads", threads());
        m.put("warpRows", tiles.warpRows());
        m.put("warpRowTiles", tiles.warpRowTiles());
        m.put("keyTiles", tiles.blockN() / 8);
        m.put("headDimTiles", spec.headDim() / 8);
        m.put("headDimSteps", spec.headDim() / 16);
        m.put("rowBytes", rowBytes);
        m.put("rowChunks", rowBytes / 16);
        m.put("qTileBytes", tiles.blockM() * rowBytes);
        m.put("kvTileBytes", tiles.blockN() * rowBytes);
        m.put("qInRegisters", qInRegisters());
        m.put("minBlocksPerSm", minBlocksPerSm());
        m.put("causal", spec.causal());
        m.put("lse", spec.lse());
        return m;
    }
}
