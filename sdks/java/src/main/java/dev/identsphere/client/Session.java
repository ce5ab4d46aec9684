package dev.identsphere.client;

import java.time.Instant;

/**
 * A session family: it starts at a sign-in and keeps its id across refreshes.
 *
 * @param id the session family id (claim {@code sid})
 * @param organizationId the organization the session is in (claim {@code org})
 * @param aal the assurance level reached
 * @param authMethod how the user signed in
 * @param authTime when the user signed in (refreshes do not renew it)
 * @param expiresAt the session's absolute end
 */
public record Session(String id, String organizationId, Aal aal, AuthMethod authMethod, Instant authTime,
        Instant expiresAt) {

    static Session from(JsonObject json) {
        return new Session(json.string("id"), json.string("organization_id"), Aal.of(json.string("aal")),
                AuthMethod.of(json.string("auth_method")), Instant.ofEpochSecond(json.number("auth_time")),
                json.instant("expires_at"));
    }
}
