package dev.sagejit.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Each timing protocol names itself in the results line, with the settings that define it. */
class TimingProtocolTest {
    private static Map<String, Object> line(TimingProtocol p) {
        var m = new LinkedHashMap<String, Object>();
        p.addTo(m);
        return m;
    }

    @Test
    void labelsAndFields() {
        var b2b = line(TimingProtocol.backToBack(300));
        assertEquals("back-to-back", b2b.get("protocol"));
        assertEquals(300.0, b2b.get("warmup_ms"));
        assertFalse(b2b.containsKey("gap_us") || b2b.containsKey("flush_mib") || b2b.containsKey("cooldown_ms"));

        var gap = line(new TimingProtocol(500, 2000, 110, 0));
        assertEquals("gap", gap.get("protocol"));
        assertEquals(110.0, gap.get("gap_us"));
        assertEquals(2000.0, gap.get("cooldown_ms"));

        var doBench = line(new TimingProtocol(25, 0, 0, TimingProtocol.DO_BENCH_FLUSH_BYTES));
        assertEquals("do_bench", doBench.get("protocol"));
        assertEquals(256.0, doBench.get("flush_mib"));
    }

    @Test
    void refusesWhatCannotBeTimed() {
        var both = assertThrows(IllegalArgumentException.class, () -> new TimingProtocol(0, 0, 110, 1 << 20));
        assertEquals("choose an idle gap or an L2 flush between timed launches, not both", both.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new TimingProtocol(-1, 0, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> new TimingProtocol(0, Double.NaN, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> new TimingProtocol(0, 0, -5, 0));
    }
}
