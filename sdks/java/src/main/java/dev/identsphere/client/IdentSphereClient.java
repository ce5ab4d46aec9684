package dev.identsphere.client;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Clock;
import java.time.DateTimeException;
import java.time.Duration;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Function;

import dev.identsphere.client.Json.JsonException;

/**
 * IdentSphere's REST API, typed: sign-up, sign-in, refresh and organization switching, logout, the
 * session, the second factor and the account calls.
 *
 * <pre>{@code
 * IdentSphereClient client = IdentSphereClient.create("https://auth.example.com");
 * LoginResult result = client.login("ada@example.com", password);
 * }</pre>
 *
 * <p>Immutable and safe to share between threads; build one per IdentSphere and keep it. Every call
 * blocks for at most the configured timeout and is sent once: no call is retried, since a sign-in or a
 * refresh must not be repeated behind the caller's back.
 *
 * <p>A refusal (any answer in IdentSphere's error envelope) is an {@link IdentSphereException}; each call
 * lists the codes it can meet. Not reaching IdentSphere (a refused connection, a timeout) is an
 * {@link UncheckedIOException}.
 */
public final class IdentSphereClient {
    private final Http http;

    private IdentSphereClient(Http http) {
        this.http = http;
    }

    /**
     * A client with the default timeouts (connect 5 s, whole call 10 s).
     *
     * @param baseUrl where IdentSphere is reached, e.g. {@code https://auth.example.com}
     * @return the client
     * @throws IllegalArgumentException if {@code baseUrl} is not an {@code http(s)://} URL
     */
    public static IdentSphereClient create(String baseUrl) {
        return builder(baseUrl).build();
    }

    /**
     * Starts configuring a client.
     *
     * @param baseUrl where IdentSphere is reached, e.g. {@code https://auth.example.com}
     * @return the builder
     */
    public static Builder builder(String baseUrl) {
        return new Builder(baseUrl);
    }

    /** Configures an {@link IdentSphereClient}; start with {@link IdentSphereClient#builder(String)}. */
    public static final class Builder {
        private final String baseUrl;
        private Duration connectTimeout = Http.DEFAULT_CONNECT_TIMEOUT;
        private Duration timeout = Http.DEFAULT_TIMEOUT;
        private HttpClient httpClient;

        private Builder(String baseUrl) {
            this.baseUrl = baseUrl;
        }

        /**
         * How long to wait for a connection (default 5 s). Ignored with {@link #httpClient(HttpClient)}, whose
         * own setting applies.
         *
         * @param connectTimeout the connect timeout
         * @return this builder
         */
        public Builder connectTimeout(Duration connectTimeout) {
            this.connectTimeout = positive(connectTimeout, "connectTimeout");
            return this;
        }

        /**
         * How long one call may take in all, until the answer's headers (default 10 s).
         *
         * @param timeout the timeout of each call
         * @return this builder
         */
        public Builder timeout(Duration timeout) {
            this.timeout = positive(timeout, "timeout");
            return this;
        }

        /**
         * The HTTP client to send with (a proxy, TLS settings, an executor of your own). Default: one of the
         * SDK's, HTTP/1.1 without redirects.
         *
         * @param httpClient the client
         * @return this builder
         */
        public Builder httpClient(HttpClient httpClient) {
            this.httpClient = Objects.requireNonNull(httpClient, "httpClient");
            return this;
        }

        /**
         * Builds the client; nothing is sent yet.
         *
         * @return the client
         * @throws IllegalArgumentException if the base URL is not an {@code http(s)://} URL
         */
        public IdentSphereClient build() {
            HttpClient client = httpClient != null ? httpClient : Http.defaultClient(connectTimeout);
            return new IdentSphereClient(new Http(Http.baseUrl(baseUrl), client, timeout));
        }
    }

    static Duration positive(Duration value, String name) {
        Objects.requireNonNull(value, name);
        if (value.isNegative() || value.isZero()) {
            throw new IllegalArgumentException(name + " must be positive");
        }
        return value;
    }

    /**
     * Creates an account and signs it in, in a new personal organization ({@code 201}).
     *
     * @param email the address
     * @param password the password
     * @return the tokens; {@link MfaRequired} only into an organization that requires a second factor
     * @throws IdentSphereException {@code invalid_email}, {@code weak_password}, {@code email_taken},
     *     {@code rate_limited}
     */
    public LoginResult register(String email, String password) {
        return register(Registration.of(email, password));
    }

