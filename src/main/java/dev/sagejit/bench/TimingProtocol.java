package dev.sagejit.bench;

import java.util.Map;

/**
 * How every case of a benchmark is timed, sagejit's and the peers' alike (benchmarks/peers.py takes the same
 * settings, so lines of one run compare only under one protocol; shared/RESULTS.md's {@code protocol} field).
 * Under the H200's power cap the clock follows the power drawn, so what runs between timed calls moves the
 * figures: an idle gap before each call lets the clock rise for it, more for some kernels than for others
 * (docs/perf-notes-int8fp8.md, session 14).
 *
 * @param warmupMs   untimed launches for this long before timing (the clock dips after idle)
 * @param cooldownMs idle time before each case, so every case starts from a rested GPU
 * @param gapUs      an idle gap of this many microseconds before each timed launch (0: none);
 *                   peers.py --sleep-every 1 gives SDPA's calls the like
 * @param flushBytes a memset of this many bytes before each timed launch (0: none): triton.testing.do_bench's
 *                   cache clear (256 MiB), which peers.py --do-bench times SDPA with
 */
public record TimingProtocol(double warmupMs, double cooldownMs, double gapUs, long flushBytes) {
    /**
     * The idle gap that matches peers.py --sleep-every 1: torch.cuda._sleep(200000) spins 200000 cycles, about
     * 110 us at the 1.7-1.9 GHz an H200 runs under load.
     */
    public static final double PEER_SLEEP_GAP_US = 110;

    /** triton.testing.do_bench's cache-clearing buffer. */
    public static final long DO_BENCH_FLUSH_BYTES = 256L << 20;

    public TimingProtocol {
        if (!(warmupMs >= 0) || !(cooldownMs >= 0) || !(gapUs >= 0) || flushBytes < 0) {
            throw new IllegalArgumentException("warm-up, cool-down, gap and flush must be >= 0, got " + warmupMs + " ms, "
                    + cooldownMs + " ms, " + gapUs + " us and " + flushBytes + " bytes");
        }
        if (gapUs > 0 && flushBytes > 0) {
            throw new IllegalArgumentException("choose an idle gap or an L2 flush between timed launches, not both");
        }
    }

    /** Launches back to back after {@code warmupMs} of warm-up, no cool-down. */
    public static TimingProtocol backToBack(double warmupMs) {
        return new TimingProtocol(warmupMs, 0, 0, 0);
    }

    /**
     * The {@code protocol} label of a results line: {@code back-to-back}, {@code gap} (an idle gap before each
     * timed call) or {@code do_bench} (a cache-clearing memset before each, as triton.testing.do_bench).
     */
    public String label() {
        return gapUs > 0 ? "gap" : flushBytes > 0 ? "do_bench" : "back-to-back";
    }

    /** The results-line fields of this protocol (shared/RESULTS.md). */
    void addTo(Map<String, Object> line) {
        line.put("protocol", label());
        if (warmupMs > 0) {
            line.put("warmup_ms", warmupMs);
        }
        if (cooldownMs > 0) {
            line.put("cooldown_ms", cooldownMs);
        }
        if (gapUs > 0) {
            line.put("gap_us", gapUs);
        }
        if (flushBytes > 0) {
            line.put("flush_mib", flushBytes / (double) (1 << 20));
        }
    }
}
