package dev.sagejit.tuner;

import dev.sagejit.bench.BenchCase;
import dev.sagejit.spec.KernelSpec;
import dev.sagejit.spec.TileConfig;
import java.util.Optional;

/**
 * What the {@link Tuner} asks of a GPU. Every method reports a failure by its result or by throwing
 * an exception whose message says what went wrong; the tuner records it against the candidate and
 * goes on.
 */
public interface Lab {
    /** The forward kernel spec a case runs with on this GPU. */
    KernelSpec spec(BenchCase c);

    /** Why a candidate cannot run this case (beyond {@code TileTable.whyInvalid}), if it cannot. */
    Optional<String> whyNot(BenchCase c, TileConfig tiles);

    /** Compiles a candidate (CPU only; called from several threads at once) and returns its spill bytes. */
    int compile(KernelSpec spec, TileConfig tiles);

    /** Runs a candidate on a small problem of the case's spec; empty when it matches the FP64 reference. */
    Optional<String> check(BenchCase c, TileConfig tiles);

    /** Times a candidate on the case: median and spread of CUDA-event timings, milliseconds. */
    Timing time(BenchCase c, TileConfig tiles, double minTotalMs);

    /** A timing: median and the 20th/80th percentiles, milliseconds. */
    record Timing(double medianMs, double p20Ms, double p80Ms) {
        public Timing {
            if (!(medianMs > 0) || Double.isInfinite(medianMs)) {
                throw new IllegalArgumentException("a timing's median must be a finite time > 0 ms, got " + medianMs);
            }
        }
    }
}
