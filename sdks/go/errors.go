package identsphere

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The error codes of IdentSphere's catalog that the calls of this package can meet, spelled exactly as the
// API sends them: switch on Error.Code with these. The server may add codes; existing ones never change
// meaning.
const (
	CodeInvalidRequest          = "invalid_request"
	CodeInvalidEmail            = "invalid_email"
	CodeWeakPassword            = "weak_password"
	CodeEmailTaken              = "email_taken"
	CodeInvalidCredentials      = "invalid_credentials"
	CodeTokenMissing            = "token_missing"
	CodeTokenInvalid            = "token_invalid"
	CodeTokenExpired            = "token_expired"
	CodeTokenRevoked            = "token_revoked"
	CodeRefreshTokenReused      = "refresh_token_reused"
	CodeMFAInvalidCode          = "mfa_invalid_code"
	CodeInsufficientAAL         = "insufficient_aal"
	CodeNotAMember              = "not_a_member"
	CodeAccountDisabled         = "account_disabled"
	CodeAuthMethodNotAllowed    = "auth_method_not_allowed"
	CodeSignupNotAllowed        = "signup_not_allowed"
	CodeCSRFRejected            = "csrf_rejected"
	CodeOrganizationNotFound    = "organization_not_found"
	CodeLinkInvalid             = "link_invalid"
	CodeInvitationInvalid       = "invitation_invalid"
	CodeInvitationEmailMismatch = "invitation_email_mismatch"
	CodeCeremonyExpired         = "ceremony_expired"
	CodePasskeysUnavailable     = "passkeys_unavailable"
	CodePayloadTooLarge         = "payload_too_large"
	CodeUnsupportedMediaType    = "unsupported_media_type"
	CodeRateLimited             = "rate_limited"
	CodeInternalError           = "internal_error"
	CodeServiceUnavailable      = "service_unavailable"
)

// Error is every refusal: an answer of IdentSphere in its error envelope, or a refusal of the Verifier or
// the Middleware, which use the same codes. Get it with errors.As:
//
//	var refusal *identsphere.Error
//	if errors.As(err, &refusal) && refusal.Code == identsphere.CodeInvalidCredentials { … }
//
// Errors that are not refusals (IdentSphere unreachable, a cancelled context) are returned as they are,
// wrapped with the call that failed.
type Error struct {
	// Status is the HTTP status (401, 403, …).
	Status int
	// Code is the stable error code of the catalog (CodeTokenInvalid, …): what callers switch on.
	Code string
	// Type is the catalog's class of the code (authentication_error, permission_error, …).
	Type string
	// Message is for humans and may change; it never contains a secret.
	Message string
	// Param names the offending request field, when IdentSphere said which.
	Param string
	// RequestID is IdentSphere's X-Request-Id of the refused request, to find it in the server's log.
	// Empty for refusals made locally by the Verifier or the Middleware.
	RequestID string
	// RetryAfter is how long to wait before trying again (Retry-After; rate_limited and
	// service_unavailable), zero when the answer did not say.
	RetryAfter time.Duration

	// cause is why a local refusal was made (service_unavailable: the JWKS fetch that failed).
	cause error
}

func (e *Error) Error() string {
	s := fmt.Sprintf("identsphere: %s (%d): %s", e.Code, e.Status, e.Message)
	if e.Param != "" {
		s += " (param " + e.Param + ")"
	}
	if e.cause != nil {
		s += ": " + e.cause.Error()
	}
	return s
}

// Unwrap returns the cause of a local service_unavailable refusal (a failed JWKS fetch, a cancelled
// context), so errors.Is(err, context.Canceled) works through it.
func (e *Error) Unwrap() error { return e.cause }

// catalog is the status, type and message of each code the Verifier and the Middleware refuse with
// themselves: the rows of IdentSphere's catalog, with the server's own messages, so a Go service
// answers exactly as IdentSphere would.
var catalog = map[string]struct {
	status  int
	kind    string
	message string
}{
	CodeTokenMissing:       {http.StatusUnauthorized, "authentication_error", "no token was sent"},
	CodeTokenInvalid:       {http.StatusUnauthorized, "authentication_error", "the token is not valid"},
	CodeTokenExpired:       {http.StatusUnauthorized, "authentication_error", "the token has expired"},
	CodeTokenRevoked:       {http.StatusUnauthorized, "authentication_error", "the token has been revoked"},
	CodeInsufficientAAL:    {http.StatusForbidden, "permission_error", "this action needs a session verified with a second factor"},
	CodeNotAMember:         {http.StatusForbidden, "permission_error", "you are not a member of this organization"},
	CodeCSRFRejected:       {http.StatusForbidden, "permission_error", "cross-site request refused"},
	CodeServiceUnavailable: {http.StatusServiceUnavailable, "api_error", "the authentication service is unavailable, retry shortly"},
}

// refusal is a local refusal with code, which must be a row of catalog.
func refusal(code string) *Error {
	row := catalog[code]
	return &Error{Status: row.status, Code: code, Type: row.kind, Message: row.message}
}

// unavailable is a local service_unavailable refusal caused by err.
func unavailable(err error) *Error {
	e := refusal(CodeServiceUnavailable)
	e.RetryAfter = time.Second
	e.cause = err
	return e
}

// envelope is IdentSphere's error body: {"error": {"code", "message", "type", "param"}}.
type envelope struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Type    string `json:"type"`
		Param   string `json:"param,omitempty"`
	} `json:"error"`
}

// errorFromResponse reads a refusal of IdentSphere. A body that is not the envelope (a proxy's error page)
// still gives an *Error, with the status and an empty code, so callers always get one type.
func errorFromResponse(resp *http.Response, body []byte) *Error {
	e := &Error{
		Status:     resp.StatusCode,
		RequestID:  resp.Header.Get("X-Request-Id"),
		RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now()),
	}
	var env envelope
	if json.Unmarshal(body, &env) == nil && env.Error.Code != "" {
		e.Code, e.Type, e.Message, e.Param = env.Error.Code, env.Error.Type, env.Error.Message, env.Error.Param
	} else {
		e.Message = fmt.Sprintf("unexpected answer %s", resp.Status)
	}
	return e
}

// retryAfter reads a Retry-After value: delay seconds, or an HTTP date (RFC 9110 §10.2.3).
func retryAfter(value string, now time.Time) time.Duration {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0
	}
	if seconds, err := strconv.ParseUint(value, 10, 32); err == nil {
		return time.Duration(seconds) * time.Second
	}
	if at, err := http.ParseTime(value); err == nil && at.After(now) {
		return at.Sub(now)
	}
	return 0
}

// writeRefusal answers with e in IdentSphere's envelope and status, with the headers IdentSphere sets:
// WWW-Authenticate on a 401, Retry-After when e has one.
func writeRefusal(w http.ResponseWriter, e *Error) {
	var env envelope
	env.Error.Code, env.Error.Message, env.Error.Type, env.Error.Param = e.Code, e.Message, e.Type, e.Param
	body, _ := json.Marshal(env) // a struct of strings always marshals
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if e.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", "Bearer")
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}
