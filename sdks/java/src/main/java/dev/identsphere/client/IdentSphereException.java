package dev.identsphere.client;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * Every refusal: an answer of IdentSphere in its error envelope, or a refusal of the
 * {@link TokenVerifier} or a filter, which use the same codes. Switch on {@link #getCode()}; the codes
 * are the catalog's, spelled as the API sends them, and listed in {@link ErrorCodes}.
 *
 * <p>A failure to reach IdentSphere at all (connection refused, a timeout) is not a refusal: the client
 * throws it as a {@link java.io.UncheckedIOException}. The verifier, which must answer every request,
 * turns it into a {@code 503 service_unavailable} refusal instead, with the I/O error as its cause.
 */
public final class IdentSphereException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** The status, type and message of each code the SDK refuses with itself: the server's own rows. */
    private static final Map<String, Local> CATALOG = Map.of(
            ErrorCodes.TOKEN_MISSING, new Local(401, "authentication_error", "no token was sent"),
            ErrorCodes.TOKEN_INVALID, new Local(401, "authentication_error", "the token is not valid"),
            ErrorCodes.TOKEN_EXPIRED, new Local(401, "authentication_error", "the token has expired"),
            ErrorCodes.TOKEN_REVOKED, new Local(401, "authentication_error", "the token has been revoked"),
            ErrorCodes.INSUFFICIENT_AAL, new Local(403, "permission_error",
                    "this action needs a session verified with a second factor"),
            ErrorCodes.NOT_A_MEMBER, new Local(403, "permission_error", "you are not a member of this organization"),
            ErrorCodes.CSRF_REJECTED, new Local(403, "permission_error", "cross-site request refused"),
            ErrorCodes.SERVICE_UNAVAILABLE, new Local(503, "api_error",
                    "the authentication service is unavailable, retry shortly"));

    private record Local(int status, String type, String message) {}

    /** The HTTP status of the refusal. */
    private final int status;
    /** The catalog's code, what callers switch on. */
    private final String code;
    /** The catalog's class of the code. */
    private final String type;
    /** The offending request field, or {@code null}. */
    private final String param;
    /** IdentSphere's {@code X-Request-Id}, or {@code null} for the SDK's own refusals. */
    private final String requestId;
    /** {@code Retry-After}, or {@code null} when the answer did not say. */
    private final Duration retryAfter;

    IdentSphereException(int status, String code, String type, String message, String param, String requestId,
            Duration retryAfter, Throwable cause) {
        super(message, cause);
        this.status = status;
        this.code = code;
        this.type = type;
        this.param = param;
        this.requestId = requestId;
        this.retryAfter = retryAfter;
    }

    /** A refusal the SDK makes itself, with one of the codes of {@link #CATALOG}. */
    static IdentSphereException refusal(String code) {
        Local row = CATALOG.get(code);
        return new IdentSphereException(row.status, code, row.type, row.message, null, null, null, null);
    }

    /** {@code 503 service_unavailable}, because IdentSphere could not be asked; retry in a second. */
    static IdentSphereException unavailable(Throwable cause) {
        Local row = CATALOG.get(ErrorCodes.SERVICE_UNAVAILABLE);
        return new IdentSphereException(row.status, ErrorCodes.SERVICE_UNAVAILABLE, row.type, row.message, null,
                null, Duration.ofSeconds(1), cause);
    }

    /**
     * The HTTP status.
     *
     * @return 401, 403, 429, …
     */
    public int getStatus() {
        return status;
    }

    /**
     * The stable error code of the catalog: what callers switch on.
     *
     * @return {@code token_invalid}, {@code invalid_credentials}, … (see {@link ErrorCodes})
     */
    public String getCode() {
        return code;
    }

    /**
     * The catalog's class of the code.
     *
     * @return {@code authentication_error}, {@code permission_error}, …
     */
    public String getType() {
        return type;
    }

    /**
     * The offending request field, when IdentSphere named one.
     *
     * @return the field's name, e.g. {@code password}
     */
    public Optional<String> getParam() {
        return Optional.ofNullable(param);
    }

    /**
     * IdentSphere's {@code X-Request-Id} of the refused request, to find it in the server's log.
     *
     * @return the request id; empty for refusals the SDK made itself
     */
    public Optional<String> getRequestId() {
        return Optional.ofNullable(requestId);
    }

    /**
     * How long to wait before trying again ({@code Retry-After}).
     *
     * @return the wait, with {@code rate_limited} and {@code service_unavailable}
     */
    public Optional<Duration> getRetryAfter() {
        return Optional.ofNullable(retryAfter);
    }

    /** The refusal as IdentSphere's error envelope: {@code {"error": {"code", "message", "type"}}}. */
    String envelope() {
        Map<String, String> error = new LinkedHashMap<>();
        error.put("code", code);
        error.put("message", getMessage());
        error.put("type", type);
        return "{\"error\":" + Json.write(error) + "}";
    }

    @Override
    public String toString() {
        StringBuilder out = new StringBuilder("IdentSphereException: ").append(code).append(" (").append(status)
                .append("): ").append(getMessage());
        if (param != null) {
            out.append(" (param ").append(param).append(')');
        }
        if (requestId != null) {
            out.append(" [request ").append(requestId).append(']');
        }
        return out.toString();
    }
}
