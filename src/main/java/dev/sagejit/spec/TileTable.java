package dev.sagejit.spec;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The one place where tile sizes are chosen (tuned records from the tuning database may override a
 * choice; nothing else may). Each default comes with the reason for it, and {@link #candidates}
 * declares the space the autotuner searches.
 */
public final class TileTable {
    /** A default choice and why it was made. */
    public record Choice(TileConfig tiles, String reason) {
    }

    /** K/V pipeline depth the forward kernel is built for: K[j+1] and V[j+1] load during block j. */
    public static final int FWD_STAGES = 2;

    private TileTable() {
    }

    /** Key length from which the int8-fp8 wgmma default shares each K/V tile between two consumer warpgroups. */
    public static int longKeys(KernelSpec spec) {
        return spec.headDim() == 128 ? 8192 : 16384;
    }

    /**
     * The default tile config for a spec on problems of {@code keys} key tokens: {@link #choose(KernelSpec)},
     * except int8-fp8 on sm_90a from {@link #longKeys} on, where one block of two consumer warpgroups
     * (sharing every K/V tile) beats two co-resident single-warpgroup blocks (each streaming all of
     * K/V, twice the L2 traffic per query row).
     */
    public static Choice choose(KernelSpec spec, int keys) {
        if (spec.precision().quantized() && spec.arch().has(MmaKind.WGMMA) && keys >= longKeys(spec)) {
            return new Choice(TileConfig.wgmma(128, 128, 3), "int8-fp8 on sm_90a with at least " + longKeys(spec)
                    + " keys: one block of two consumer warpgroups sharing each K/V tile, 3 stages. sagejit tune on"
                    + " the H200 picked it from 8K keys for d128 (+2.5-12% over co-resident blocks, most for causal)"
                    + " and from 16K for d64 (+1-3%) (benchmarks/results/2026-11-30-h200-nvfp4-int8-tune.jsonl)");
        }
        return choose(spec);
    }

    /** The default tile config for a spec on sequences of up to a few thousand keys. */
    public static Choice choose(KernelSpec spec) {
        if (spec.precision().quantized() && !spec.arch().has(MmaKind.WGMMA)) {
            return new Choice(new TileConfig(64, 64, 4, FWD_STAGES),
                    "int8-fp8 with mma.sync m16n8k32 (sm_89/sm_120a): 4 warps of 16 query rows, so S, O and the"
                            + " fresh PV accumulator of two-level accumulation fit in registers; 40 KB shared memory."
                            + " Not tuned (no sm_89/sm_120a GPU here)");
        }
        if (spec.precision().quantized()) {
            // sagejit tune over both GPUs of an H200 host (benchmarks/results/2026-11-30-h200-tune-modes.jsonl).
            return new Choice(TileConfig.wgmma(64, 128, FWD_STAGES), "int8-fp8 on sm_90a: the BF16 kernel's TMA"
                    + " pipeline with 8-bit tiles, one consumer warpgroup of 64 query rows running one key block ahead"
                    + " (Q K^T and softmax of block j+1 overlap P V of block j), persistent over tiles, two blocks per"
                    + " SM (SageAttention2's sm90 shape). Fastest in sagejit tune on the H200 at N 4096 for d64 and"
                    + " d128, causal and not: +1.3-5.1% over one block of two consumer warpgroups"
                    + " (benchmarks/results/2026-11-30-h200-tune-modes.jsonl)");
        }
        if (spec.arch().has(MmaKind.WGMMA)) {
            String common = "sm_90a: wgmma with TMA loads; 2 consumer warpgroups of 64 query rows share each K/V"
                    + " tile while a producer warpgroup keeps the K/V stages in flight; BLOCK_N 128 gives each"
                    + " wgmma a 64x128 S tile. ";
            if (spec.headDim() == 128) {
                return new Choice(TileConfig.wgmma(128, 128, FWD_STAGES), common
                        + "d128: 2 stages (161 KB); fastest of 18 candidates on the H200 at N 4096, causal and not"
                        + " (572 / 501 TFLOPS; 3 stages 555 / 495; benchmarks/results/2026-11-30-h200-wgmma-tile-sweep.jsonl)");
            }
            return new Choice(TileConfig.wgmma(128, 128, 3), common
                    + "d64: 3 stages (113 KB); fastest of 20 candidates on the H200 at N 4096, causal and not"
                    + " (440 / 399 TFLOPS; 2 stages 409 / 374; benchmarks/results/2026-11-30-h200-wgmma-tile-sweep.jsonl)");
        }
        return chooseMmaSync(spec);
    }

    /**
     * The default mma.sync tile config: the choice on GPUs without wgmma, and the fallback on sm_90a
     * for inputs TMA cannot describe.
     */
    public static Choice chooseMmaSync(KernelSpec spec) {
        if (spec.headDim() == 128 && spec.arch().maxSmemPerBlock() >= 128 * 1024) {
            return new Choice(new TileConfig(256, 64, 8, FWD_STAGES),
                    "d128: 8 warps of 32 query rows reuse every K/V fragment twice (shared-memory bandwidth"
                            + " bounds mma.sync) and share each K/V tile 8 ways; BLOCK_N 64 keeps O (128 regs)"
                            + " + S (64 regs) under 255. Fastest of 10 candidates on the H200 at N 4096, causal"
                            + " and not (benchmarks/results/2026-11-30-h200-tile-sweep-1.jsonl)");
        }
        if (spec.headDim() == 128) {
            return new Choice(new TileConfig(128, 64, 4, FWD_STAGES),
                    "d128 on GPUs with about 100 KB of shared memory per block (sm_80/89/120a), where the 128 KB"
                            + " of m256n64w8 does not fit: FlashAttention-2's 128x64 tile with 4 warps (96 KB)");
        }
        return new Choice(new TileConfig(128, 64, 4, FWD_STAGES),
                "d64: 4 warps of 32 query rows; O and S take 128 registers and Q stays in registers;"
                        + " 48 KB shared memory. Fastest of 12 candidates on the H200 at N 4096, causal and not"
                        + " (benchmarks/results/2026-11-30-h200-tile-sweep-1.jsonl)");
    }

    /** Every tile config the autotuner may try for a spec, default first; all pass {@link #whyInvalid}. */
    public static List<TileConfig> candidates(KernelSpec spec) {
        var out = new ArrayList<TileConfig>();
        out.add(choose(spec).tiles());
        if (spec.arch().has(MmaKind.WGMMA)) {
            for (int blockM : new int[] {64, 128}) {
                for (int blockN : new int[] {64, 128}) {
                    for (int stages : new int[] {2, 3}) {
                        addIfValid(out, spec, TileConfig.wgmma(blockM, blockN, stages));
                    }
                }
            }
        }
        if (spec.precision().quantized()) {
            // The portable kernel: warps of 16 rows (its register budget), also tried on sm_90a.
            for (var t : List.of(new TileConfig(64, 64, 4, FWD_STAGES), new TileConfig(128, 64, 8, FWD_STAGES),
                    new TileConfig(64, 128, 4, FWD_STAGES))) {
                addIfValid(out, spec, t);
            }
            return List.copyOf(out);
        }
        for (int blockM : new int[] {64, 128, 256}) {
            for (int blockN : new int[] {32, 64, 128}) {
                for (int warps : new int[] {4, 8}) {
                    if (blockM % (16 * warps) == 0 && blockM / warps <= 32) {
                        addIfValid(out, spec, new TileConfig(blockM, blockN, warps, FWD_STAGES));
                    }
                }
            }
        }
        return List.copyOf(out);
    }

    private static void addIfValid(List<TileConfig> out, KernelSpec spec, TileConfig t) {
        if (!out.contains(t) && whyInvalid(spec, t).isEmpty()) {
            out.add(t);
        }
    }

    /**
     * Why a tile config cannot run a spec, or empty if it can: shared memory beyond the arch's
     * opt-in limit, tiles the cooperative loads cannot split evenly, or accumulators that cannot fit
     * in registers.
     */
    public static Optional<String> whyInvalid(KernelSpec spec, TileConfig t) {
        if (spec.precision().quantized() && t.engine() == TileConfig.Engine.MMA_SYNC) {
            return whyInvalidSage2MmaSync(spec, t);
        }
        if (spec.precision().quantized() && t.blockN() < 64) {
            return Optional.of(spec.precision().id() + " needs BLOCK_N 64 or 128 (V^T rows of one swizzled TMA box), not "
                    + t.blockN());
        }
        if (t.engine() == TileConfig.Engine.WGMMA) {
            return whyInvalidWgmma(spec, t);
        }
        if (t.stages() != FWD_STAGES) {
            return Optional.of("the forward kernel is built for " + FWD_STAGES + " K/V stages, not " + t.stages());
        }
        int smem = forwardSharedBytes(spec, t);
        if (smem > spec.arch().maxSmemPerBlock()) {
            return Optional.of("needs " + smem + " B shared memory; " + spec.arch().name() + " allows "
                    + spec.arch().maxSmemPerBlock());
        }
        int rowChunks = spec.headDim() * spec.elementType().bytes() / 16;
        if ((t.blockN() * rowChunks) % t.threads() != 0 || (t.blockM() * rowChunks) % t.threads() != 0) {
            return Optional.of("tiles of " + t.blockN() + " rows do not split evenly over " + t.threads() + " threads");
        }
        // FP32 accumulators per thread: O is warpRows x headDim, S is warpRows x blockN, over 32 lanes.
        int accRegs = t.warpRows() * (spec.headDim() + t.blockN()) / 32;
        if (accRegs > 192) {
            return Optional.of("accumulators need " + accRegs + " registers per thread (limit 192 of 255)");
        }
        return Optional.empty();
    }

    private static Optional<String> whyInvalidSage2MmaSync(KernelSpec spec, TileConfig t) {
        if (t.warpRows() != 16) {
            return Optional.of("the int8-fp8 mma.sync kernel gives each warp 16 query rows; blockM / warps = " + t.warpRows());
        }
        if (t.blockN() < 64 || t.stages() != FWD_STAGES) {
            return Optional.of("the int8-fp8 mma.sync kernel needs BLOCK_N 64 or 128 and " + FWD_STAGES + " stages");
        }
        int smem = forwardSharedBytes(spec, t);
        if (smem > spec.arch().maxSmemPerBlock()) {
            return Optional.of("needs " + smem + " B shared memory; " + spec.arch().name() + " allows "
                    + spec.arch().maxSmemPerBlock());
        }
        // Per thread of a 16-row warp tile: S as INT32 and as FP32 (blockN / 2 each), O and the block's PV
        // accumulator (headDim / 2 each).
        int regs = t.blockN() + spec.headDim();
        if (regs > 192) {
            return Optional.of("S, O and PV accumulators need " + regs + " registers per thread (limit 192 of 255)");
        }
        return Optional.empty();
    }

    private static Optional<String> whyInvalidWgmma(KernelSpec spec, TileConfig t) {
        if (!spec.arch().has(MmaKind.WGMMA)) {
            return Optional.of(spec.arch().name() + " has no wgmma (sm_90a only); use an mma.sync tile config");
        }
        if (t.stages() < 2 || t.stages() > 3) {
            return Optional.of("the wgmma kernel pipelines 2 or 3 K/V stages, not " + t.stages());
        }
        int smem = forwardSharedBytes(spec, t);
        if (smem > spec.arch().maxSmemPerBlock()) {
            return Optional.of("needs " + smem + " B shared memory; " + spec.arch().name() + " allows "
                    + spec.arch().maxSmemPerBlock());
        }
        // Accumulators of S (64 x blockN) and O (64 x headDim) plus the P fragments, over 128 threads;
        // int8-fp8 also holds each block's PV in a second FP32 accumulator (two-level accumulation).
        boolean q8 = spec.precision().quantized();
        int regs = t.blockN() / 2 + spec.headDim() / 2
                + (q8 ? spec.headDim() / 2 + t.blockN() / 8 + Int8Fp8Layout.ROW_SUM_COLUMNS : t.blockN() / 4);
        if (regs > WGMMA_CONSUMER_REGS - WGMMA_REG_MARGIN) {
            return Optional.of("S, O and P need " + regs + " registers per consumer thread (limit "
                    + (WGMMA_CONSUMER_REGS - WGMMA_REG_MARGIN) + " of " + WGMMA_CONSUMER_REGS + ")");
        }
        return Optional.empty();
    }

    /** Most registers per thread a wgmma consumer warpgroup raises itself to (setmaxnreg). */
    public static final int WGMMA_CONSUMER_REGS = 240;

    /**
     * Registers per thread a wgmma consumer warpgroup raises itself to (setmaxnreg): what the SM's
     * register file leaves to each consumer once {@code blocksPerSm} blocks and their producer
     * warpgroups (at {@link #WGMMA_PRODUCER_REGS}) are resident, in setmaxnreg's steps of 8, at most
     * {@link #WGMMA_CONSUMER_REGS}. One block of 2 consumers: 240; two blocks of 1 consumer: 232.
     */
    public static int consumerRegisters(Arch arch, TileConfig t, int blocksPerSm) {
        return consumerRegisters(arch, t.consumerWarpgroups(), blocksPerSm);
    }

    /** {@link #consumerRegisters(Arch, TileConfig, int)} for a block of {@code consumerWarpgroups}. */
    public static int consumerRegisters(Arch arch, int consumerWarpgroups, int blocksPerSm) {
        int perBlock = arch.regsPerSm() / blocksPerSm - 128 * WGMMA_PRODUCER_REGS;
        int perThread = perBlock / (128 * consumerWarpgroups) / 8 * 8;
        return Math.min(WGMMA_CONSUMER_REGS, perThread);
    }
    /** Registers a consumer thread keeps for addresses, scales and the running maxima beside the accumulators. */
    public static final int WGMMA_REG_MARGIN = 24;
    /** Registers per thread the wgmma producer warpgroup lowers itself to (setmaxnreg). */
    public static final int WGMMA_PRODUCER_REGS = 24;
    /**
     * Most nanoseconds a warp waiting on an mbarrier sleeps (mbarrier.try_wait's suspend-time hint)
     * before it looks again; it wakes as soon as the phase completes. Without a hint the producer
     * warp re-polled every few cycles: 19% of the int8-fp8 kernel's issued instructions (ncu, N 4096).
     */
    public static final int MBAR_SUSPEND_NS = 10_000_000;
    /** Alignment of every wgmma/TMA tile in shared memory: the repeat of the 128-byte swizzle. */
    public static final int SWIZZLE_ALIGN = 1024;
    /** Bytes of one mbarrier object in shared memory. */
    public static final int MBARRIER_BYTES = 8;
    /**
     * Bytes reserved for the mbarriers of the wgmma forward kernels ({@link #MBARRIER_BYTES} each: 4 for Q slots,
     * 4 per stage).
     */
    public static final int BARRIER_BYTES = 256;

    /**
     * Shared memory of the forward kernel: the Q tile plus {@code stages} K and V tiles; for wgmma
     * also the slack to align the tiles to {@link #SWIZZLE_ALIGN} and the mbarriers.
     */
    public static int forwardSharedBytes(KernelSpec spec, TileConfig t) {
        int outBytes = t.blockM() * spec.headDim() * spec.elementType().bytes();
        if (t.engine() == TileConfig.Engine.WGMMA && spec.precision().quantized()) {
            // Persistent: Q slots (a second one loads the next tile's Q early); O is written from registers.
            return persistentBytes(spec, t, persistentQSlots(spec, t));
        }
        int tiles = qTileBytes(spec, t) + 2 * t.stages() * kvTileBytes(spec, t);
        // The epilogue stages the 16-bit output block through the same shared memory.
        tiles = Math.max(tiles, outBytes);
        return t.engine() == TileConfig.Engine.WGMMA ? SWIZZLE_ALIGN + tiles + BARRIER_BYTES : tiles;
    }

    /** Blocks of the persistent int8-fp8 wgmma kernel that share an SM when {@link #coResident}. */
    public static final int CO_RESIDENT_BLOCKS = 2;

    /** Shared memory the driver reserves per resident block (sm_80 and later). */
    public static final int SMEM_RESERVED_PER_BLOCK = 1024;

    private static int persistentBytes(KernelSpec spec, TileConfig t, int qSlots) {
        return SWIZZLE_ALIGN + qSlots * qTileBytes(spec, t) + t.stages() * (kvTileBytes(spec, t) + vStageBytes(spec, t))
                + BARRIER_BYTES;
    }

    /**
     * Whether two blocks of the persistent int8-fp8 wgmma kernel fit on one SM: one consumer
     * warpgroup per block (BLOCK_M 64) and both blocks' shared memory within the SM's.
     */
    public static boolean coResident(KernelSpec spec, TileConfig t) {
        return t.engine() == TileConfig.Engine.WGMMA && spec.precision().quantized() && t.consumerWarpgroups() == 1
                && CO_RESIDENT_BLOCKS * (persistentBytes(spec, t, 1) + SMEM_RESERVED_PER_BLOCK) <= spec.arch().smemPerSm();
    }

    /**
     * Whether the persistent int8-fp8 wgmma kernel takes its steady softmax speculatively (P~ against
     * a base that may lag the row maximum, FwdKernelPlan.speculativeSoftmax): for d128 with co-resident
     * single-warpgroup blocks, where the H200 measured 845-856 TOPS against 784 at N 4096 (same run,
     * benchmarks/results/2026-12-01-h200-int8fp8-spec-headroom-ab.jsonl). d64 (510 vs 521) and the
     * two-warpgroup block (819 vs 847 at N 16K, d128) were slower with it, so they keep the exact step.
     */
    public static boolean speculativeSoftmax(KernelSpec spec, TileConfig t) {
        return spec.headDim() == 128 && coResident(spec, t);
    }

    /**
     * Q slots of the persistent int8-fp8 wgmma kernel: two, so the next tile's Q loads while the
     * consumers finish this one, unless only one lets two blocks share an SM (then the other block
     * hides that load).
     */
    public static int persistentQSlots(KernelSpec spec, TileConfig t) {
        if (coResident(spec, t)
                && CO_RESIDENT_BLOCKS * (persistentBytes(spec, t, 2) + SMEM_RESERVED_PER_BLOCK) > spec.arch().smemPerSm()) {
            return 1;
        }
        return 2;
    }

    /**
     * Shared memory of one V stage of the wgmma kernels: the V tile, and for int8-fp8 the
     * {@link Int8Fp8Layout#ROW_SUM_COLUMNS} rows of ones after V^T (P~'s row sums come out of the
     * P~ V MMA), padded to the swizzle repeat so every stage starts on one.
     */
    public static int vStageBytes(KernelSpec spec, TileConfig t) {
        if (!spec.precision().quantized() || t.engine() != TileConfig.Engine.WGMMA) {
            return kvTileBytes(spec, t);
        }
        int ones = Int8Fp8Layout.ROW_SUM_COLUMNS * t.blockN();
        return kvTileBytes(spec, t) + (ones + SWIZZLE_ALIGN - 1) / SWIZZLE_ALIGN * SWIZZLE_ALIGN;
    }

    /** Shared memory of one Q tile: BLOCK_M rows of the operand the kernel reads. */
    public static int qTileBytes(KernelSpec spec, TileConfig t) {
        return t.blockM() * spec.headDim() * spec.operandBytes();
    }

    /** Shared memory of one K (or V) tile: BLOCK_N rows (for 8-bit V^T, the same bytes transposed). */
    public static int kvTileBytes(KernelSpec spec, TileConfig t) {
        return t.blockN() * spec.headDim() * spec.operandBytes();
    }
}
