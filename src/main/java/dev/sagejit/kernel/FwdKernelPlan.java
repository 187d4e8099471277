package dev.sagejit.kernel;

import dev.sagejit.spec.Int8Fp8Layout;
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
 * @param timelineBlocks 0; n > 0 builds the int8-fp8 wgmma kernel with a phase timeline: each consumer
 *              warpgroup's first warp stamps clock64 at the steps of its first tile's first n key
 *              blocks ({@link Timeline}), a diagnostic for people who tune the kernel
 */
public record FwdKernelPlan(KernelSpec spec, TileConfig tiles, int timelineBlocks) {
    /** Template of the mma.sync kernel family (every arch). */
    public static final String TEMPLATE_MMA = "attn/fwd/flash_fwd_mma.ftl";
    /** Template of the wgmma + TMA kernel family (sm_90a). */
    public static final String TEMPLATE_WGMMA = "attn/fwd/flash_fwd_wgmma.ftl";
    /** Template of the INT8/FP8 (SageAttention2) mma.sync kernel family (sm_89, sm_120a, sm_90a). */
    public static final String TEMPLATE_SAGE2_MMA = "attn/fwd/sage2_fwd_mma.ftl";
    /** Template of the INT8/FP8 (SageAttention2) wgmma + TMA kernel family (sm_90a). */
    public static final String TEMPLATE_SAGE2_WGMMA = "attn/fwd/sage2_fwd_wgmma.ftl";

    public FwdKernelPlan {
        TileTable.whyInvalid(spec, tiles).ifPresent(why -> {
            throw new IllegalArgumentException("tile config " + tiles.key() + " cannot run " + spec.key() + ": " + why);
        });
        if (timelineBlocks < 0 || (timelineBlocks > 0 && !persistent(spec, tiles))) {
            throw new IllegalArgumentException("a phase timeline (" + timelineBlocks + " blocks) exists for the int8-fp8"
                    + " wgmma kernel only, not " + spec.key(tiles));
        }
    }

    /** A plan without the phase timeline. */
    public FwdKernelPlan(KernelSpec spec, TileConfig tiles) {
        this(spec, tiles, 0);
    }

    /** This plan with a phase timeline over the first {@code blocks} key blocks (0: none). */
    public FwdKernelPlan withTimeline(int blocks) {
        return new FwdKernelPlan(spec, tiles, blocks);
    }

    /** The plan with the default tiles of {@link TileTable}. */
    public static FwdKernelPlan ofDefault(KernelSpec spec) {
        return new FwdKernelPlan(spec, TileTable.choose(spec).tiles());
    }

    /** The template this plan renders, decided by the tile config's engine. */
    public String template() {
        if (tiles.engine() == TileConfig.Engine.MMA_SYNC) {
            return spec.precision().quantized() ? TEMPLATE_SAGE2_MMA : TEMPLATE_MMA;
        }
        return spec.precision().quantized() ? TEMPLATE_SAGE2_WGMMA : TEMPLATE_WGMMA;
    }

    /**
     * Whether the kernel is persistent (one block per SM walking a tile list; the int8-fp8 wgmma
     * kernel): its grid comes from {@link #persistentGrid}, not {@link #grid}.
     */
    public boolean persistent() {
        return persistent(spec, tiles);
    }

    static boolean persistent(KernelSpec spec, TileConfig tiles) {
        return tiles.engine() == TileConfig.Engine.WGMMA && spec.precision().quantized();
    }

    /**
     * Launch grid of a persistent kernel: {@link #minBlocksPerSm()} blocks per SM, or one per tile
     * if there are fewer.
     */
    public int[] persistentGrid(int batch, int heads, int nq, int smCount) {
        long tiles = (long) ((nq + tiles().blockM() - 1) / tiles().blockM()) * heads * batch;
        return new int[] {(int) Math.max(1, Math.min(tiles, (long) smCount * minBlocksPerSm())), 1, 1};
    }

    /**
     * Whether two blocks of this persistent kernel share an SM ({@link TileTable#coResident}): a
     * single consumer warpgroup per block (BLOCK_M 64, SageAttention2's sm90 shape) leaves the SM's
     * other half to a second block, whose softmax then overlaps this one's MMAs without a pingpong
     * barrier. Measured on the H200 (benchmarks/results/2026-11-30-h200-tune-modes.jsonl): +1-5% over
     * one block of two consumer warpgroups at N 4096.
     */
    public boolean coResident() {
        return TileTable.coResident(spec, tiles);
    }

    /** Whether the kernel takes TMA tensor maps for Q, K and V instead of pointers and strides. */
    public boolean usesTensorMaps() {
        return tiles.engine() == TileConfig.Engine.WGMMA;
    }

