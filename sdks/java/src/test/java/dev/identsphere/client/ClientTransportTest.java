package dev.identsphere.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.http.HttpClient;
import java.net.http.HttpTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import com.sun.net.httpserver.Headers;
import com.sun.net.httpserver.HttpServer;

/**
 * What the client does on the wire when the other side is not a healthy IdentSphere: a hung server, a
 * proxy's error page, a redirect, nobody listening. A plain JDK HttpServer plays that other side; it says
 * nothing of IdentSphere's API, which the suite checks against the real server.
 */
class ClientTransportTest {
    private HttpServer server;
    private String url;
    private final List<Headers> requests = new CopyOnWriteArrayList<>();

    @BeforeEach
    void start() throws IOException {
        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.createContext("/", exchange -> {
            requests.add(exchange.getRequestHeaders());
            String path = exchange.getRequestURI().getPath();
            try (exchange) {
                switch (path) {
                    case "/slow/v1/auth/logout" -> {
                        TestServer.sleep(Duration.ofSeconds(2));
                        exchange.sendResponseHeaders(204, -1);
                    }
                    case "/proxy/v1/auth/logout" -> answer(exchange, 502, "text/html", "<h1>Bad Gateway</h1>");
                    case "/moved/v1/auth/logout" -> {
                        exchange.getResponseHeaders().set("Location", "/ok/v1/auth/logout");
                        exchange.sendResponseHeaders(307, -1);
                    }
                    case "/failing/v1/auth/login" -> {
                        exchange.getResponseHeaders().set("X-Request-Id", "req-1");
                        exchange.getResponseHeaders().set("Retry-After", "7");
                        answer(exchange, 503, "application/json", "{\"error\":{\"code\":\"service_unavailable\","
                                + "\"message\":\"down\",\"type\":\"api_error\"}}");
                    }
                    default -> exchange.sendResponseHeaders(204, -1);
                }
            }
        });
        server.start();
        url = "http://127.0.0.1:" + server.getAddress().getPort();
    }

    private static void answer(com.sun.net.httpserver.HttpExchange exchange, int status, String type, String body)
            throws IOException {
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        exchange.getResponseHeaders().set("Content-Type", type);
        exchange.sendResponseHeaders(status, bytes.length);
        exchange.getResponseBody().write(bytes);
    }

    @AfterEach
    void stop() {
        server.stop(0);
    }

    @Test
    void every_call_names_the_sdk_and_asks_for_json() {
        IdentSphereClient.create(url + "/ok/").logout("token");
        Headers sent = requests.get(0);
        assertEquals("identsphere-java/0.1.0", sent.getFirst("User-Agent"));
        assertEquals("application/json", sent.getFirst("Accept"));
        assertEquals("application/json", sent.getFirst("Content-Type"));
        assertEquals("Bearer token", sent.getFirst("Authorization"));
    }

    @Test
    void a_call_that_outlasts_the_timeout_fails_with_the_timeout_inside() {
        IdentSphereClient client = IdentSphereClient.builder(url + "/slow").timeout(Duration.ofMillis(300)).build();
        Instant started = Instant.now();
        UncheckedIOException failure = assertThrows(UncheckedIOException.class, () -> client.logout("token"));
        assertInstanceOf(HttpTimeoutException.class, failure.getCause());
        assertTrue(Duration.between(started, Instant.now()).toMillis() < 1500, "the timeout cut the call short");
    }

    @Test
    void nobody_listening_is_an_io_failure_not_a_refusal() throws IOException {
        IdentSphereClient client = IdentSphereClient.create("http://127.0.0.1:" + TestServer.freePort());
        UncheckedIOException failure = assertThrows(UncheckedIOException.class, () -> client.logout("token"));
        assertInstanceOf(ConnectException.class, failure.getCause());
    }

    @Test
    void an_answer_without_the_error_envelope_is_an_io_failure_naming_the_status() {
        UncheckedIOException failure = assertThrows(UncheckedIOException.class,
                () -> IdentSphereClient.create(url + "/proxy").logout("token"));
        assertTrue(failure.getMessage().contains("HTTP 502"), failure.getMessage());
    }

    @Test
    void a_refusal_is_read_with_its_request_id_and_retry_after_and_never_retried() {
        IdentSphereClient client = IdentSphereClient.create(url + "/failing");
        IdentSphereException refusal = assertThrows(IdentSphereException.class, () -> client.login("a@b.c", "pw"));
        assertEquals(503, refusal.getStatus());
        assertEquals(ErrorCodes.SERVICE_UNAVAILABLE, refusal.getCode());
        assertEquals(Optional.of("req-1"), refusal.getRequestId());
        assertEquals(Optional.of(Duration.ofSeconds(7)), refusal.getRetryAfter());
        assertEquals(1, requests.size(), "a sign-in is sent once");
    }

    @Test
    void redirects_are_not_followed_unless_the_supplied_client_follows_them() {
        assertThrows(UncheckedIOException.class, () -> IdentSphereClient.create(url + "/moved").logout("token"));
        HttpClient following = HttpClient.newBuilder().followRedirects(HttpClient.Redirect.ALWAYS).build();
        IdentSphereClient.builder(url + "/moved").httpClient(following).build().logout("token");
        assertEquals(3, requests.size(), "the supplied client followed the redirect");
    }

    @Test
    void retry_after_is_read_as_seconds_or_as_an_http_date() {
        Clock clock = Clock.fixed(Instant.parse("2026-12-03T10:00:00Z"), ZoneOffset.UTC);
        assertEquals(Optional.of(Duration.ofSeconds(120)), IdentSphereClient.retryAfter("120", clock));
        assertEquals(Optional.of(Duration.ofSeconds(90)),
                IdentSphereClient.retryAfter("Thu, 03 Dec 2026 10:01:30 GMT", clock));
        assertEquals(Optional.of(Duration.ZERO), IdentSphereClient.retryAfter("Thu, 03 Dec 2026 09:00:00 GMT", clock));
        assertEquals(Optional.empty(), IdentSphereClient.retryAfter("soon", clock));
    }

    @Test
    void a_base_url_must_be_http_or_https() {
        for (String bad : List.of("ftp://auth.example.com", "auth.example.com", "http://", "not a url")) {
            assertThrows(IllegalArgumentException.class, () -> IdentSphereClient.create(bad), bad);
            assertThrows(IllegalArgumentException.class, () -> TokenVerifier.create(bad), bad);
        }
    }
}
