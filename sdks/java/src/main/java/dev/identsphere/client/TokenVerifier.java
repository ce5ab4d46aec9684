package dev.identsphere.client;

import java.lang.System.Logger.Level;
import java.net.http.HttpClient;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.Signature;
import java.security.interfaces.RSAPublicKey;
import java.time.Clock;
import java.time.DateTimeException;
import java.time.Duration;
import java.util.Base64;
import java.util.Objects;

import dev.identsphere.client.Json.JsonException;

/**
 * Verifies IdentSphere access tokens locally, against the keys IdentSphere publishes in its JWKS.
 *
 * <pre>{@code
 * TokenVerifier verifier = TokenVerifier.builder("https://auth.example.com")
 *         .platformApiKey(System.getenv("IDENTSPHERE_PLATFORM_API_KEY"))
 *         .build();
 * Claims claims = verifier.verify(token); // or IdentSphereException: token_invalid, token_expired, …
 * }</pre>
 *
 * <p>The checks are IdentSphere's own: at most 8 KiB; header {@code alg: RS256} (anything else,
 * {@code none} and {@code HS256} included, is refused), {@code typ: JWT}, a {@code kid} of the JWKS and no
 * {@code crit}; the RSA signature; claim {@code typ: access} (refresh and mfa tokens are refused);
 * {@code iss} equal to the configured issuer; {@code exp} against the clock with the configured leeway;
 * then, with a platform API key, the revocation feed.
 *
 * <p>Build one per IdentSphere and share it: it is safe to use from any number of threads, which share
 * one key cache (see {@link Builder#jwksRefetchInterval(Duration)}) and one revocation list. With a
 * platform API key it runs a daemon thread that polls the feed; {@link #close()} stops it.
 */
