package dev.identsphere.client;

import java.lang.System.Logger.Level;
import java.math.BigInteger;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.interfaces.RSAPublicKey;
import java.security.spec.RSAPublicKeySpec;
import java.time.Duration;
import java.util.Base64;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;

import dev.identsphere.client.Json.JsonException;

/**
 * IdentSphere's public keys, fetched from the JWKS and shared by every verifying thread.
 *
 * <p>The key set is kept as long as the answer's {@code Cache-Control: max-age} says (five minutes when it
 * says nothing), then refreshed in the background while verification goes on with the keys it has. A
 * token whose {@code kid} is unknown (a key rotation) may trigger a refetch, but a fetch of any cause
 * starts at most once per refetch interval, and at most one is in flight: threads that need keys while
 * one runs wait for it instead of starting their own, so a flood of forged {@code kid}s costs one fetch
 * per interval. A failed fetch keeps the keys in use. It verifies nothing itself.
 */
final class Jwks {
    private static final System.Logger LOG = System.getLogger("dev.identsphere.client");
    /** Used when the answer has no usable {@code max-age}: IdentSphere's own value. */
    static final Duration DEFAULT_MAX_AGE = Duration.ofMinutes(5);
    /** The longest a key set is trusted without asking again, whatever the server says. */
    private static final Duration MAX_MAX_AGE = Duration.ofHours(24);
    /**
     * The least time between fetches while no key set was ever fetched: then every token is refused
     * with {@code 503}, so retrying sooner than the refetch interval matters, and once a second still
     * bounds what a flood costs.
     */
    private static final long UNLOADED_RETRY_NANOS = Duration.ofSeconds(1).toNanos();
    /** Weaker keys than this are left out of the set: IdentSphere signs with 2048-bit keys. */
    private static final int MIN_MODULUS_BITS = 2048;

    /** One fetched key set, immutable. */
    record KeySet(Map<String, RSAPublicKey> keys, long freshUntilNanos, boolean loaded) {
        static final KeySet NONE = new KeySet(Map.of(), 0, false);
    }

    private final Http http;
    private final long refetchIntervalNanos;
    private volatile KeySet current = KeySet.NONE;

    private final Object lock = new Object();
    /** The fetch running now, if any. Guarded by {@link #lock}. */
    private CompletableFuture<KeySet> inFlight;
    /** When the last fetch started ({@link System#nanoTime()}); guarded by {@link #lock}. */
    private long lastAttemptNanos;
    private boolean attempted;

    Jwks(Http http, Duration refetchInterval) {
        this.http = http;
        this.refetchIntervalNanos = refetchInterval.toNanos();
    }

    /** The keys in use now; when their {@code max-age} has run out, a refresh starts in the background. */
    KeySet current() {
        KeySet set = current;
        if (set.loaded() && System.nanoTime() - set.freshUntilNanos() >= 0) {
            start();
        }
        return set;
    }

    /**
     * The keys after a fetch for a {@code kid} the current set lacks: waits for the fetch in flight, or
     * starts one if the interval allows, else returns the current keys at once.
     */
    KeySet refetch() {
        CompletableFuture<KeySet> fetch = start();
        return fetch == null ? current : fetch.join();
    }

    /** The fetch in flight, or a new one if the interval allows; {@code null} when neither. */
    private CompletableFuture<KeySet> start() {
        CompletableFuture<KeySet> fetch;
        synchronized (lock) {
            if (inFlight != null) {
                return inFlight;
            }
            long now = System.nanoTime();
            long gap = current.loaded() ? refetchIntervalNanos : UNLOADED_RETRY_NANOS;
            if (attempted && now - lastAttemptNanos < gap) {
                return null;
            }
            attempted = true;
            lastAttemptNanos = now;
            fetch = new CompletableFuture<>();
            inFlight = fetch;
        }
        // Sent outside the lock, so a slow IdentSphere holds up only the threads that need its answer.
        HttpRequest request = http.request("/.well-known/jwks.json").GET().build();
        http.client.sendAsync(request, HttpResponse.BodyHandlers.ofString()).whenComplete((response, error) -> {
            try {
                KeySet set = error == null ? read(response) : failed(unwrap(error).toString());
                if (set != null) {
                    current = set;
                }
            } finally {
                // Whatever happened, the waiting threads go on with the keys there are.
                synchronized (lock) {
                    inFlight = null;
                }
                fetch.complete(current);
            }
        });
        return fetch;
    }

    private KeySet read(HttpResponse<String> response) {
        if (response.statusCode() != 200) {
            return failed("HTTP " + response.statusCode());
        }
        try {
            Map<String, RSAPublicKey> keys = rs256Keys(Json.parseObject(response.body()));
            Duration maxAge = response.headers().firstValue("Cache-Control").map(Jwks::maxAge)
                    .orElse(DEFAULT_MAX_AGE);
            long freshNanos = Math.max(Math.min(maxAge.toNanos(), MAX_MAX_AGE.toNanos()), refetchIntervalNanos);
            return new KeySet(keys, System.nanoTime() + freshNanos, true);
        } catch (JsonException e) {
            return failed("not a JWKS: " + e.getMessage());
        }
    }

    private static KeySet failed(String why) {
        LOG.log(Level.WARNING, "could not fetch the IdentSphere JWKS ({0}); keeping the keys in use", why);
        return null;
    }

    private static Throwable unwrap(Throwable error) {
        return error instanceof CompletionException && error.getCause() != null ? error.getCause() : error;
    }

    /** The RSA signing keys of a JWKS usable with RS256, by {@code kid}; every other key is left out. */
    static Map<String, RSAPublicKey> rs256Keys(JsonObject jwks) {
        Map<String, RSAPublicKey> keys = new HashMap<>();
        for (JsonObject jwk : jwks.objects("keys")) {
            boolean rsa = jwk.optionalString("kty").filter("RSA"::equals).isPresent();
            boolean rs256 = jwk.optionalString("alg").map("RS256"::equals).orElse(true);
            boolean signing = jwk.optionalString("use").map("sig"::equals).orElse(true);
            if (!rsa || !rs256 || !signing || jwk.optionalString("kid").isEmpty()) {
                continue;
            }
            try {
                BigInteger n = new BigInteger(1, Base64.getUrlDecoder().decode(jwk.string("n")));
                BigInteger e = new BigInteger(1, Base64.getUrlDecoder().decode(jwk.string("e")));
                if (n.bitLength() < MIN_MODULUS_BITS) {
                    continue;
                }
                RSAPublicKey key = (RSAPublicKey) KeyFactory.getInstance("RSA")
                        .generatePublic(new RSAPublicKeySpec(n, e));
                keys.put(jwk.string("kid"), key);
            } catch (IllegalArgumentException | GeneralSecurityException malformed) {
                // One bad key must not hide the good ones.
            }
        }
        return Map.copyOf(keys);
    }

    /** {@code max-age} of a {@code Cache-Control} value; {@code no-store} and {@code no-cache} count as zero. */
    static Duration maxAge(String value) {
        Duration age = DEFAULT_MAX_AGE;
        for (String directive : value.split(",")) {
            String d = directive.trim().toLowerCase(Locale.ROOT);
            if (d.equals("no-store") || d.equals("no-cache")) {
                return Duration.ZERO;
            }
            if (d.startsWith("max-age=")) {
                try {
                    age = Duration.ofSeconds(Long.parseLong(d.substring("max-age=".length()).replace("\"", "")));
                } catch (NumberFormatException ignored) {
                    // An unreadable max-age is no max-age: the default applies.
                }
            }
        }
        return age;
    }
}
