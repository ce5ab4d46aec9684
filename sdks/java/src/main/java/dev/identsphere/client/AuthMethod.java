package dev.identsphere.client;

/** How the user originally authenticated (claim {@code auth_method}). */
public enum AuthMethod {
    /** Email and password. */
    PASSWORD,
    /** A passkey (WebAuthn). */
    PASSKEY,
    /** A social OAuth provider. */
    SOCIAL_OAUTH,
    /** A method this version of the SDK does not know. */
    UNKNOWN;

    static AuthMethod of(String value) {
        return switch (value) {
            case "password" -> PASSWORD;
            case "passkey" -> PASSKEY;
            case "social_oauth" -> SOCIAL_OAUTH;
            default -> UNKNOWN;
        };
    }
}
