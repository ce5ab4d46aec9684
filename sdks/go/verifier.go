package identsphere

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"
)

// maxTokenLen is the longest token accepted: anything larger is refused before any parsing, as
// IdentSphere itself does.
const maxTokenLen = 8 * 1024

// Verifier checks IdentSphere access tokens locally, against the public keys IdentSphere publishes at
// /.well-known/jwks.json: no round trip per request. It is safe for concurrent use; share one per
// IdentSphere.
//
// The checks are IdentSphere's own: header alg RS256 and typ JWT, a kid of the JWKS, the signature, iss
// equal to the issuer, claim typ access (refresh and mfa tokens are refused), sub, exp and iat present,
// exp not passed (with the configured leeway), then, with WithRevocations, neither jti nor sid revoked.
//
// The JWKS is fetched on first use and kept as long as its Cache-Control max-age says (5 minutes if it
// does not), then refreshed behind the requests that find it stale. A token with an unknown kid (a key
// rotation) waits for one refetch; fetches of any cause are at most one per 30 seconds
// (WithJWKSRefetchInterval), and one at a time, so a flood of forged kids costs one fetch. A fetch that
// fails keeps the keys in use.
type Verifier struct {
	issuer      string
	leeway      int64
	keys        *keyCache
	revocations *RevocationFeed
}

// NewVerifier returns a Verifier for the IdentSphere at baseURL. It does no I/O: the JWKS is fetched by
// the first Verify. Options: WithIssuer, WithLeeway, WithJWKSRefetchInterval, WithRevocations,
// WithHTTPClient, WithTimeout, WithLogger.
func NewVerifier(baseURL string, opts ...Option) (*Verifier, error) {
	base, err := parseBaseURL(baseURL)
	if err != nil {
		return nil, err
	}
	cfg := newConfig(opts)
	issuer := cfg.issuer
	if issuer == "" {
		issuer = base
	}
	return &Verifier{
		issuer: issuer,
		leeway: int64(cfg.leeway / time.Second),
		keys: &keyCache{
			url:             base + "/.well-known/jwks.json",
			http:            cfg.httpClient,
			refetchInterval: cfg.refetchInterval,
			timeout:         cfg.timeout,
			logger:          cfg.logger,
		},
		revocations: cfg.revocations,
	}, nil
}

// header is the JOSE header of a token; only what is checked.
type header struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
	Kid string `json:"kid"`
}

// Verify checks token and returns its claims. Every refusal is an *Error: token_invalid for anything but
// a well-formed access token signed by a published key of this issuer, token_expired once exp (plus the
// leeway) has passed, token_revoked when the revocation feed lists its jti or sid, and
// service_unavailable when no JWKS could ever be fetched (or ctx ended while waiting for one).
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	claims, refused := v.verify(ctx, token)
	if refused != nil {
		return nil, refused // not a nil *Error in a non-nil error
	}
	return claims, nil
}

// verify is Verify with the concrete refusal, for the Middleware.
func (v *Verifier) verify(ctx context.Context, token string) (*Claims, *Error) {
	if len(token) > maxTokenLen {
		return nil, refusal(CodeTokenInvalid)
	}
	encodedHeader, rest, ok := strings.Cut(token, ".")
	encodedClaims, encodedSignature, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 {
		return nil, refusal(CodeTokenInvalid)
	}
	var h header
	signature, err := base64.RawURLEncoding.DecodeString(encodedSignature)
	if err != nil || decodeSegment(encodedHeader, &h) != nil {
		return nil, refusal(CodeTokenInvalid)
	}
	if h.Alg != "RS256" || h.Typ != "JWT" || h.Kid == "" {
		return nil, refusal(CodeTokenInvalid)
	}
	key, refused := v.keys.key(ctx, h.Kid)
	if refused != nil {
		return nil, refused
	}
	digest := sha256.Sum256([]byte(token[:len(encodedHeader)+1+len(encodedClaims)]))
	if rsa.VerifyPKCS1v15(key, crypto.SHA256, digest[:], signature) != nil {
		return nil, refusal(CodeTokenInvalid)
	}
	// Only now, signed by IdentSphere, are the claims worth reading.
	var claims Claims
	if decodeSegment(encodedClaims, &claims) != nil {
		return nil, refusal(CodeTokenInvalid)
	}
	if claims.Typ != "access" || claims.Iss != v.issuer || claims.Sub == "" || claims.Exp == 0 || claims.Iat == 0 {
		return nil, refusal(CodeTokenInvalid)
	}
	now := time.Now().Unix()
	if now >= claims.Exp+v.leeway {
		return nil, refusal(CodeTokenExpired)
	}
	if v.revocations != nil && v.revocations.revoked(&claims, now) {
		return nil, refusal(CodeTokenRevoked)
	}
	return &claims, nil
}

// decodeSegment decodes one base64url part of a token as JSON into out.
func decodeSegment(segment string, out any) error {
	raw, err := base64.RawURLEncoding.DecodeString(segment)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, out)
}