    /**
     * Creates an account and signs it in ({@code 201}), with a display name, into an organization, or
     * accepting an invitation.
     *
     * @param registration the account
     * @return the tokens, or {@link MfaRequired} (with {@code enrollmentRequired}) into an organization that
     *     requires a second factor
     * @throws IdentSphereException {@code invalid_request}, {@code invalid_email}, {@code weak_password},
     *     {@code email_taken}, {@code organization_not_found}, {@code signup_not_allowed},
     *     {@code invitation_invalid}, {@code invitation_email_mismatch}, {@code rate_limited}
     */
    public LoginResult register(Registration registration) {
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("email", registration.email());
        body.put("password", registration.password());
        body.put("display_name", registration.displayName().orElse(null));
        body.put("organization", registration.organization().orElse(null));
        body.put("invitation", registration.invitation().orElse(null));
        return signIn(post("/v1/auth/register", null, body, 201));
    }

    /**
     * Signs in with email and password, into the organization the user used last.
     *
     * @param email the address
     * @param password the password
     * @return the tokens, or {@link MfaRequired} when a second factor is due
     * @throws IdentSphereException {@code invalid_credentials} (wrong password or unknown email, alike),
     *     {@code account_disabled}, {@code auth_method_not_allowed}, {@code rate_limited}
     */
    public LoginResult login(String email, String password) {
        return login(email, password, null);
    }

    /**
     * Signs in with email and password into an organization.
     *
     * @param email the address
     * @param password the password
     * @param organization id or slug of the organization; {@code null}: the one the user used last
     * @return the tokens, or {@link MfaRequired} when a second factor is due
     * @throws IdentSphereException {@code invalid_credentials}, {@code not_a_member},
     *     {@code organization_not_found}, {@code account_disabled}, {@code auth_method_not_allowed},
     *     {@code rate_limited}
     */
    public LoginResult login(String email, String password, String organization) {
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("email", email);
        body.put("password", password);
        body.put("organization", organization);
        return signIn(post("/v1/auth/login", null, body, 200));
    }

    private static LoginResult signIn(JsonObject answer) {
        return read(answer, json -> json.optionalBool("mfa_required").orElse(false)
                ? MfaRequired.from(json) : TokenResponse.from(json));
    }

    /**
     * Exchanges a refresh token for a new pair; the one sent is spent.
     *
     * @param refreshToken the refresh token
     * @return the new pair
     * @throws IdentSphereException {@code token_invalid}, {@code token_expired}, {@code token_revoked},
     *     {@code refresh_token_reused} (the whole session is now revoked), {@code account_disabled},
     *     {@code insufficient_aal}, {@code rate_limited}
     */
    public TokenResponse refresh(String refreshToken) {
        return refresh(refreshToken, null);
    }

    /**
     * Refreshes and switches the session into another organization without signing in again: the new
     * tokens carry it in {@code org}; {@code sid}, {@code aal} and {@code auth_time} stay.
     *
     * @param refreshToken the refresh token
     * @param organization id or slug of an organization the user is a member of; {@code null}: stay
     * @return the new pair
     * @throws IdentSphereException those of {@link #refresh(String)}, {@code not_a_member},
     *     {@code organization_not_found}
     */
    public TokenResponse refresh(String refreshToken, String organization) {
        Objects.requireNonNull(refreshToken, "refreshToken");
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("refresh_token", refreshToken);
        body.put("organization", organization);
        return read(post("/v1/auth/refresh", null, body, 200), TokenResponse::from);
    }

    /**
     * Ends this session ({@code 204}): its access tokens are refused by IdentSphere at once, and by
     * verifiers through the revocation feed.
     *
     * @param accessToken the session's access token
     * @throws IdentSphereException {@code token_missing}, {@code token_invalid}, {@code token_expired},
     *     {@code token_revoked}
     */
    public void logout(String accessToken) {
        logout(accessToken, LogoutScope.LOCAL);
    }

