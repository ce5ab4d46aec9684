package dev.identsphere.client;

/** Which sessions a {@linkplain IdentSphereClient#logout(String, LogoutScope) logout} ends. */
public enum LogoutScope {
    /** This session family (the default). */
    LOCAL("local"),
    /** Every other session of the user; this one stays. */
    OTHERS("others"),
    /** Every session of the user, this one included. */
    GLOBAL("global");

    private final String wire;

    LogoutScope(String wire) {
        this.wire = wire;
    }

    String wire() {
        return wire;
    }
}
