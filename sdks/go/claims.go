package identsphere

import "context"

// Claims are the verified claims of an IdentSphere access token, as the integration page lists them.
// Sub, Exp, Iat and Typ are always set; the others are zero when the token does not carry them (they are
// optional in the token; a newer server may drop or add claims). Marshalled to JSON, Claims gives the
// token's claim names.
type Claims struct {
	// Sub is the user id (a UUID).
	Sub string `json:"sub"`
	// Org is the organization id of the session.
	Org string `json:"org,omitempty"`
	// Iss is the issuer, IdentSphere's public base URL (checked against the configured issuer).
	Iss string `json:"iss,omitempty"`
	// Exp is the expiry, Iat the issue time, in Unix seconds.
	Exp int64 `json:"exp"`
	Iat int64 `json:"iat"`
	// Typ is the token type: always "access" once verified (refresh and mfa tokens are refused).
	Typ string `json:"typ"`
	// Email is the user's email, when known.
	Email string `json:"email,omitempty"`
	// JTI is the token's unique id, what a jti revocation names.
	JTI string `json:"jti,omitempty"`
	// SID is the session family id, the same across refreshes, what a sid revocation names.
	SID string `json:"sid,omitempty"`
	// AAL is the session's assurance level: AAL2 once a second factor was verified.
	AAL AAL `json:"aal,omitempty"`
	// AuthTime is when the user originally authenticated, in Unix seconds.
	AuthTime int64 `json:"auth_time,omitempty"`
	// AuthMethod is how the user originally authenticated.
	AuthMethod AuthMethod `json:"auth_method,omitempty"`
}

// claimsKey is the context key of the claims the Middleware verified.
type claimsKey struct{}

// ClaimsFromContext returns the claims the Middleware verified for this request, and false outside a
// route the Middleware protects.
func ClaimsFromContext(ctx context.Context) (*Claims, bool) {
	claims, ok := ctx.Value(claimsKey{}).(*Claims)
	return claims, ok
}
