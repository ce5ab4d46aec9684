package dev.identsphere.client;

import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Objects;
import java.util.Properties;

/**
 * How the SDK reaches IdentSphere: one {@link HttpClient}, a timeout on every request, the SDK's
 * {@code User-Agent}. Shared by the client, the JWKS cache and the revocation poller; it never retries
 * (a sign-in or a refresh is not idempotent) and never logs a request, which may carry a secret.
 */
final class Http {
    /** {@code identsphere-java/<version>}, the version filtered in from the POM at build time. */
    static final String USER_AGENT = "identsphere-java/" + version();

    static final Duration DEFAULT_CONNECT_TIMEOUT = Duration.ofSeconds(5);
    static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(10);

    final String base;
    final HttpClient client;
    final Duration timeout;

    Http(String base, HttpClient client, Duration timeout) {
        this.base = base;
        this.client = client;
        this.timeout = timeout;
    }

    /**
     * The client the SDK builds when none is supplied: HTTP/1.1 (IdentSphere's calls are small, and an
     * {@code h2c} upgrade on plain {@code http://} only adds a round of negotiation) and no redirects: a
     * redirected JWKS or token answer is not IdentSphere's.
     */
    static HttpClient defaultClient(Duration connectTimeout) {
        return HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(connectTimeout)
                .followRedirects(HttpClient.Redirect.NEVER).build();
    }

    /**
     * {@code http://} or {@code https://} URL without a trailing slash.
     *
     * @throws IllegalArgumentException for anything else
     */
    static String baseUrl(String url) {
        Objects.requireNonNull(url, "baseUrl");
        String base = url.endsWith("/") ? url.substring(0, url.length() - 1) : url;
        URI uri;
        try {
            uri = URI.create(base);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("not a URL: " + url, e);
        }
        if (!("http".equals(uri.getScheme()) || "https".equals(uri.getScheme())) || uri.getHost() == null) {
            throw new IllegalArgumentException("the IdentSphere base URL must be http:// or https://: " + url);
        }
        return base;
    }

    /** A request to {@code path} under the base URL, with the timeout and the SDK's headers. */
    HttpRequest.Builder request(String path) {
        return HttpRequest.newBuilder(URI.create(base + path)).timeout(timeout).header("User-Agent", USER_AGENT)
                .header("Accept", "application/json");
    }

    /**
     * Sends and reads the answer as text.
     *
     * @throws UncheckedIOException when IdentSphere cannot be reached or does not answer in time
     *     ({@link java.net.http.HttpTimeoutException} inside); when the thread is interrupted, with an
     *     {@link InterruptedIOException} inside and the interrupt flag set again
     */
    HttpResponse<String> send(HttpRequest request) {
        try {
            return client.send(request, HttpResponse.BodyHandlers.ofString());
        } catch (IOException e) {
            throw new UncheckedIOException(request.method() + " " + request.uri().getPath() + ": " + e, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            InterruptedIOException interrupted = new InterruptedIOException("interrupted while waiting for IdentSphere");
            interrupted.initCause(e);
            throw new UncheckedIOException(interrupted);
        }
    }

    private static String version() {
        Properties properties = new Properties();
        try (InputStream in = Http.class.getResourceAsStream("version.properties")) {
            if (in != null) {
                properties.load(in);
            }
        } catch (IOException e) {
            // The version only decorates the User-Agent: its absence must not stop the SDK.
        }
        return properties.getProperty("version", "unknown");
    }
}
