package dev.sagejit.runtime;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import dev.sagejit.api.SageException;
import org.junit.jupiter.api.Test;

/** What the runtime does on a machine without a GPU (skipped where one is present). */
class NoGpuTest {

    @Test
    void availableNeverThrows() {
        boolean available = assertDoesNotThrow(CudaDriver::available);
        assertEquals(available, CudaDriver.available(), "the answer is stable");
        String reason = CudaDriver.unavailableReason();
        assertTrue(reason.length() > 10 && reason.contains(" "), reason);
        if (!available) {
            assertEquals(0, CudaDriver.deviceCount());
        }
    }

    @Test
    void reasonIsASentenceWithoutGpu() {
        assumeFalse(CudaDriver.available(), "a GPU is present");
        String reason = CudaDriver.unavailableReason();
        assertTrue(reason.startsWith("no ") || reason.startsWith("the "), reason);
        assertTrue(reason.contains("driver") || reason.contains("device"), reason);
    }

    @Test
    void openWithoutGpuIsUnsupported() {
        assumeFalse(CudaDriver.available(), "a GPU is present");
        var e = assertThrows(SageException.Unsupported.class, () -> Device.open(0));
        assertTrue(e.getMessage().startsWith("no GPU"), e.getMessage());
        assertTrue(e.getMessage().contains(CudaDriver.unavailableReason()), e.getMessage());
    }
}
