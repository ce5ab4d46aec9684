package dev.identsphere.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import org.apache.catalina.Context;
import org.apache.catalina.LifecycleException;
import org.apache.catalina.startup.Tomcat;
import org.apache.tomcat.util.descriptor.web.FilterDef;
import org.apache.tomcat.util.descriptor.web.FilterMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;

/**
 * Both filters on real servers, driven over HTTP: the Servlet filter in an embedded Tomcat 10.1 (Debian's
 * libtomcat10-java, Servlet 6.0), the HttpServer filter in the JDK's own server. Each app has the same three
 * routes: {@code /me} (a valid token), {@code /aal2/…} (a second factor) and {@code /org/…} (one
 * organization), whose handler answers {@code <sub> <aal>} from the claims the filter handed it.
 */
@ExtendWith(SharedServer.class)
class FiltersTest {
    /** A running app protected by one of the filters, at {@code url}; {@code stop} stops it. */
    private record App(String url, Runnable stop) implements AutoCloseable {
        @Override
        public void close() {
            stop.run();
        }
    }

    @Test
    void the_servlet_filter_in_tomcat_answers_as_identsphere_would(TestServer server) throws Exception {
        Fixture fixture = new Fixture(server);
        try (TokenVerifier verifier = server.verifier().build(); App app = tomcat(verifier, fixture.organization)) {
            fixture.check(app);
        }
    }

    @Test
    void the_httpserver_filter_answers_as_identsphere_would_and_keeps_each_request_s_claims_its_own(
            TestServer server) throws Exception {
        Fixture fixture = new Fixture(server);
        try (TokenVerifier verifier = server.verifier().build(); App app = jdkServer(verifier, fixture.organization)) {
            fixture.check(app);
            // The JDK shares exchange attributes across a context: under load, no request may see another's user.
            ExecutorService pool = Executors.newFixedThreadPool(16);
            try {
                List<Future<Boolean>> answers = new ArrayList<>();
                for (int i = 0; i < 400; i++) {
                    TokenResponse user = i % 2 == 0 ? fixture.user : fixture.stranger;
                    answers.add(pool.submit(() -> send(app, "GET", "/me", bearer(user.accessToken())).body()
                            .startsWith(user.user().id() + " ")));
                }
                for (Future<Boolean> answer : answers) {
                    assertTrue(answer.get(), "each request sees its own claims");
                }
            } finally {
                pool.shutdownNow();
            }
        }
    }

    /** The users and tokens both apps are checked with. */
    private static final class Fixture {
        final TokenResponse user;
        final TokenResponse aal2;
        final TokenResponse stranger;
        final String organization;

        Fixture(TestServer server) {
            user = server.signUp();
            aal2 = server.enrollTotp(server.signUp()).tokens();
            stranger = server.signUp();
            organization = user.session().organizationId();
        }

        void check(App app) {
            String token = user.accessToken();
            String[] none = {};
            assertRefusal(send(app, "GET", "/me", none), 401, "token_missing");
            HttpResponse<String> ok = send(app, "GET", "/me", bearer(token));
            assertEquals(200, ok.statusCode(), ok.body());
            assertEquals(user.user().id() + " AAL1", ok.body());

            assertRefusal(send(app, "GET", "/me", bearer("not-a-jwt")), 401, "token_invalid");
            assertRefusal(send(app, "GET", "/me", bearer(user.refreshToken())), 401, "token_invalid");
            assertRefusal(send(app, "GET", "/me", "Authorization", "Basic YTpi"), 401, "token_missing");

            String cookie = "theme=dark; identsphere_at=" + token;
            assertEquals(200, send(app, "GET", "/me", "Cookie", cookie).statusCode());
            assertEquals(200, send(app, "POST", "/me", "Cookie", cookie, "Origin", app.url()).statusCode());
            assertRefusal(send(app, "POST", "/me", "Cookie", cookie, "Origin", "https://evil.example"), 403,
                    "csrf_rejected");
            assertRefusal(send(app, "POST", "/me", "Cookie", cookie, "Sec-Fetch-Site", "cross-site"), 403,
                    "csrf_rejected");
            assertEquals(200, send(app, "POST", "/me", "Authorization", "Bearer " + token, "Origin",
                    "https://evil.example").statusCode(), "a bearer token is no CSRF risk");

            assertRefusal(send(app, "GET", "/aal2/x", bearer(token)), 403, "insufficient_aal");
            assertEquals(aal2.user().id() + " AAL2", send(app, "GET", "/aal2/x", bearer(aal2.accessToken())).body());

            assertEquals(200, send(app, "GET", "/org/x", bearer(token)).statusCode());
            assertRefusal(send(app, "GET", "/org/x", bearer(stranger.accessToken())), 403, "not_a_member");
        }
    }