    /**
     * Whether the kernel loads the caller's Q, K, V themselves through TMA (so their addresses and
     * strides must suit a tensor map); the int8-fp8 kernels load sagejit's quantized copies instead.
     */
    public boolean loadsInputsThroughTma() {
        return usesTensorMaps() && !spec.precision().quantized();
    }

    /** The extern "C" name of the kernel: the readable spec key with its tiles. */
    public String entry() {
        return "sagejit_" + key();
    }

    public String key() {
        return spec.key(tiles) + (timelineBlocks > 0 ? "_timeline" + timelineBlocks : "");
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
        if (tiles.engine() == TileConfig.Engine.WGMMA) {
            return coResident() ? TileTable.CO_RESIDENT_BLOCKS : 1;
        }
        int bySmem = Math.max(1, spec.arch().smemPerSm() / (sharedBytes() + TileTable.SMEM_RESERVED_PER_BLOCK));
        return tiles.warps() >= 8 ? 1 : Math.min(2, bySmem);
    }

    /** Launch grid: query blocks x query heads x batch. */
    public int[] grid(int batch, int heads, int nq) {
        return new int[] {(nq + tiles.blockM() - 1) / tiles.blockM(), heads, batch};
    }

    /** The template model: numbers and booleans only, named as the template uses them. */
    public Map<String, Object> templateModel() {
        var m = new LinkedHashMap<String, Object>();
        m.put("specKey", key());
        m.put("entry", entry());
        m.put("elemPtx", spec.elementType().ptxName());
        m.put("blockM", tiles.blockM());
        m.put("blockN", tiles.blockN());
        m.put("threads", threads());
        m.put("warpRows", tiles.warpRows());
        m.put("warpRowTiles", tiles.warpRowTiles());
        m.put("keyTiles", tiles.blockN() / 8);
        m.putAll(tileModel(spec.headDim(), spec.elementType().bytes()));
        m.put("qTileBytes", TileTable.qTileBytes(spec, tiles));
        m.put("kvTileBytes", TileTable.kvTileBytes(spec, tiles));
        m.put("vStageBytes", TileTable.vStageBytes(spec, tiles));
        m.put("vTileBytes", TileTable.kvTileBytes(spec, tiles));
        m.put("qInRegisters", qInRegisters());
        m.put("minBlocksPerSm", minBlocksPerSm());
        m.put("causal", spec.causal());
        m.put("lse", spec.lse());
        if (spec.precision().quantized()) {
            m.putAll(Sage2QuantPlan.layoutModel());
            m.put("speculativeSoftmax", speculativeSoftmax());
            // e.g. "7.0": the template appends f, and a C++ float literal needs the point
            m.put("softmaxHeadroom", Float.toString(speculativeSoftmax() ? Int8Fp8Layout.SOFTMAX_HEADROOM_LOG2 : 0f));
        }
        m.put("headDim", spec.headDim());
        if (tiles.engine() == TileConfig.Engine.WGMMA) {
            m.putAll(wgmmaModel());
        }
        return m;
    }

    /**
     * The numbers of the 16-bit tile fragments (smem_tile.ftl, warp_gemm_mma.ftl) for rows of
     * {@code headDim} elements of {@code elementBytes}: row bytes and 16-byte chunks, n8 and k16 tiles.
     */
    static Map<String, Object> tileModel(int headDim, int elementBytes) {
        int rowBytes = headDim * elementBytes;
        var m = new LinkedHashMap<String, Object>();
        m.put("rowBytes", rowBytes);
        m.put("rowChunks", rowBytes / 16);
        m.put("headDimTiles", headDim / 8);
        m.put("headDimSteps", headDim / 16);
        return m;
    }

    /** Widest swizzled row: TMA boxes and wgmma descriptors use at most the 128-byte swizzle. */
    public static final int SWIZZLE_ROW_BYTES = 128;

    /**
     * Bytes of one swizzled Q/K row in shared memory: the head dim's bytes up to 128; wider rows are
     * split into column blocks of [rows][128 B], one TMA box each.
     */
    public int qkRowBytes() {
        return Math.min(SWIZZLE_ROW_BYTES, spec.headDim() * spec.operandBytes());
    }

    /** Bytes of one swizzled V row in shared memory: a BLOCK_N-byte row of 8-bit V^T, else like K. */
    public int vRowBytes() {
        return spec.precision().quantized() ? tiles.blockN() : qkRowBytes();
    }