    /**
     * Ends sessions of the user of {@code accessToken} ({@code 204}).
     *
     * @param accessToken an access token of the user
     * @param scope which sessions: this one, the others, or all
     * @throws IdentSphereException {@code token_missing}, {@code token_invalid}, {@code token_expired},
     *     {@code token_revoked}
     */
    public void logout(String accessToken, LogoutScope scope) {
        Objects.requireNonNull(accessToken, "accessToken");
        post("/v1/auth/logout", accessToken, Map.of("scope", scope.wire()), 204);
    }

    /**
     * Ends sessions with the refresh token, for when the access token has expired ({@code 204}).
     *
     * @param refreshToken the session's refresh token
     * @param scope which sessions: this one, the others, or all
     * @throws IdentSphereException {@code token_invalid}, {@code token_expired}, {@code token_revoked}
     */
    public void logoutWithRefreshToken(String refreshToken, LogoutScope scope) {
        Objects.requireNonNull(refreshToken, "refreshToken");
        post("/v1/auth/logout", null, Map.of("refresh_token", refreshToken, "scope", scope.wire()), 204);
    }

    /**
     * Asks IdentSphere for the session of an access token. Unlike {@link TokenVerifier#verify(String)} it
     * sees a logout at once.
     *
     * @param accessToken the access token
     * @return the user, the session, its organization with the user's role, the factors
     * @throws IdentSphereException {@code token_missing}, {@code token_invalid}, {@code token_expired},
     *     {@code token_revoked}, {@code account_disabled}, {@code not_a_member}
     */
    public SessionInfo session(String accessToken) {
        Objects.requireNonNull(accessToken, "accessToken");
        HttpRequest request = http.request("/v1/auth/session").header("Authorization", "Bearer " + accessToken)
                .GET().build();
        return read(answer(request, 200), SessionInfo::from);
    }

    /**
     * Completes a sign-in that answered {@link MfaRequired}, with a TOTP or a recovery code.
     *
     * @param mfaToken {@link MfaRequired#mfaToken()}
     * @param code a 6-digit TOTP code or a recovery code (dashes, spaces and case ignored)
     * @return the tokens, at {@code aal2}
     * @throws IdentSphereException {@code mfa_invalid_code} (wrong or already used), {@code token_invalid}
     *     (an mfa token that is not ours or was used), {@code token_expired}, {@code rate_limited} (too many
     *     wrong codes)
     */
    public TokenResponse verifyMfa(String mfaToken, String code) {
        Objects.requireNonNull(mfaToken, "mfaToken");
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("mfa_token", mfaToken);
        body.put("code", code);
        return read(post("/v1/auth/mfa/verify", null, body, 200), TokenResponse::from);
    }

    /**
     * Raises a signed-in session to {@code aal2} with a second-factor code: the same session, a new pair
     * (the refresh token sent is spent).
     *
     * @param accessToken the session's access token
     * @param refreshToken the session's refresh token: an access token alone never obtains a new pair
     * @param code a 6-digit TOTP code or a recovery code
     * @return the new pair, at {@code aal2}
     * @throws IdentSphereException {@code mfa_invalid_code}, {@code token_missing}, {@code token_invalid},
     *     {@code token_expired}, {@code token_revoked}, {@code rate_limited}
     */
    public TokenResponse stepUp(String accessToken, String refreshToken, String code) {
        Objects.requireNonNull(accessToken, "accessToken");
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("code", code);
        body.put("refresh_token", refreshToken);
        return read(post("/v1/auth/mfa/verify", accessToken, body, 200), TokenResponse::from);
    }

    /**
     * Asks for a password-reset link to be mailed ({@code 202}). The answer is the same whether or not the
     * email has an account.
     *
     * @param email the address
     * @throws IdentSphereException {@code invalid_email}, {@code rate_limited}
     */
    public void forgotPassword(String email) {
        post("/v1/auth/password/forgot", null, Map.of("email", email), 202);
    }

    /**
     * Sets a new password with the token of a reset link ({@code 204}); every session of the user ends.
     *
     * @param token the token of the mailed link
     * @param newPassword the new password
     * @throws IdentSphereException {@code link_invalid} (unknown, expired or used), {@code weak_password},
     *     {@code rate_limited}
     */
    public void resetPassword(String token, String newPassword) {
        post("/v1/auth/password/reset", null, Map.of("token", token, "password", newPassword), 204);
    }

