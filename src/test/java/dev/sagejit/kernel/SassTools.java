package dev.sagejit.kernel;

import dev.sagejit.compile.Disassembler;
import dev.sagejit.compile.NvrtcBackends;
import dev.sagejit.spec.Arch;
import dev.sagejit.util.Knobs;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Properties;
import org.junit.jupiter.api.Assumptions;

/**
 * What the SASS tests need: this process's settings with a private cache, an NVRTC for the arch and
 * cuobjdump. Without them the test is skipped, unless {@code -Dsagejit.test.require-nvrtc=true}
 * (scripts/test.sh provisions both), which turns their absence into a failure.
 */
record SassTools(Knobs knobs, Disassembler disassembler) {
    static SassTools require(Path cache, Arch arch) {
        var props = new Properties();
        props.putAll(System.getProperties());
        props.setProperty("sagejit.cache.dir", cache.toString());
        Knobs knobs = Knobs.from(new HashMap<>(System.getenv()), props);
        var disassembler = Disassembler.locate(knobs);
        boolean found = NvrtcBackends.available(knobs).stream().anyMatch(n -> n.supports(arch)) && disassembler.isPresent();
        if (!found && Boolean.getBoolean("sagejit.test.require-nvrtc")) {
            throw new AssertionError("no NVRTC for " + arch.name() + " or no cuobjdump, but sagejit.test.require-nvrtc"
                    + "=true; scripts/test.sh provisions both into .tools/site (SAGEJIT_PYTHON_PATH)");
        }
        Assumptions.assumeTrue(found, "no NVRTC for " + arch.name() + " or no cuobjdump; set SAGEJIT_PYTHON_PATH");
        return new SassTools(knobs, disassembler.get());
    }
}
