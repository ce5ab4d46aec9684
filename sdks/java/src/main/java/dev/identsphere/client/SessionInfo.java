package dev.identsphere.client;

import java.time.Instant;
import java.util.List;

/**
 * IdentSphere's view of a live session ({@code GET /v1/auth/session}).
 *
 * @param user the signed-in user
 * @param session the session
 * @param organization the session's organization, with the user's role in it
 * @param factors the second factors the user has enrolled
 * @param recoveryCodesLeft the recovery codes not yet spent
 */
public record SessionInfo(User user, Session session, Organization organization, List<Factor> factors,
        int recoveryCodesLeft) {

    /**
     * Copies {@code factors}, so the record stays immutable.
     *
     * @param user the signed-in user
     * @param session the session
     * @param organization the session's organization
     * @param factors the second factors
     * @param recoveryCodesLeft the recovery codes not yet spent
     */
    public SessionInfo {
        factors = List.copyOf(factors);
    }

    /**
     * The organization of a session.
     *
     * @param id the organization id
     * @param slug its slug
     * @param name its name
     * @param role the user's role: {@code owner}, {@code admin} or {@code member}
     */
    public record Organization(String id, String slug, String name, String role) {}

    /**
     * A second factor.
     *
     * @param type {@code totp} or {@code passkey}
     * @param confirmedAt when it was confirmed
     */
    public record Factor(String type, Instant confirmedAt) {}

    static SessionInfo from(JsonObject json) {
        JsonObject org = json.object("organization");
        return new SessionInfo(User.from(json.object("user")), Session.from(json.object("session")),
                new Organization(org.string("id"), org.string("slug"), org.string("name"), org.string("role")),
                json.objects("factors").stream()
                        .map(f -> new Factor(f.string("type"), f.instant("confirmed_at"))).toList(),
                Math.toIntExact(json.number("recovery_codes_left")));
    }
}