    private static String[] bearer(String token) {
        return new String[] {"Authorization", "Bearer " + token};
    }

    private static HttpResponse<String> send(App app, String method, String path, String... headers) {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(app.url() + path))
                .method(method, HttpRequest.BodyPublishers.noBody());
        if (headers.length > 0) {
            request.headers(headers);
        }
        return TestServer.send(request.build());
    }

    /** IdentSphere's error envelope, with its status and the headers IdentSphere sends with it. */
    private static void assertRefusal(HttpResponse<String> response, int status, String code) {
        assertEquals(status, response.statusCode(), response.body());
        assertEquals("application/json", response.headers().firstValue("Content-Type").orElse("")
                .replace(";charset=UTF-8", ""));
        JsonObject error = Json.parseObject(response.body()).object("error");
        assertEquals(code, error.string("code"));
        assertTrue(!error.string("message").isEmpty() && !error.string("type").isEmpty(), response.body());
        assertEquals(status == 401, response.headers().firstValue("WWW-Authenticate").isPresent());
    }

    /** What the handlers answer: {@code <sub> <aal>} of the claims the filter handed them. */
    private static String describe(Object claims) {
        Claims c = (Claims) claims;
        return c.sub() + " " + c.aal().orElseThrow();
    }

    private static App jdkServer(TokenVerifier verifier, String organization) throws IOException {
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.setExecutor(Executors.newFixedThreadPool(8));
        route(server, "/me", new IdentSphereHttpFilter(verifier));
        route(server, "/aal2", new IdentSphereHttpFilter(verifier, FilterOptions.defaults().requireAal2()));
        route(server, "/org", new IdentSphereHttpFilter(verifier, FilterOptions.defaults().requireOrganization(organization)));
        server.start();
        return new App("http://127.0.0.1:" + server.getAddress().getPort(), () -> {
            server.stop(0);
            ((ExecutorService) server.getExecutor()).shutdownNow();
        });
    }

    private static void route(HttpServer server, String path, IdentSphereHttpFilter filter) {
        server.createContext(path, (HttpExchange exchange) -> {
            // Some work before the claims are read, as a real handler does: time for another request to
            // overwrite them, were they kept where the JDK keeps exchange attributes.
            TestServer.sleep(java.time.Duration.ofMillis(2));
            byte[] body = describe(exchange.getAttribute(Claims.ATTRIBUTE)).getBytes(StandardCharsets.UTF_8);
            exchange.sendResponseHeaders(200, body.length);
            try (exchange) {
                exchange.getResponseBody().write(body);
            }
        }).getFilters().add(filter);
    }

    private static App tomcat(TokenVerifier verifier, String organization) throws IOException, LifecycleException {
        Path base = Files.createTempDirectory("identsphere-sdk-java-tomcat-");
        Tomcat tomcat = new Tomcat();
        tomcat.setBaseDir(base.toString());
        tomcat.setHostname("127.0.0.1");
        tomcat.setPort(0);
        tomcat.getConnector().setProperty("address", "127.0.0.1");
        Context context = tomcat.addContext("", base.toString());
        Tomcat.addServlet(context, "claims", new HttpServlet() {
            private static final long serialVersionUID = 1L;

            @Override
            protected void service(HttpServletRequest request, HttpServletResponse response) throws IOException {
                response.getWriter().write(describe(request.getAttribute(Claims.ATTRIBUTE)));
            }
        }).addMapping("/*");
        filter(context, "/me", new IdentSphereServletFilter(verifier));
        filter(context, "/aal2/*", new IdentSphereServletFilter(verifier, FilterOptions.defaults().requireAal2()));
        filter(context, "/org/*", new IdentSphereServletFilter(verifier,
                FilterOptions.defaults().requireOrganization(organization)));
        tomcat.start();
        return new App("http://127.0.0.1:" + tomcat.getConnector().getLocalPort(), () -> {
            try {
                tomcat.stop();
                tomcat.destroy();
            } catch (LifecycleException e) {
                throw new IllegalStateException(e);
            }
            TestServer.deleteTree(base);
        });
    }

    private static void filter(Context context, String pattern, IdentSphereServletFilter filter) {
        FilterDef definition = new FilterDef();
        definition.setFilterName(pattern);
        definition.setFilter(filter);
        context.addFilterDef(definition);
        FilterMap mapping = new FilterMap();
        mapping.setFilterName(pattern);
        mapping.addURLPattern(pattern);
        context.addFilterMap(mapping);
    }
}
