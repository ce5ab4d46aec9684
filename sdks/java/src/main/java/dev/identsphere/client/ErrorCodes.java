package dev.identsphere.client;

/**
 * The error codes of IdentSphere's catalog that the calls and refusals of this SDK can meet, spelled
 * exactly as the API sends them: compare {@link IdentSphereException#getCode()} with these. The server may
 * add codes; existing ones never change meaning.
 */
public final class ErrorCodes {
    private ErrorCodes() {}

    /** 400: malformed JSON, a wrong type, a missing or unknown field. */
    public static final String INVALID_REQUEST = "invalid_request";
    /** 422: the email fails validation. */
    public static final String INVALID_EMAIL = "invalid_email";
    /** 422: the password fails the policy. */
    public static final String WEAK_PASSWORD = "weak_password";
    /** 409: registration with an email that already has an account. */
    public static final String EMAIL_TAKEN = "email_taken";
    /** 401: wrong password or unknown email, indistinguishably. */
    public static final String INVALID_CREDENTIALS = "invalid_credentials";
    /** 401: no bearer token and no cookie where one is needed. */
    public static final String TOKEN_MISSING = "token_missing";
    /** 401: malformed, bad signature, unknown {@code kid}, wrong {@code alg}, {@code typ} or {@code iss}. */
    public static final String TOKEN_INVALID = "token_invalid";
    /** 401: {@code exp} has passed. */
    public static final String TOKEN_EXPIRED = "token_expired";
    /** 401: the token's {@code jti} or its session family was revoked. */
    public static final String TOKEN_REVOKED = "token_revoked";
    /** 401: a rotated refresh token came back after the grace window; the whole session is now revoked. */
    public static final String REFRESH_TOKEN_REUSED = "refresh_token_reused";
    /** 401: a wrong or reused second-factor code. */
    public static final String MFA_INVALID_CODE = "mfa_invalid_code";
    /** 403: the action needs a session verified with a second factor ({@code aal2}). */
    public static final String INSUFFICIENT_AAL = "insufficient_aal";
    /** 403: the user is not a member of the organization asked for. */
    public static final String NOT_A_MEMBER = "not_a_member";
    /** 403: the user or organization is disabled. */
    public static final String ACCOUNT_DISABLED = "account_disabled";
    /** 403: the organization's policy does not allow this sign-in method. */
    public static final String AUTH_METHOD_NOT_ALLOWED = "auth_method_not_allowed";
    /** 403: the organization does not take this registration. */
    public static final String SIGNUP_NOT_ALLOWED = "signup_not_allowed";
    /** 403: a cookie-authenticated unsafe request from an origin that is not allowed. */
    public static final String CSRF_REJECTED = "csrf_rejected";
    /** 404: no such organization (by id or slug), or one the user may not see. */
    public static final String ORGANIZATION_NOT_FOUND = "organization_not_found";
    /** 400: a verification or reset link that is unknown, expired or used. */
    public static final String LINK_INVALID = "link_invalid";
    /** 400: an invitation that is unknown, used, revoked or expired. */
    public static final String INVITATION_INVALID = "invitation_invalid";
    /** 403: an invitation for another email than the account's. */
    public static final String INVITATION_EMAIL_MISMATCH = "invitation_email_mismatch";
    /** 413: the body is over the limit. */
    public static final String PAYLOAD_TOO_LARGE = "payload_too_large";
    /** 415: a body that is not {@code application/json}. */
    public static final String UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type";
    /** 429: too many attempts; {@link IdentSphereException#getRetryAfter()} says how long to wait. */
    public static final String RATE_LIMITED = "rate_limited";
    /** 500: a bug of IdentSphere; details only in its log, under the request id. */
    public static final String INTERNAL_ERROR = "internal_error";
    /** 503: a backing store of IdentSphere, or IdentSphere itself for the verifier, cannot be reached. */
    public static final String SERVICE_UNAVAILABLE = "service_unavailable";
}
