package dev.identsphere.client;

import java.time.Duration;
import java.util.Optional;

/**
 * A new token pair: what register, login, refresh and every step that completes a sign-in answer.
 *
 * @param tokenType always {@code Bearer}
 * @param accessToken the RS256 JWT to send as {@code Authorization: Bearer …}; verify it with
 *     {@link TokenVerifier}
 * @param expiresIn the access token's lifetime
 * @param refreshToken opaque: send it to {@link IdentSphereClient#refresh(String)} for the next pair; it
 *     rotates on every use
 * @param user the signed-in user
 * @param session the session the tokens belong to
 * @param pendingOrganization at a sign-up by email domain, the organization joined once the address is
 *     verified
 */
public record TokenResponse(String tokenType, String accessToken, Duration expiresIn, String refreshToken, User user,
        Session session, Optional<PendingOrganization> pendingOrganization) implements LoginResult {

    static TokenResponse from(JsonObject json) {
        return new TokenResponse(json.string("token_type"), json.string("access_token"),
                Duration.ofSeconds(json.number("expires_in")), json.string("refresh_token"),
                User.from(json.object("user")), Session.from(json.object("session")),
                json.optionalObject("pending_organization").map(PendingOrganization::from));
    }

    /** Without the tokens: they are credentials and must not reach a log. */
    @Override
    public String toString() {
        return "TokenResponse[tokenType=" + tokenType + ", expiresIn=" + expiresIn + ", user=" + user + ", session="
                + session + ", pendingOrganization=" + pendingOrganization + "]";
    }
}
