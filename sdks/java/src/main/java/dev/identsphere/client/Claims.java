package dev.identsphere.client;

import java.time.Instant;
import java.util.Optional;

/**
 * The verified claims of an IdentSphere access token, as the integration page lists them. {@code sub},
 * {@code exp}, {@code iat} and {@code typ} are always there; the others are optional in the token (a newer
 * server may drop or add claims), so they are {@link Optional}.
 *
 * @param sub the user id (a UUID)
 * @param org the organization of the session
 * @param iss the issuer: IdentSphere's public base URL (checked against the configured issuer)
 * @param exp the expiry
 * @param iat when the token was issued
 * @param typ the token type: always {@code access} once verified (refresh and mfa tokens are refused)
 * @param email the user's email, when known
 * @param jti the token's unique id: what a revocation of one token names
 * @param sid the session family id, the same across refreshes: what a session revocation names
 * @param aal the session's assurance level
 * @param authTime when the user originally authenticated
 * @param authMethod how the user originally authenticated
 */
public record Claims(String sub, Optional<String> org, Optional<String> iss, Instant exp, Instant iat, String typ,
        Optional<String> email, Optional<String> jti, Optional<String> sid, Optional<Aal> aal,
        Optional<Instant> authTime, Optional<AuthMethod> authMethod) {

    /**
     * The request attribute the filters put the claims under: {@value}.
     */
    public static final String ATTRIBUTE = "identsphere.claims";

    /**
     * Whether a second factor was verified in this session ({@code aal: aal2}).
     *
     * @return true for an {@code aal2} session
     */
    public boolean isAal2() {
        return aal.orElse(Aal.UNKNOWN) == Aal.AAL2;
    }

    static Claims from(JsonObject json) {
        return new Claims(json.string("sub"), json.optionalString("org"), json.optionalString("iss"),
                Instant.ofEpochSecond(json.number("exp")), Instant.ofEpochSecond(json.number("iat")),
                json.string("typ"), json.optionalString("email"), json.optionalString("jti"),
                json.optionalString("sid"), json.optionalString("aal").map(Aal::of),
                json.optionalNumber("auth_time").map(Instant::ofEpochSecond),
                json.optionalString("auth_method").map(AuthMethod::of));
    }
}
