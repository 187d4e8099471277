package dev.sagejit.compile;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class PtxasSerializationTest {
    @Test
    void findsTheSerializationNoticeAndNothingElse() {
        String log = "ptxas info    : (C7513) Potential Performance Loss: wgmma.mma_async instructions are serialized"
                + " due to non wgmma instructions defining input registers of a wgmma between start and end of the"
                + " pipeline stage in the function 'k'\nptxas info    : Used 168 registers, used 2 barriers\n";
        var found = PtxasReport.wgmmaSerialization(log);
        assertTrue(found.orElseThrow().startsWith("ptxas info    : (C7513)"), found.toString());
        assertEquals(java.util.Optional.empty(), PtxasReport.wgmmaSerialization("ptxas info    : Used 168 registers\n"));
        assertEquals(java.util.Optional.empty(), PtxasReport.wgmmaSerialization(null));
    }
}
