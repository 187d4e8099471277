package dev.sagejit.kernel;

import dev.sagejit.runtime.LoadedModule;
import java.util.ArrayList;
import java.util.List;

/**
 * The phase timeline of an int8-fp8 wgmma kernel built with {@link FwdKernelPlan#timelineBlocks}: lane 0
 * of each consumer warpgroup's first warp writes clock64 at fixed steps of its block's first tile, one
 * row of {@link #STAMPS} words per key block, into the module's {@code sage_timeline} array
 * ([CTA][consumer][key block][stamp]); the first block's row also holds the SM id and %globaltimer, so
 * blocks that share an SM can be lined up. clock64 counts SM cycles and is comparable only within one SM.
 */
public final class Timeline {
    /** Words per key block: the stamps named by {@link #STEPS}, then the SM id and the global timer. */
    public static final int STAMPS = 8;
    /** Blocks (CTAs) the array has room for; blocks beyond it record nothing. */
    public static final int MAX_CTAS = 1024;
    /** The stamped steps of one key block of the steady loop, in order. */
    public static final List<String> STEPS = List.of("top", "operands_ready", "mma_issued", "qk_done", "pv_done",
            "block_end");
    /** The module global the kernel writes. */
    public static final String GLOBAL = "sage_timeline";

    private Timeline() {
    }

    /** One key block of one consumer warpgroup: clock64 at each of {@link #STEPS}. */
    public record Row(int cta, int consumer, int block, int smid, long globalNs, long[] clocks) {
    }

    /** Reads the rows a launch of {@code plan} wrote (blocks that recorded nothing are left out). */
    static List<Row> read(LoadedModule module, FwdKernelPlan plan) {
        int consumers = plan.tiles().consumerWarpgroups();
        int blocks = plan.timelineBlocks();
        int[] halves = new int[2 * MAX_CTAS * consumers * blocks * STAMPS];
        module.global(GLOBAL).copyToHost(halves);
        long[] words = new long[halves.length / 2];
        for (int i = 0; i < words.length; i++) {  // little-endian 64-bit words
            words[i] = (halves[2 * i] & 0xffffffffL) | ((long) halves[2 * i + 1] << 32);
        }
        var rows = new ArrayList<Row>();
        for (int cta = 0; cta < MAX_CTAS; cta++) {
            for (int c = 0; c < consumers; c++) {
                int base0 = ((cta * consumers + c) * blocks) * STAMPS;
                int smid = (int) words[base0 + STEPS.size()];
                long globalNs = words[base0 + STEPS.size() + 1];
                for (int b = 0; b < blocks; b++) {
                    int base = base0 + b * STAMPS;
                    long[] clocks = java.util.Arrays.copyOfRange(words, base, base + STEPS.size());
                    if (clocks[0] != 0) {
                        rows.add(new Row(cta, c, b, smid, globalNs, clocks));
                    }
                }
            }
        }
        return rows;
    }
}
