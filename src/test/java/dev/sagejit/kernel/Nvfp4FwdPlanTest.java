package dev.sagejit.kernel;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sagejit.api.DType;
import dev.sagejit.api.SageException;
import dev.sagejit.spec.Arch;
import org.junit.jupiter.api.Test;

/** Which NVFP4 kernel runs where, and what a user asking for the wrong one is told. */
class Nvfp4FwdPlanTest {
    @Test
    void nativeNeedsFp4TensorCoresAndTheErrorNamesTheAlternatives() {
        var e = assertThrows(SageException.Unsupported.class,
                () -> Nvfp4FwdPlan.of(Nvfp4FwdPlan.Mode.NATIVE, Arch.SM90A, DType.BF16, 128, false, false));
        assertTrue(e.getMessage().contains("nvfp4-emulated") && e.getMessage().contains("int8-fp8"), e.getMessage());
        assertFalse(Nvfp4FwdPlan.of(Nvfp4FwdPlan.Mode.NATIVE, Arch.SM120A, DType.BF16, 128, false, false).emulated());
        assertTrue(Nvfp4FwdPlan.of(Nvfp4FwdPlan.Mode.EMULATED, Arch.SM90A, DType.FP16, 64, true, true).emulated());
        assertThrows(IllegalArgumentException.class,
                () -> Nvfp4FwdPlan.of(Nvfp4FwdPlan.Mode.EMULATED, Arch.SM120A, DType.BF16, 128, false, false));
        assertThrows(IllegalArgumentException.class, () -> new Nvfp4FwdPlan(Arch.SM80, DType.BF16, 128, false, false),
                "sm_80 lacks the FP8 conversions of the emulated kernel");
    }
}
