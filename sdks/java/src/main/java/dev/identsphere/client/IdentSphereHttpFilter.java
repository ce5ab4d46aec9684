package dev.identsphere.client;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

import com.sun.net.httpserver.Filter;
import com.sun.net.httpserver.Headers;
import com.sun.net.httpserver.HttpContext;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpPrincipal;

/**
 * A filter for the JDK's own {@link com.sun.net.httpserver.HttpServer} that lets through only requests with
 * a valid IdentSphere access token, and hands the handler its {@link Claims} as the exchange attribute
 * {@value Claims#ATTRIBUTE}:
 *
 * <pre>{@code
 * HttpContext api = server.createContext("/api", handler);
 * api.getFilters().add(new IdentSphereHttpFilter(verifier));
 * // in the handler:
 * Claims claims = (Claims) exchange.getAttribute(Claims.ATTRIBUTE);
 * }</pre>
 *
 * <p>Token, refusals and options are those of {@link IdentSphereServletFilter}.
 *
 * <p>The JDK keeps {@link HttpExchange#setAttribute exchange attributes} in the context, shared by every
 * request to it, so claims set there would show one request's user to another. The filter therefore
 * hands the handler a view of the exchange that carries this request's claims itself and passes
 * everything else through. That view is a plain {@link HttpExchange}: behind an {@code HttpsServer} it
 * cannot be cast to {@code HttpsExchange}.
 */
public final class IdentSphereHttpFilter extends Filter {
    private final RequestGuard guard;

    /**
     * A filter that requires a valid access token.
     *
     * @param verifier the verifier, shared with the rest of the application
     */
    public IdentSphereHttpFilter(TokenVerifier verifier) {
        this(verifier, FilterOptions.defaults());
    }

    /**
     * A filter with requirements beyond a valid access token.
     *
     * @param verifier the verifier, shared with the rest of the application
     * @param options what else it requires
     */
    public IdentSphereHttpFilter(TokenVerifier verifier, FilterOptions options) {
        this.guard = new RequestGuard(verifier, options);
    }

    @Override
    public String description() {
        return "IdentSphere access-token verification";
    }

    /** Verifies the request's token; passes it on with its claims, or answers the refusal. */
    @Override
    public void doFilter(HttpExchange exchange, Chain chain) throws IOException {
        Claims claims;
        try {
            Headers headers = exchange.getRequestHeaders();
            claims = guard.authenticate(exchange.getRequestMethod(),
                    name -> headers.getOrDefault(name, List.of()));
        } catch (IdentSphereException refusal) {
            try (exchange) {
                for (Map.Entry<String, String> header : RequestGuard.refusalHeaders(refusal).entrySet()) {
                    exchange.getResponseHeaders().set(header.getKey(), header.getValue());
                }
                byte[] body = refusal.envelope().getBytes(StandardCharsets.UTF_8);
                exchange.sendResponseHeaders(refusal.getStatus(), body.length);
                exchange.getResponseBody().write(body);
            }
            return;
        }
        chain.doFilter(new Verified(exchange, claims));
    }

    /** The exchange with this request's claims as an attribute of its own; the rest is the original's. */
    private static final class Verified extends HttpExchange {
        private final HttpExchange exchange;
        private final Claims claims;

        Verified(HttpExchange exchange, Claims claims) {
            this.exchange = exchange;
            this.claims = claims;
        }

        @Override
        public Object getAttribute(String name) {
            return Claims.ATTRIBUTE.equals(name) ? claims : exchange.getAttribute(name);
        }

        @Override
        public void setAttribute(String name, Object value) {
            exchange.setAttribute(name, value);
        }

        @Override
        public Headers getRequestHeaders() {
            return exchange.getRequestHeaders();
        }

        @Override
        public Headers getResponseHeaders() {
            return exchange.getResponseHeaders();
        }

        @Override
        public URI getRequestURI() {
            return exchange.getRequestURI();
        }

        @Override
        public String getRequestMethod() {
            return exchange.getRequestMethod();
        }

        @Override
        public HttpContext getHttpContext() {
            return exchange.getHttpContext();
        }

        @Override
        public void close() {
            exchange.close();
        }

        @Override
        public InputStream getRequestBody() {
            return exchange.getRequestBody();
        }

        @Override
        public OutputStream getResponseBody() {
            return exchange.getResponseBody();
        }

        @Override
        public void sendResponseHeaders(int code, long length) throws IOException {
            exchange.sendResponseHeaders(code, length);
        }

        @Override
        public InetSocketAddress getRemoteAddress() {
            return exchange.getRemoteAddress();
        }

        @Override
        public int getResponseCode() {
            return exchange.getResponseCode();
        }

        @Override
        public InetSocketAddress getLocalAddress() {
            return exchange.getLocalAddress();
        }

        @Override
        public String getProtocol() {
            return exchange.getProtocol();
        }

        @Override
        public void setStreams(InputStream in, OutputStream out) {
            exchange.setStreams(in, out);
        }

        @Override
        public HttpPrincipal getPrincipal() {
            return exchange.getPrincipal();
        }
    }
}
