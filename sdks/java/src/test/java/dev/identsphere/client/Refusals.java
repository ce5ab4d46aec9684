package dev.identsphere.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.function.Executable;

/** Assertions on refusals. */
final class Refusals {
    private Refusals() {}

    /** {@code call} is refused with this status and code; the refusal, for more checks. */
    static IdentSphereException refused(int status, String code, Executable call) {
        IdentSphereException refusal = assertThrows(IdentSphereException.class, call, "expected " + code);
        assertEquals(code, refusal.getCode(), refusal::toString);
        assertEquals(status, refusal.getStatus(), refusal::toString);
        assertFalse(refusal.getType().isEmpty() || refusal.getMessage().isEmpty(), refusal::toString);
        return refusal;
    }
}
