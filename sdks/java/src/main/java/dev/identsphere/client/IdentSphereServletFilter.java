package dev.identsphere.client;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Map;
import java.util.Optional;

import jakarta.servlet.Filter;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.ServletRequest;
import jakarta.servlet.ServletResponse;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;

/**
 * A Jakarta Servlet filter (Servlet 5.0 or later: Tomcat 10+, Jetty 11+, Spring Boot 3) that lets through
 * only requests with a valid IdentSphere access token, and hands the handler its {@link Claims} as the
 * request attribute {@value Claims#ATTRIBUTE}:
 *
 * <pre>{@code
 * context.addFilter("identsphere", new IdentSphereServletFilter(verifier)).addMappingForUrlPatterns(null, false, "/api/*");
 * // in a servlet:
 * Claims claims = (Claims) request.getAttribute(Claims.ATTRIBUTE);
 * }</pre>
 *
 * <p>The token is read from {@code Authorization: Bearer …}, else from the {@code identsphere_at} cookie.
 * A refusal is answered here, in IdentSphere's error envelope and status: {@code 401 token_missing},
 * {@code token_invalid}, {@code token_expired}, {@code token_revoked}; {@code 403 insufficient_aal},
 * {@code not_a_member} or {@code csrf_rejected} per the {@link FilterOptions}; {@code 503
 * service_unavailable} while no key of IdentSphere's could be fetched.
 */
public final class IdentSphereServletFilter implements Filter {
    private final RequestGuard guard;

    /**
     * A filter that requires a valid access token.
     *
     * @param verifier the verifier, shared with the rest of the application
     */
    public IdentSphereServletFilter(TokenVerifier verifier) {
        this(verifier, FilterOptions.defaults());
    }

    /**
     * A filter with requirements beyond a valid access token.
     *
     * @param verifier the verifier, shared with the rest of the application
     * @param options what else it requires
     */
    public IdentSphereServletFilter(TokenVerifier verifier, FilterOptions options) {
        this.guard = new RequestGuard(verifier, options);
    }

    /**
     * Verifies the request's token; passes it on with its claims, or answers the refusal.
     *
     * @throws ServletException for a request that is not HTTP: this filter protects HTTP only
     */
    @Override
    public void doFilter(ServletRequest request, ServletResponse response, FilterChain chain)
            throws IOException, ServletException {
        if (!(request instanceof HttpServletRequest http) || !(response instanceof HttpServletResponse answer)) {
            throw new ServletException("IdentSphereServletFilter protects HTTP requests only");
        }
        Claims claims;
        try {
            // getHeaders is null where the container hides the headers: then there are none to read.
            claims = guard.authenticate(http.getMethod(), name -> Optional.ofNullable(http.getHeaders(name))
                    .map(Collections::list).orElseGet(ArrayList::new));
        } catch (IdentSphereException refusal) {
            answer.setStatus(refusal.getStatus());
            for (Map.Entry<String, String> header : RequestGuard.refusalHeaders(refusal).entrySet()) {
                answer.setHeader(header.getKey(), header.getValue());
            }
            byte[] body = refusal.envelope().getBytes(StandardCharsets.UTF_8);
            answer.setContentLength(body.length);
            answer.getOutputStream().write(body);
            return;
        }
        http.setAttribute(Claims.ATTRIBUTE, claims);
        chain.doFilter(request, response);
    }
}
