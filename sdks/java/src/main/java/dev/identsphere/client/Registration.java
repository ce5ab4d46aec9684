package dev.identsphere.client;

import java.util.Objects;
import java.util.Optional;

/**
 * A new account, for {@link IdentSphereClient#register(Registration)}: start with {@link #of(String, String)}
 * and add the optional fields.
 *
 * <pre>{@code
 * client.register(Registration.of("ada@example.com", password).withDisplayName("Ada").withOrganization("acme"));
 * }</pre>
 *
 * @param email the address to register
 * @param password the password (8 to 256 bytes, not a common one)
 * @param displayName the name to show
 * @param organization id or slug of an organization that allows sign-up; without it the user gets a new
 *     personal organization and owns it
 * @param invitation the token of an invitation for this email: the account joins its organization
 */
public record Registration(String email, String password, Optional<String> displayName, Optional<String> organization,
        Optional<String> invitation) {

    /**
     * Checks that no field is {@code null}.
     *
     * @param email the address
     * @param password the password
     * @param displayName the name to show
     * @param organization the organization to register into
     * @param invitation the invitation to accept
     */
    public Registration {
        Objects.requireNonNull(email, "email");
        Objects.requireNonNull(password, "password");
        Objects.requireNonNull(displayName, "displayName");
        Objects.requireNonNull(organization, "organization");
        Objects.requireNonNull(invitation, "invitation");
    }

    /**
     * A registration with only the required fields.
     *
     * @param email the address to register
     * @param password the password
     * @return the registration
     */
    public static Registration of(String email, String password) {
        return new Registration(email, password, Optional.empty(), Optional.empty(), Optional.empty());
    }

    /**
     * @param name the name to show
     * @return this registration with a display name
     */
    public Registration withDisplayName(String name) {
        return new Registration(email, password, Optional.of(name), organization, invitation);
    }

    /**
     * @param idOrSlug an organization that allows sign-up
     * @return this registration into that organization
     */
    public Registration withOrganization(String idOrSlug) {
        return new Registration(email, password, displayName, Optional.of(idOrSlug), invitation);
    }

    /**
     * @param token the invitation's token, from its link
     * @return this registration accepting the invitation
     */
    public Registration withInvitation(String token) {
        return new Registration(email, password, displayName, organization, Optional.of(token));
    }

    /** Without the password. */
    @Override
    public String toString() {
        return "Registration[email=" + email + ", displayName=" + displayName + ", organization=" + organization
                + ", invitation=" + invitation.map(i -> "…") + "]";
    }
}