    /**
     * Whether the int8-fp8 wgmma kernel's two consumer warpgroups take turns issuing their MMAs
     * (FlashAttention-3's pingpong). Measured on the H200 (benchmarks/results, run of 14:04):
     * non-causal D64 +9-15%, D128 +0-2%; causal 8-13% slower (its short tiles turn the strict
     * alternation into waiting), so causal kernels run without it.
     */
    public boolean pingpong() {
        return spec.precision().quantized() && tiles.engine() == TileConfig.Engine.WGMMA
                && pingpong(tiles.consumerWarpgroups(), spec.causal());
    }

    /** The pingpong rule for any kernel on wgmma_schedule.ftl's turns: two consumer warpgroups, no mask. */
    static boolean pingpong(int consumerWarpgroups, boolean causal) {
        return consumerWarpgroups == 2 && !causal;
    }

    /**
     * Whether the int8-fp8 wgmma kernel's steady key blocks take their softmax speculatively: P~ against
     * the running base, which may lag the row maximum by {@link Int8Fp8Layout#SOFTMAX_HEADROOM_LOG2},
     * packed into FP8 without exchanging maxima between lanes first; a warp redoes a block exactly only
     * when a row rose past the headroom. It takes the max reduction, its shuffles and O's rescale off
     * the path from Q K^T to the exponentials. {@link TileTable#speculativeSoftmax} says where it pays.
     */
    public boolean speculativeSoftmax() {
        return persistent() && TileTable.speculativeSoftmax(spec, tiles);
    }

    /** Head-dim elements of one Q/K column block (the TMA box's inner size). */
    public int columnBlockElements() {
        return qkRowBytes() / spec.operandBytes();
    }

    private Map<String, Object> wgmmaModel() {
        int ob = spec.operandBytes();
        int k = WgmmaShape.K_BYTES / ob; // wgmma K per instruction: 32 bytes of each operand row
        boolean q8 = spec.precision().quantized();
        String elem = spec.elementType().ptxName();
        var qk = q8
                ? WgmmaShape.int8("sage_wgmma_qk", "S = Q K^T in INT8: A (Q) and B (K) K-major from shared memory",
                        tiles.blockN(), false)
                : WgmmaShape.sixteenBit("sage_wgmma_qk", "S = Q K^T: A (Q) and B (K) K-major from shared memory",
                        tiles.blockN(), elem, false, false);
        var pv = q8
                ? new WgmmaShape("sage_wgmma_pv", "PV in FP8 with V's ones columns (P's row sums): A (P) from registers,"
                        + " B (V^T) K-major from shared memory", spec.headDim() + Int8Fp8Layout.ROW_SUM_COLUMNS, k, "f32",
                        "e4m3", "e4m3", true, ", 1, 1", "float")
                : WgmmaShape.sixteenBit("sage_wgmma_pv",
                        "O += P V: A (P) from registers, B (V) MN-major (transposed) from shared memory",
                        spec.headDim(), elem, true, true);
        var m = new LinkedHashMap<String, Object>();
        m.put("headDim", spec.headDim());
        m.put("stages", tiles.stages());
        m.put("consumerWarpgroups", tiles.consumerWarpgroups());
        m.put("qkSteps", spec.headDim() / k);
        m.put("pvSteps", tiles.blockN() / k);
        m.put("qkRowBytes", qkRowBytes());
        m.put("qkColBlocks", spec.headDim() * ob / qkRowBytes());
        m.put("qkColBlockElems", columnBlockElements());
        m.put("stepsPerRow", qkRowBytes() / 32);
        m.put("stepBytes", 32);
        m.put("vTransposed", q8);
        m.put("onesRows", q8);
        m.put("qSlots", persistent() ? TileTable.persistentQSlots(spec, tiles) : 1);
        m.put("vRowBytes", vRowBytes());
        m.put("swizzleAlign", TileTable.SWIZZLE_ALIGN);
        m.put("mbarSuspendNs", TileTable.MBAR_SUSPEND_NS);
        m.put("setMaxRegisters", tiles.consumerWarpgroups() == 2 || coResident());
        m.put("pingpong", pingpong());
        m.put("timelineBlocks", timelineBlocks);
        m.put("timelineStamps", Timeline.STAMPS);
        m.put("timelineMaxCtas", Timeline.MAX_CTAS);
        m.put("producerRegisters", TileTable.WGMMA_PRODUCER_REGS);
        m.put("consumerRegisters", TileTable.consumerRegisters(spec.arch(), tiles, minBlocksPerSm()));
        m.put("wgmmaShapes", java.util.List.of(qk.model(), pv.model()));
        m.put("qkWgmma", qk.name());
        m.put("pvWgmma", pv.name());
        return m;
    }
}
