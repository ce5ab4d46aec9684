package dev.identsphere.client;

import java.time.Instant;
import java.util.Optional;

/**
 * The signed-in user, as token and session answers carry it.
 *
 * @param id the user id (a UUID)
 * @param email the address as the user typed it
 * @param emailVerified whether the address was proven (the mailed link, or an accepted invitation)
 * @param displayName the name the user set, if any
 * @param createdAt when the account was created
 */
public record User(String id, String email, boolean emailVerified, Optional<String> displayName, Instant createdAt) {

    static User from(JsonObject json) {
        return new User(json.string("id"), json.string("email"), json.bool("email_verified"),
                json.optionalString("display_name"), json.instant("created_at"));
    }
}
