package dev.identsphere.client;

import java.util.List;

/**
 * The password was right and a second factor is due: no session exists yet. Complete the sign-in with
 * {@link IdentSphereClient#verifyMfa(String, String)} within five minutes; the mfa token works once.
 *
 * @param mfaToken the token that stands for the sign-in in progress (an RS256 JWT, {@code typ: mfa})
 * @param factors the user's factors: {@code totp}, {@code passkey}; empty when enrollment is required
 * @param enrollmentRequired the organization requires a second factor and the user has none: enroll one
 *     with the mfa token ({@code POST /v1/auth/mfa/totp}, then {@code /confirm})
 */
public record MfaRequired(String mfaToken, List<String> factors, boolean enrollmentRequired) implements LoginResult {

    /**
     * Copies {@code factors}, so the record stays immutable.
     *
     * @param mfaToken the mfa token
     * @param factors the user's factors
     * @param enrollmentRequired whether a factor must be enrolled first
     */
    public MfaRequired {
        factors = List.copyOf(factors);
    }

    static MfaRequired from(JsonObject json) {
        return new MfaRequired(json.string("mfa_token"), json.strings("factors"),
                json.optionalBool("enrollment_required").orElse(false));
    }

    /** Without the mfa token: it is a credential and must not reach a log. */
    @Override
    public String toString() {
        return "MfaRequired[factors=" + factors + ", enrollmentRequired=" + enrollmentRequired + "]";
    }
}
