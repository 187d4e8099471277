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