public final class TokenVerifier implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger("dev.identsphere.client");
    /** The longest token accepted; anything larger is refused before any parsing, as IdentSphere does. */
    static final int MAX_TOKEN_LENGTH = 8 * 1024;

    private final String issuer;
    private final long leewaySeconds;
    private final Clock clock;
    private final Jwks jwks;
    private final Revocations revocations;

    private TokenVerifier(Builder builder, Http http) {
        this.issuer = builder.issuer != null ? builder.issuer : http.base;
        this.leewaySeconds = builder.leeway.toSeconds();
        this.clock = builder.clock;
        this.jwks = new Jwks(http, builder.jwksRefetchInterval);
        this.revocations = builder.platformApiKey == null ? null
                : new Revocations(http, builder.platformApiKey, builder.clock);
    }

    /**
     * A verifier with the defaults, without the revocation feed.
     *
     * @param baseUrl where IdentSphere is reached; also the issuer tokens must carry
     * @return the verifier, its keys fetched
     */
    public static TokenVerifier create(String baseUrl) {
        return builder(baseUrl).build();
    }

    /**
     * Starts configuring a verifier.
     *
     * @param baseUrl where IdentSphere is reached, e.g. {@code https://auth.example.com}: the JWKS is
     *     {@code <baseUrl>/.well-known/jwks.json}
     * @return the builder
     */
    public static Builder builder(String baseUrl) {
        return new Builder(baseUrl);
    }

    /** Configures a {@link TokenVerifier}; start with {@link TokenVerifier#builder(String)}. */
    public static final class Builder {
        private final String baseUrl;
        private String issuer;
        private Duration leeway = Duration.ZERO;
        private Clock clock = Clock.systemUTC();
        private HttpClient httpClient;
        private Duration connectTimeout = Http.DEFAULT_CONNECT_TIMEOUT;
        private Duration timeout = Duration.ofSeconds(5);
        private Duration jwksRefetchInterval = Duration.ofSeconds(30);
        private String platformApiKey;
        private Duration revocationPollInterval = Duration.ofSeconds(5);

        private Builder(String baseUrl) {
            this.baseUrl = baseUrl;
        }

        /**
         * The {@code iss} tokens must carry: IdentSphere's {@code IDENTSPHERE_PUBLIC_BASE_URL}. Default: the
         * base URL; set it when you reach IdentSphere at another address than its public one.
         *
         * @param issuer the issuer
         * @return this builder
         */
        public Builder issuer(String issuer) {
            this.issuer = Objects.requireNonNull(issuer, "issuer");
            return this;
        }

        /**
         * How long after its {@code exp} a token is still accepted, for clock skew (default 0, as IdentSphere).
         *
         * @param leeway the leeway, whole seconds
         * @return this builder
         */
        public Builder leeway(Duration leeway) {
            if (leeway.isNegative()) {
                throw new IllegalArgumentException("leeway must not be negative");
            }
            this.leeway = leeway;
            return this;
        }

        /**
         * The clock {@code exp} is compared with (default: the system's, UTC).
         *
         * @param clock the clock
         * @return this builder
         */
        public Builder clock(Clock clock) {
            this.clock = Objects.requireNonNull(clock, "clock");
            return this;
        }

        /**
         * The HTTP client for the JWKS and the feed. Default: one of the SDK's, HTTP/1.1 without redirects.
         *
         * @param httpClient the client
         * @return this builder
         */
        public Builder httpClient(HttpClient httpClient) {
            this.httpClient = Objects.requireNonNull(httpClient, "httpClient");
            return this;
        }

        /**
         * How long to wait for a connection (default 5 s); ignored with {@link #httpClient(HttpClient)}.
         *
         * @param connectTimeout the connect timeout
         * @return this builder
         */
        public Builder connectTimeout(Duration connectTimeout) {
            this.connectTimeout = IdentSphereClient.positive(connectTimeout, "connectTimeout");
            return this;
        }

        /**
         * How long one call to IdentSphere (a JWKS fetch, a page of the feed) may take (default 5 s).
         *
         * @param timeout the timeout
         * @return this builder
         */
        public Builder timeout(Duration timeout) {
            this.timeout = IdentSphereClient.positive(timeout, "timeout");
            return this;
        }

        /**
         * The least time between two JWKS fetches, whatever their cause (default 30 s): a token with an
         * unknown {@code kid} triggers a refetch at most this often, so a flood of forged {@code kid}s costs
         * one fetch per interval. The keys are refreshed anyway when the JWKS's {@code max-age} runs out.
         *
         * @param interval the interval
         * @return this builder
         */
        public Builder jwksRefetchInterval(Duration interval) {
            this.jwksRefetchInterval = IdentSphereClient.positive(interval, "jwksRefetchInterval");
            return this;
        }

        /**
         * The platform API key ({@code IDENTSPHERE_PLATFORM_API_KEY} on the server) that reads the revocation
         * feed. Without it the feed is off: a token revoked by a logout is accepted until it expires (a
         * warning says so at build).
         *
         * @param key the platform API key
         * @return this builder
         */
        public Builder platformApiKey(String key) {
            this.platformApiKey = Objects.requireNonNull(key, "platformApiKey");
            return this;
        }

        /**
         * How often the revocation feed is polled (default 5 s): a revoked token is refused within this
         * interval plus one round trip.
         *
         * @param interval the interval
         * @return this builder
         */
        public Builder revocationPollInterval(Duration interval) {
            this.revocationPollInterval = IdentSphereClient.positive(interval, "revocationPollInterval");
            return this;
        }

        /**
         * Builds the verifier: fetches the JWKS and, with a platform API key, the revocation feed once, then
         * starts polling it. A failure to reach IdentSphere is logged, not thrown: it may come up later, and
         * until it does every token is refused with {@code 503 service_unavailable}.
         *
         * @return the verifier
         * @throws IllegalArgumentException if the base URL is not an {@code http(s)://} URL
         */
        public TokenVerifier build() {
            HttpClient client = httpClient != null ? httpClient : Http.defaultClient(connectTimeout);
            TokenVerifier verifier = new TokenVerifier(this, new Http(Http.baseUrl(baseUrl), client, timeout));
            verifier.jwks.refetch();
            if (verifier.revocations == null) {
                LOG.log(Level.WARNING, "no IdentSphere platform API key: the revocation feed is off, so a revoked "
                        + "token is accepted until it expires");
            } else {
                verifier.revocations.start(revocationPollInterval);
            }
            return verifier;
        }
    }

    /**
     * The issuer tokens must carry.
     *
     * @return the issuer
     */
    public String issuer() {
        return issuer;
    }

    /**
     * Verifies an access token.
     *
     * @param token the compact JWT, without {@code Bearer}
     * @return its claims
     * @throws IdentSphereException {@code 401 token_invalid} for anything but a well-formed access token
     *     signed by a published key of this issuer; {@code 401 token_expired} once {@code exp} (plus the
     *     leeway) has passed; {@code 401 token_revoked} when the revocation feed lists its {@code jti} or
     *     {@code sid}; {@code 503 service_unavailable} when no key could ever be fetched
     */
    public Claims verify(String token) {
        if (token == null || token.length() > MAX_TOKEN_LENGTH) {
            throw IdentSphereException.refusal(ErrorCodes.TOKEN_INVALID);
        }
        int firstDot = token.indexOf('.');
        int secondDot = token.indexOf('.', firstDot + 1);
        if (firstDot < 0 || secondDot < 0 || token.indexOf('.', secondDot + 1) >= 0) {
            throw IdentSphereException.refusal(ErrorCodes.TOKEN_INVALID);
        }
        String kid = keyId(token.substring(0, firstDot));
        Jwks.KeySet keys = jwks.current();
        RSAPublicKey key = keys.keys().get(kid);
        if (key == null) {
            keys = jwks.refetch();
            key = keys.keys().get(kid);
        }
        if (key == null) {
            throw keys.loaded() ? IdentSphereException.refusal(ErrorCodes.TOKEN_INVALID)
                    : IdentSphereException.unavailable(null);
        }
        if (!signedBy(key, token, secondDot)) {
            throw IdentSphereException.refusal(ErrorCodes.TOKEN_INVALID);
        }
        Claims claims;
        try {
            claims = Claims.from(Json.parseObject(decode(token.substring(firstDot + 1, secondDot))));
        } catch (JsonException | IllegalArgumentException | DateTimeException e) {
            throw IdentSphereException.refusal(ErrorCodes.TOKEN_INVALID);
        }
        if (!"access".equals(claims.typ()) || !claims.iss().filter(issuer::equals).isPresent()) {
            throw IdentSphereException.refusal(ErrorCodes.TOKEN_INVALID);
        }
        long now = clock.instant().getEpochSecond();
        if (now >= claims.exp().getEpochSecond() + leewaySeconds) {
            throw IdentSphereException.refusal(ErrorCodes.TOKEN_EXPIRED);
        }
        if (revocations != null && revocations.revoked(claims, now)) {
            throw IdentSphereException.refusal(ErrorCodes.TOKEN_REVOKED);
        }
        return claims;
    }

    /** The {@code kid} of a header that IdentSphere could have written; a refusal for any other header. */
    private static String keyId(String encodedHeader) {
        try {
            JsonObject header = Json.parseObject(decode(encodedHeader));
            boolean ours = header.optionalString("alg").filter("RS256"::equals).isPresent()
                    && header.optionalString("typ").filter("JWT"::equals).isPresent()
                    // A critical extension is one this verifier cannot honour (RFC 7515 §4.1.11).
                    && !header.members().containsKey("crit");
            String kid = header.optionalString("kid").orElse("");
            if (ours && !kid.isEmpty()) {
                return kid;
            }
        } catch (JsonException | IllegalArgumentException e) {
            // Falls through to the refusal: not base64url, not JSON, or a member of the wrong type.
        }
        throw IdentSphereException.refusal(ErrorCodes.TOKEN_INVALID);
    }

    private static boolean signedBy(RSAPublicKey key, String token, int signingInputEnd) {
        try {
            // A Signature is stateful, so one per call; getInstance is cheap next to the RSA operation.
            Signature rsa = Signature.getInstance("SHA256withRSA");
            rsa.initVerify(key);
            rsa.update(token.substring(0, signingInputEnd).getBytes(StandardCharsets.US_ASCII));
            return rsa.verify(Base64.getUrlDecoder().decode(token.substring(signingInputEnd + 1)));
        } catch (GeneralSecurityException | IllegalArgumentException e) {
            return false;
        }
    }

    private static String decode(String part) {
        return new String(Base64.getUrlDecoder().decode(part), StandardCharsets.UTF_8);
    }

    /** Stops polling the revocation feed; tokens are still verified, without it. */
    @Override
    public void close() {
        if (revocations != null) {
            revocations.close();
        }
    }
}
