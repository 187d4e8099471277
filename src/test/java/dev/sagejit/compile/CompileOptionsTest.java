package dev.sagejit.compile;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.sagejit.spec.Arch;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class CompileOptionsTest {

    @Test
    void cubinArgsAskForPtxasReport() {
        assertEquals(List.of("--gpu-architecture=sm_90a", "-std=c++17", "-default-device", "--ptxas-options=-v",
                "-lineinfo"), CompileOptions.cubin(Arch.SM90A).nvrtcArgs());
    }

    @Test
    void ptxArgsUseTheVirtualArch() {
        assertEquals(List.of("--gpu-architecture=compute_120a", "-std=c++17", "-default-device", "-lineinfo",
                "--maxrregcount=64"), CompileOptions.ptx(Arch.SM120A).withFlags("--maxrregcount=64").nvrtcArgs());
    }

    @Test
    void neverUsesFastMath() {
        for (Arch a : Arch.ALL) {
            assertEquals(false, CompileOptions.cubin(a).nvrtcArgs().contains("--use_fast_math"));
        }
    }

    @Test
    void cacheKeyIsCanonicalAndOrderFree() {
        var a = new CacheKey(Map.of("b", "2", "a", "1"));
        var b = new CacheKey(new java.util.LinkedHashMap<>(Map.of("a", "1", "b", "2")));
        assertEquals("a=1\nb=2\n", a.canonical());
        assertEquals(a.digest(), b.digest());
        assertEquals(64, a.digest().length());
        assertNotEquals(a.digest(), new CacheKey(Map.of("a", "1", "b", "3")).digest());
        assertThrows(IllegalArgumentException.class, () -> new CacheKey(Map.of("a=b", "1")));
    }
}
