package dev.identsphere.client;

import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * What the filters ({@link IdentSphereServletFilter}, {@link IdentSphereHttpFilter}) require beyond a valid
 * access token, and which origins may send cookie-authenticated unsafe requests. Immutable: each method
 * returns a new value.
 *
 * <pre>{@code
 * new IdentSphereServletFilter(verifier, FilterOptions.defaults().requireAal2());
 * }</pre>
 */
public final class FilterOptions {
    private static final FilterOptions DEFAULTS = new FilterOptions(false, null, List.of());

    private final boolean aal2;
    private final String organization;
    private final List<String> allowedOrigins;

    private FilterOptions(boolean aal2, String organization, List<String> allowedOrigins) {
        this.aal2 = aal2;
        this.organization = organization;
        this.allowedOrigins = allowedOrigins;
    }

    /**
     * A valid access token and nothing more; cookie-authenticated unsafe requests only from the request's
     * own host.
     *
     * @return the default options
     */
    public static FilterOptions defaults() {
        return DEFAULTS;
    }

    /**
     * Require a session verified with a second factor: an {@code aal1} token is refused with
     * {@code 403 insufficient_aal}.
     *
     * @return these options, requiring {@code aal2}
     */
    public FilterOptions requireAal2() {
        return new FilterOptions(true, organization, allowedOrigins);
    }

    /**
     * Require a session in one organization: a token whose {@code org} is another is refused with
     * {@code 403 not_a_member}.
     *
     * @param organizationId the organization id (a UUID, as in the {@code org} claim)
     * @return these options, requiring the organization
     */
    public FilterOptions requireOrganization(String organizationId) {
        return new FilterOptions(aal2, Objects.requireNonNull(organizationId, "organizationId"), allowedOrigins);
    }

    /**
     * The origins ({@code https://app.example.com}) allowed to make cookie-authenticated {@code POST},
     * {@code PUT}, {@code PATCH} and {@code DELETE} requests; others are refused with
     * {@code 403 csrf_rejected}, as IdentSphere does. Default: only the request's own host. Requests with a
     * bearer token are not affected.
     *
     * @param origins the allowed origins
     * @return these options, with those origins
     */
    public FilterOptions allowedOrigins(String... origins) {
        return new FilterOptions(aal2, organization,
                Arrays.stream(origins).map(o -> o.endsWith("/") ? o.substring(0, o.length() - 1) : o).toList());
    }

    boolean requiresAal2() {
        return aal2;
    }

    Optional<String> organization() {
        return Optional.ofNullable(organization);
    }

    List<String> allowedOrigins() {
        return allowedOrigins;
    }
}
