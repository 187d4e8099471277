package dev.sagejit.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import dev.sagejit.runtime.KernelArgs.Kind;
import java.util.List;
import org.junit.jupiter.api.Test;

class KernelArgsTest {

    @Test
    void keepsOrderKindsAndValues() {
        KernelArgs a = KernelArgs.builder().ptr(0x7f00_0000_1000L).i32(-7).i64(1L << 40).f32(0.125f).ptr(0).build();
        assertEquals(5, a.count());
        assertEquals(List.of(Kind.PTR, Kind.I32, Kind.I64, Kind.F32, Kind.PTR),
                a.args().stream().map(KernelArgs.Arg::kind).toList());
        assertEquals(0x7f00_0000_1000L, a.args().get(0).bits());
        assertEquals(-7, (int) a.args().get(1).bits());
        assertEquals(1L << 40, a.args().get(2).bits());
        assertEquals(0.125f, Float.intBitsToFloat((int) a.args().get(3).bits()));
        assertEquals(0L, a.args().get(4).bits());
        assertNotNull(a.kernelParams());
        assertEquals("KernelArgs[ptr 0x7f0000001000, i32 -7, i64 1099511627776, f32 0.125, ptr 0x0]", a.toString());
    }

    @Test
    void negativeFloatBitsSurvive() {
        KernelArgs a = KernelArgs.builder().f32(-1.5f).build();
        assertEquals(-1.5f, Float.intBitsToFloat((int) a.args().get(0).bits()));
    }

    @Test
    void emptyArgsBuild() {
        assertEquals(0, KernelArgs.builder().build().count());
    }

    @Test
    void sizesMatchCTypes() {
        assertEquals(8, Kind.PTR.bytes());
        assertEquals(4, Kind.I32.bytes());
        assertEquals(8, Kind.I64.bytes());
        assertEquals(4, Kind.F32.bytes());
    }
}
