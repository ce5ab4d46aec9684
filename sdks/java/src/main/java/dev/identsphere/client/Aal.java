package dev.identsphere.client;

/** Authentication assurance level of a session (claim {@code aal}). */
public enum Aal {
    /** One factor: a password, or a social sign-in. */
    AAL1,
    /** A second factor was verified in this session. */
    AAL2,
    /** A level this version of the SDK does not know; never treated as {@code aal2}. */
    UNKNOWN;

    static Aal of(String value) {
        return switch (value) {
            case "aal1" -> AAL1;
            case "aal2" -> AAL2;
            default -> UNKNOWN;
        };
    }
}
