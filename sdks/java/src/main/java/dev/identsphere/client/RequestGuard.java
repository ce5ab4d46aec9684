package dev.identsphere.client;

import java.util.List;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.function.Function;

/**
 * The decision both filters make, on the parts of a request they can read: the credential is
 * {@code Authorization: Bearer …}, else the {@code identsphere_at} cookie IdentSphere sets; it must verify;
 * then {@link FilterOptions}' requirements hold. The filters only adapt their server's request and
 * response to this.
 */
final class RequestGuard {
    /** The access-token cookie IdentSphere sets. */
    static final String ACCESS_COOKIE = "identsphere_at";
    private static final Set<String> SAFE_METHODS = Set.of("GET", "HEAD", "OPTIONS", "TRACE");

    private final TokenVerifier verifier;
    private final FilterOptions options;

    RequestGuard(TokenVerifier verifier, FilterOptions options) {
        this.verifier = Objects.requireNonNull(verifier, "verifier");
        this.options = Objects.requireNonNull(options, "options");
    }

    /**
     * The claims of the request's credential.
     *
     * @param method the request method
     * @param headers every value of a request header, by case-insensitive name (empty when absent)
     * @throws IdentSphereException the refusal to answer with
     */
    Claims authenticate(String method, Function<String, List<String>> headers) {
        String token = bearer(headers.apply("Authorization"));
        if (token == null) {
            token = cookie(headers.apply("Cookie"));
            if (token == null) {
                throw IdentSphereException.refusal(ErrorCodes.TOKEN_MISSING);
            }
            if (!sameOriginAllowed(method, headers)) {
                throw IdentSphereException.refusal(ErrorCodes.CSRF_REJECTED);
            }
        }
        Claims claims = verifier.verify(token);
        if (options.requiresAal2() && !claims.isAal2()) {
            throw IdentSphereException.refusal(ErrorCodes.INSUFFICIENT_AAL);
        }
        if (options.organization().isPresent() && !claims.org().equals(options.organization())) {
            throw IdentSphereException.refusal(ErrorCodes.NOT_A_MEMBER);
        }
        return claims;
    }

    /**
     * The headers of a refusal besides {@code Content-Type}: {@code WWW-Authenticate: Bearer} on a
     * {@code 401} (RFC 6750), {@code Retry-After} on a {@code 503}.
     */
    static Map<String, String> refusalHeaders(IdentSphereException refusal) {
        Map<String, String> headers = new LinkedHashMap<>();
        headers.put("Content-Type", "application/json");
        if (refusal.getStatus() == 401) {
            headers.put("WWW-Authenticate", "Bearer");
        }
        refusal.getRetryAfter().ifPresent(wait -> headers.put("Retry-After", Long.toString(wait.toSeconds())));
        return headers;
    }

    private static String bearer(List<String> values) {
        for (String value : values) {
            int space = value.indexOf(' ');
            if (space > 0 && value.substring(0, space).equalsIgnoreCase("Bearer")) {
                String token = value.substring(space + 1).trim();
                if (!token.isEmpty()) {
                    return token;
                }
            }
        }
        return null;
    }

    private static String cookie(List<String> values) {
        for (String value : values) {
            for (String pair : value.split(";")) {
                int eq = pair.indexOf('=');
                if (eq > 0 && pair.substring(0, eq).trim().equals(ACCESS_COOKIE)) {
                    String token = pair.substring(eq + 1).trim();
                    if (!token.isEmpty()) {
                        return token;
                    }
                }
            }
        }
        return null;
    }

    /**
     * The CSRF rule for cookie-authenticated requests, IdentSphere's: safe methods pass; an unsafe one needs
     * an {@code Origin} that is allowed (with none configured, the request's own host), or, without
     * {@code Origin}, no {@code Sec-Fetch-Site: cross-site}.
     */
    private boolean sameOriginAllowed(String method, Function<String, List<String>> headers) {
        if (SAFE_METHODS.contains(method.toUpperCase(Locale.ROOT))) {
            return true;
        }
        String origin = first(headers.apply("Origin"));
        if (origin == null) {
            return !"cross-site".equals(first(headers.apply("Sec-Fetch-Site")));
        }
        if (options.allowedOrigins().isEmpty()) {
            int scheme = origin.indexOf("://");
            String host = first(headers.apply("Host"));
            return scheme > 0 && host != null && origin.substring(scheme + 3).equalsIgnoreCase(host);
        }
        return options.allowedOrigins().contains(origin);
    }

    private static String first(List<String> values) {
        return values.isEmpty() ? null : values.get(0);
    }
}
