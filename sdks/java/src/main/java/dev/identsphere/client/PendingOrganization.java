package dev.identsphere.client;

/**
 * At a sign-up into an organization that takes the address's domain: the organization the account joins
 * once its address is verified.
 *
 * @param id the organization id
 * @param slug its slug
 * @param name its name
 * @param joinsWhen what the joining waits for ({@code email_verified})
 */
public record PendingOrganization(String id, String slug, String name, String joinsWhen) {

    static PendingOrganization from(JsonObject json) {
        return new PendingOrganization(json.string("id"), json.string("slug"), json.string("name"),
                json.string("joins_when"));
    }
}
