package identsphere

import (
	"fmt"
	"time"
)

// AAL is a session's authentication assurance level.
type AAL string

const (
	// AAL1: one factor (a password, or a social sign-in).
	AAL1 AAL = "aal1"
	// AAL2: a second factor was verified in the session (TOTP, a recovery code, a passkey).
	AAL2 AAL = "aal2"
)

// AuthMethod is how the user originally authenticated in a session.
type AuthMethod string

const (
	AuthMethodPassword    AuthMethod = "password"
	AuthMethodPasskey     AuthMethod = "passkey"
	AuthMethodSocialOAuth AuthMethod = "social_oauth"
)

// LogoutScope says which sessions a logout ends.
type LogoutScope string

const (
	// LogoutLocal ends the session of the token (the default).
	LogoutLocal LogoutScope = "local"
	// LogoutOthers ends every other session of the user and keeps this one.
	LogoutOthers LogoutScope = "others"
	// LogoutGlobal ends every session of the user.
	LogoutGlobal LogoutScope = "global"
)

// User is an account as the token and session responses show it.
type User struct {
	ID            string    `json:"id"`
	Email         string    `json:"email"`
	EmailVerified bool      `json:"email_verified"`
	DisplayName   string    `json:"display_name,omitempty"` // empty when the user set none
	CreatedAt     time.Time `json:"created_at"`
}

// Session is a session family: one sign-in and its refreshes, in one organization.
type Session struct {
	// ID is the session family id, the sid claim of its tokens, the same across refreshes.
	ID             string     `json:"id"`
	OrganizationID string     `json:"organization_id"`
	AAL            AAL        `json:"aal"`
	AuthMethod     AuthMethod `json:"auth_method"`
	// AuthTime is when the user originally authenticated, in Unix seconds.
	AuthTime int64 `json:"auth_time"`
	// ExpiresAt is the family's absolute end: no refresh after it.
	ExpiresAt time.Time `json:"expires_at"`
}

// TokenResponse is what a completed sign-in or a refresh returns. Printing it with fmt shows neither
// token.
type TokenResponse struct {
	// TokenType is always "Bearer".
	TokenType string `json:"token_type"`
	// AccessToken is an RS256 JWT: send it as Authorization: Bearer; services verify it with a Verifier.
	AccessToken string `json:"access_token"`
	// ExpiresIn is the number of seconds until the access token expires.
	ExpiresIn int64 `json:"expires_in"`
	// RefreshToken is opaque: send it to Refresh or Logout. It rotates on every use.
	RefreshToken string  `json:"refresh_token"`
	User         User    `json:"user"`
	Session      Session `json:"session"`
	// PendingOrganization is set only at a sign-up into an organization that takes the address's domain:
	// the account joins it once the address is verified.
	PendingOrganization *PendingOrganization `json:"pending_organization,omitempty"`
}

// String describes t without its tokens, so a log line cannot leak them.
func (t TokenResponse) String() string {
	return fmt.Sprintf("TokenResponse{TokenType: %s, AccessToken: <redacted>, ExpiresIn: %d, RefreshToken: <redacted>, User: %s, Session: %s}",
		t.TokenType, t.ExpiresIn, t.User.ID, t.Session.ID)
}

// GoString is String, for %#v.
func (t TokenResponse) GoString() string { return t.String() }

// PendingOrganization is an organization an account joins once its address is verified.
type PendingOrganization struct {
	ID        string `json:"id"`
	Slug      string `json:"slug"`
	Name      string `json:"name"`
	JoinsWhen string `json:"joins_when"`
}

// MFARequired is the answer of a sign-in whose password was right but whose second factor is due: no
// session exists yet. Complete it with Client.VerifyMFA and MFAToken within 5 minutes. Printing it with
// fmt does not show the token.
type MFARequired struct {
	// MFAToken stands for the sign-in in progress; it works once.
	MFAToken string `json:"mfa_token"`
	// Factors are the second factors the user can use ("totp", "passkey").
	Factors []string `json:"factors"`
	// EnrollmentRequired: the organization requires a second factor and the user has none yet; they
	// enroll one with the mfa token, which completes the sign-in.
	EnrollmentRequired bool `json:"enrollment_required"`
}

// String describes m without its token.
func (m MFARequired) String() string {
	return fmt.Sprintf("MFARequired{MFAToken: <redacted>, Factors: %v, EnrollmentRequired: %t}", m.Factors, m.EnrollmentRequired)
}

// GoString is String, for %#v.
func (m MFARequired) GoString() string { return m.String() }

// LoginResult is the outcome of a sign-in: exactly one of Tokens (signed in) and MFA (a second factor is
// due) is set. A second factor is a normal outcome, not an error.
type LoginResult struct {
	Tokens *TokenResponse
	MFA    *MFARequired
}

// SessionInfo is what IdentSphere says of the session of an access token (GET /v1/auth/session).
type SessionInfo struct {
	User         User                `json:"user"`
	Session      Session             `json:"session"`
	Organization SessionOrganization `json:"organization"`
	// Factors are the second factors the user has enrolled (empty: none).
	Factors []Factor `json:"factors"`
	// RecoveryCodesLeft counts the unused recovery codes.
	RecoveryCodesLeft int `json:"recovery_codes_left"`
}

// SessionOrganization is the organization of a session, with the user's role in it.
type SessionOrganization struct {
	ID   string `json:"id"`
	Slug string `json:"slug"`
	Name string `json:"name"`
	// Role is "owner", "admin" or "member".
	Role string `json:"role"`
}

// Factor is an enrolled second factor.
type Factor struct {
	// Type is "totp" or "passkey".
	Type        string    `json:"type"`
	ConfirmedAt time.Time `json:"confirmed_at"`
}
