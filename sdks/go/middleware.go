package identsphere

import (
	"context"
	"net/http"
	"strings"
)

// accessCookie is the name of the cookie IdentSphere sets with the access token.
const accessCookie = "identsphere_at"

// MiddlewareOption configures Middleware.
type MiddlewareOption func(*middlewareConfig)

type middlewareConfig struct {
	requireAAL2    bool
	organization   func(*http.Request) string
	allowedOrigins []string
}

// RequireAAL2 refuses sessions without a verified second factor: 403 insufficient_aal.
func RequireAAL2() MiddlewareOption {
	return func(cfg *middlewareConfig) { cfg.requireAAL2 = true }
}

// RequireOrganization refuses tokens of any organization but id: 403 not_a_member.
func RequireOrganization(id string) MiddlewareOption {
	return RequireOrganizationFunc(func(*http.Request) string { return id })
}

// RequireOrganizationFunc refuses tokens whose organization is not the one of the request, as from
// returns it (a path segment, a header): 403 not_a_member, also when from returns "".
func RequireOrganizationFunc(from func(*http.Request) string) MiddlewareOption {
	return func(cfg *middlewareConfig) { cfg.organization = from }
}

// AllowedOrigins sets the origins (https://app.example.com) allowed to make cookie-authenticated POST,
// PUT, PATCH and DELETE requests. Default: only the request's own host.
func AllowedOrigins(origins ...string) MiddlewareOption {
	return func(cfg *middlewareConfig) {
		for _, o := range origins {
			cfg.allowedOrigins = append(cfg.allowedOrigins, strings.TrimRight(o, "/"))
		}
	}
}

// Middleware protects a handler with v: the access token is read from Authorization: Bearer, else from
// the identsphere_at cookie IdentSphere sets, and verified; the handler finds the claims with
// ClaimsFromContext. Refusals are IdentSphere's error envelope and status, as IdentSphere itself answers:
// 401 token_missing, token_invalid, token_expired, token_revoked; 403 insufficient_aal (RequireAAL2),
// not_a_member (RequireOrganization), csrf_rejected (a cookie-authenticated unsafe request from an origin
// that is not allowed, as IdentSphere refuses them); 503 service_unavailable while no key could be
// fetched.
func Middleware(v *Verifier, opts ...MiddlewareOption) func(http.Handler) http.Handler {
	var cfg middlewareConfig
	for _, opt := range opts {
		opt(&cfg)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			claims, refused := cfg.authenticate(v, r)
			if refused != nil {
				writeRefusal(w, refused)
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, claims)))
		})
	}
}

// authenticate returns the request's verified claims, or why it is refused.
func (cfg *middlewareConfig) authenticate(v *Verifier, r *http.Request) (*Claims, *Error) {
	token, refused := cfg.credential(r)
	if refused != nil {
		return nil, refused
	}
	if token == "" {
		return nil, refusal(CodeTokenMissing)
	}
	claims, refused := v.verify(r.Context(), token)
	if refused != nil {
		return nil, refused
	}
	if cfg.requireAAL2 && claims.AAL != AAL2 {
		return nil, refusal(CodeInsufficientAAL)
	}
	if cfg.organization != nil {
		if want := cfg.organization(r); want == "" || !strings.EqualFold(claims.Org, want) {
			return nil, refusal(CodeNotAMember)
		}
	}
	return claims, nil
}

// credential is the bearer token, else the access cookie once the CSRF rule lets it through; "" when
// the request carries neither.
func (cfg *middlewareConfig) credential(r *http.Request) (string, *Error) {
	if scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		if token = strings.TrimSpace(token); token != "" {
			return token, nil
		}
	}
	cookie, err := r.Cookie(accessCookie)
	if err != nil || cookie.Value == "" {
		return "", nil
	}
	if !cfg.sameOriginAllowed(r) {
		return "", refusal(CodeCSRFRejected)
	}
	return cookie.Value, nil
}

// sameOriginAllowed is IdentSphere's CSRF rule for cookie-authenticated requests: safe methods pass; an
// unsafe one needs an Origin that is allowed (with none configured: the request's own host), or, with
// no Origin, no Sec-Fetch-Site: cross-site. A bearer token is not sent by browsers on their own, so
// bearer requests need no such check.
func (cfg *middlewareConfig) sameOriginAllowed(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return r.Header.Get("Sec-Fetch-Site") != "cross-site"
	}
	if len(cfg.allowedOrigins) == 0 {
		_, host, ok := strings.Cut(origin, "://")
		return ok && host == r.Host
	}
	for _, allowed := range cfg.allowedOrigins {
		if origin == allowed {
			return true
		}
	}
	return false
}
