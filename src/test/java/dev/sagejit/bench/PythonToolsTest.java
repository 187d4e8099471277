package dev.sagejit.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/** The Python scripts in the jar unpack and run; a host without CUDA PyTorch is told why peers are skipped. */
class PythonToolsTest {
    @Test
    void scriptsUnpackAndRun() {
        var tools = PythonTools.unpack("python3");
        var help = tools.script("peers.py", List.of("--help"), 60);
        Assumptions.assumeTrue(help.code() != -1, "no python3 on this machine");
        assertEquals(0, help.code(), help.output());
        assertTrue(help.output().contains("--backends"), help.output());
        // SDPA's cases warm up as long as sagejit's by default (gpu-suite relies on it).
        String warmup = help.output().replaceAll("\\s+", " ");
        String expected = "default " + FwdBenchmark.DEFAULT_WARMUP_MS / 1e3 + ";";
        int at = warmup.lastIndexOf("--warmup-time"); // the option's own help, after the usage line
        int found = warmup.indexOf(expected, at);
        assertTrue(at >= 0 && found > at && found < warmup.lastIndexOf("--cooldown-time"),
                "peers.py --warmup-time should default to " + expected + " in " + warmup);
        // ... and time their calls back to back, as sagejit bench does without --gap-us.
        int sleep = warmup.lastIndexOf("--sleep-every");
        assertTrue(sleep >= 0 && warmup.indexOf("(default 0:", sleep) > sleep,
                "peers.py --sleep-every should default to 0 in " + warmup);
        var plotHelp = tools.script("plot.py", List.of("--help"), 60);
        assertEquals(0, plotHelp.code(), plotHelp.output());
    }

    @Test
    void aMissingPythonIsAReasonNotACrash() {
        var why = PythonTools.unpack("/nonexistent/python3").whyNoPeers();
        assertTrue(why.isPresent());
        assertTrue(why.get().contains("was not found"), why.get());
    }
}