    /**
     * Changes the password of a signed-in user ({@code 204}); the user's other sessions end.
     *
     * @param accessToken the session's access token ({@code aal2} when the user has a second factor)
     * @param currentPassword the current password
     * @param newPassword the new password
     * @throws IdentSphereException {@code invalid_credentials} (a wrong current password, counted like a
     *     failed sign-in), {@code weak_password}, {@code insufficient_aal}, {@code token_invalid},
     *     {@code token_expired}, {@code token_revoked}
     */
    public void changePassword(String accessToken, String currentPassword, String newPassword) {
        Objects.requireNonNull(accessToken, "accessToken");
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("current_password", currentPassword);
        body.put("new_password", newPassword);
        post("/v1/auth/password", accessToken, body, 204);
    }

    /**
     * Marks the address verified with the token of the mailed link ({@code 204}).
     *
     * @param token the token of the link
     * @throws IdentSphereException {@code link_invalid}, {@code rate_limited}
     */
    public void verifyEmail(String token) {
        post("/v1/auth/email/verify", null, Map.of("token", token), 204);
    }

    private JsonObject post(String path, String bearer, Map<String, ?> body, int expected) {
        HttpRequest.Builder request = http.request(path).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(Json.write(body)));
        if (bearer != null) {
            request.header("Authorization", "Bearer " + bearer);
        }
        return answer(request.build(), expected);
    }

    /**
     * The answer's body as an object when its status is {@code expected} (an empty object for an answer
     * without one), else the refusal it carries.
     */
    private JsonObject answer(HttpRequest request, int expected) {
        HttpResponse<String> response = http.send(request);
        String call = request.method() + " " + request.uri().getPath();
        if (response.statusCode() != expected) {
            throw refusal(response, call);
        }
        if (response.body().isEmpty()) {
            return new JsonObject(Map.of());
        }
        try {
            return Json.parseObject(response.body());
        } catch (JsonException e) {
            throw unexpected(call + ": " + e.getMessage(), e);
        }
    }

    /** The refusal of an answer in IdentSphere's error envelope. */
    static IdentSphereException refusal(HttpResponse<String> response, String call) {
        JsonObject error;
        try {
            error = Json.parseObject(response.body()).object("error");
            error.string("code");
        } catch (JsonException e) {
            // A proxy's own page, say: not a refusal of IdentSphere's, so no code to switch on.
            throw unexpected(call + ": HTTP " + response.statusCode() + " without IdentSphere's error envelope", e);
        }
        Optional<Duration> retryAfter = response.headers().firstValue("Retry-After")
                .flatMap(value -> retryAfter(value, Clock.systemUTC()));
        return new IdentSphereException(response.statusCode(), error.string("code"),
                error.optionalString("type").orElse(""), error.optionalString("message").orElse(""),
                error.optionalString("param").orElse(null), response.headers().firstValue("X-Request-Id").orElse(null),
                retryAfter.orElse(null), null);
    }

    /** {@code Retry-After}: delay-seconds, or an HTTP date (RFC 9110 §10.2.3). */
    static Optional<Duration> retryAfter(String value, Clock clock) {
        String trimmed = value.trim();
        try {
            return Optional.of(Duration.ofSeconds(Long.parseLong(trimmed))).filter(d -> !d.isNegative());
        } catch (NumberFormatException notSeconds) {
            try {
                ZonedDateTime at = ZonedDateTime.parse(trimmed, DateTimeFormatter.RFC_1123_DATE_TIME);
                Duration wait = Duration.between(clock.instant(), at.toInstant());
                return Optional.of(wait.isNegative() ? Duration.ZERO : wait);
            } catch (DateTimeParseException notADate) {
                return Optional.empty();
            }
        }
    }

    /** Reads an answer into the SDK's records; a member missing or mistyped is an unexpected answer. */
    private static <R> R read(JsonObject json, Function<JsonObject, R> reader) {
        try {
            return reader.apply(json);
        } catch (JsonException | ArithmeticException | DateTimeException e) {
            throw unexpected(e.getMessage(), e);
        }
    }

    private static UncheckedIOException unexpected(String what, Exception cause) {
        return new UncheckedIOException(new IOException("unexpected answer from IdentSphere: " + what, cause));
    }
}
