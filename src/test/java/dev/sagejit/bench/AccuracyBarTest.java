package dev.sagejit.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class AccuracyBarTest {
    @Test
    void anotherDrawOfAFamilyKeepsItsBar() {
        assertEquals(new Accuracy.Bar(0.997, 0.06), Accuracy.quantizedBar("heavy-tail"));
        assertEquals(new Accuracy.Bar(0.997, 0.06), Accuracy.quantizedBar("heavy-tail-seed3"));
        assertEquals(new Accuracy.Bar(0.999, 0.045), Accuracy.quantizedBar("gaussian-seed12"));
        assertEquals(Accuracy.nvfp4Bar("peaky"), Accuracy.nvfp4Bar("peaky-seed1"));
        assertEquals("heavy-tail-seedless", Accuracy.family("heavy-tail-seedless"));
    }
}
