package dev.sagejit.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.sagejit.api.SageException;
import dev.sagejit.runtime.EventTimer.Timing;
import org.junit.jupiter.api.Test;

class TimingTest {

    @Test
    void statisticsOfUnsortedSamples() {
        Timing t = Timing.of(new double[] {5, 1, 4, 2, 3});
        assertEquals(3.0, t.medianMs(), 1e-12);
        assertEquals(1.8, t.p20Ms(), 1e-12);
        assertEquals(4.2, t.p80Ms(), 1e-12);
        assertEquals(1.0, t.minMs(), 1e-12);
        assertEquals(5, t.iters());
    }

    @Test
    void evenCountMedianAveragesTheMiddle() {
        assertEquals(2.5, Timing.of(new double[] {4, 1, 3, 2}).medianMs(), 1e-12);
    }

    @Test
    void singleSample() {
        Timing t = Timing.of(new double[] {0.7});
        assertEquals(0.7, t.medianMs());
        assertEquals(0.7, t.p20Ms());
        assertEquals(0.7, t.p80Ms());
    }

    @Test
    void noSamplesIsAnError() {
        assertThrows(SageException.InvalidInput.class, () -> Timing.of(new double[0]));
    }
}
