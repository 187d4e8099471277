package dev.sagejit.testing;

import dev.sagejit.api.SageAttention;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/** Base of GPU test classes: one engine per class, opened before its tests and closed after them. */
public abstract class GpuSession {
    protected static SageAttention sage;

    @BeforeAll
    static void openEngine() {
        sage = SageAttention.open();
    }

    @AfterAll
    static void closeEngine() {
        if (sage != null) {
            sage.close();
            sage = null;
        }
    }
}
