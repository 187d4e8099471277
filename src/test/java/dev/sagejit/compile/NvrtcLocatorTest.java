package dev.sagejit.compile;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sagejit.api.SageException;
import dev.sagejit.spec.Arch;
import dev.sagejit.util.Knobs;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class NvrtcLocatorTest {
    @TempDir
    Path dir;

    @Test
    void findsBothWheelsThroughKnobs() {
        TestNvrtcs.require(12);
        TestNvrtcs.require(13);
        var libs = TestNvrtcs.libraries();
        var wheel13 = libs.stream().filter(l -> l.major() == 13).findFirst().orElseThrow();
        var wheel12 = libs.stream().filter(l -> l.major() == 12).findFirst().orElseThrow();
        assertTrue(wheel13.path().endsWith("nvidia/cu13/lib/libnvrtc.so.13") || !wheel13.foundVia().contains("wheel"),
                wheel13.toString());
        assertTrue(wheel12.path().toString().contains("libnvrtc.so.12"), wheel12.toString());
    }

    @Test
    void fakeWheelLayoutsAndLdconfigAreFound() throws Exception {
        Path site = dir.resolve("site");
        Path lib13 = touch(site.resolve("nvidia/cu13/lib/libnvrtc.so.13"));
        Path lib12 = touch(site.resolve("nvidia/cuda_nvrtc/lib/libnvrtc.so.12"));
        Path sys = touch(dir.resolve("sys/libnvrtc.so.12.8.93"));
        String ldconfig = "3 libs found in cache `/etc/ld.so.cache'\n"
                + "\tlibnvrtc.so.12 (libc6,x86-64) => " + sys + "\n"
                + "\tlibz.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libz.so.1\n";
        var knobs = Knobs.from(Map.of("SAGEJIT_PYTHON_PATH", site.toString()), new Properties());
        var locator = new NvrtcLocator(knobs, () -> ldconfig, List.of(dir.resolve("none")));
        var libs = locator.locate();
        assertEquals(List.of(sys, lib13, lib12), libs.stream().map(NvrtcLibrary::path).toList());
        assertEquals("ldconfig", libs.get(0).foundVia());
        assertEquals(12, libs.get(0).major());
        assertEquals(13, libs.get(1).major());
        assertTrue(locator.searched().stream().anyMatch(s -> s.contains(site.toString())), locator.searched().toString());
    }

    @Test
    void explicitLibraryComesFirstAndDuplicatesCollapse() throws Exception {
        Path lib = touch(dir.resolve("cuda/lib64/libnvrtc.so.13"));
        var knobs = Knobs.from(Map.of("SAGEJIT_NVRTC", lib.toString(), "CUDA_HOME", dir.resolve("cuda").toString(),
                "LD_LIBRARY_PATH", dir.resolve("cuda/lib64").toString()), new Properties());
        var libs = new NvrtcLocator(knobs, () -> null, List.of()).locate();
        assertEquals(1, libs.size(), libs.toString());
        assertEquals("SAGEJIT_NVRTC", libs.getFirst().foundVia());
    }

    @Test
    void systemPythonDistPackagesAreScanned() throws Exception {
        Path lib = touch(dir.resolve("usr/lib/python3.12/dist-packages/nvidia/cu13/lib/libnvrtc.so.13"));
        var knobs = Knobs.from(Map.of(), new Properties());
        var libs = new NvrtcLocator(knobs, () -> null, List.of(dir.resolve("usr/lib"))).locate();
        assertEquals(List.of(lib), libs.stream().map(NvrtcLibrary::path).toList());
    }

    @Test
    void nothingFoundSaysWhereItLookedAndHowToFix() {
        var knobs = new Knobs(Optional.empty(), "auto", dir, true, 0, Optional.empty(),
                List.of(dir.resolve("empty-site")), List.of());
        var locator = new NvrtcLocator(knobs, () -> null, List.of());
        var e = assertThrows(SageException.Unsupported.class, () -> NvrtcBackends.preferred(knobs, Arch.SM90A, locator));
        String m = e.getMessage();
        assertTrue(m.contains(dir.resolve("empty-site").toString()), m);
        assertTrue(m.contains("ldconfig -p: (not available)"), m);
        assertTrue(m.contains("pip install nvidia-cuda-nvrtc") && m.contains("nvidia-cuda-nvrtc-cu12"), m);
        assertTrue(m.contains("SAGEJIT_NVRTC=/path/to/libnvrtc.so.13"), m);
    }

    @Test
    void backendKnobSelectsBindings() {
        assertEquals("jcuda", NvrtcBackends.backendFor("auto", 12));
        assertEquals("ffm", NvrtcBackends.backendFor("auto", 13));
        assertEquals(null, NvrtcBackends.backendFor("jcuda", 13));
        assertEquals("ffm", NvrtcBackends.backendFor("ffm", 12));
    }

    @Test
    void preferredPicksNewestThatSupportsTheArch() {
        TestNvrtcs.require(13);
        TestNvrtcs.jcuda(); // binds JCuda to the same .so.12 the discovery finds
        var knobs = TestNvrtcs.knobs(dir);
        var all = NvrtcBackends.available(knobs);
        assertTrue(all.size() >= 2, all.toString());
        Nvrtc n = NvrtcBackends.preferred(knobs, Arch.SM120A);
        assertEquals("13", n.version().split("\\.")[0]);
        assertEquals("ffm", n.backend());
    }

    private static Path touch(Path p) throws Exception {
        Files.createDirectories(p.getParent());
        return Files.writeString(p, "not really a library");
    }
}
