package identsphere

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// maxResponseBytes bounds what the SDK reads of any answer: IdentSphere's largest (a JWKS during a key
// rotation, a page of the revocation feed) are far smaller.
const maxResponseBytes = 4 << 20

// Client calls IdentSphere's REST API for a backend that signs users in on their behalf: sign-up, sign-in,
// refresh and organization switching, logout, the session, the second factor and the account calls.
// It is safe for concurrent use. No call is retried: sign-in and refresh are not idempotent.
type Client struct {
	base string
	http *http.Client
}

// NewClient returns a Client for the IdentSphere at baseURL (e.g. "https://auth.example.com"). Options:
// WithHTTPClient, WithTimeout.
func NewClient(baseURL string, opts ...Option) (*Client, error) {
	base, err := parseBaseURL(baseURL)
	if err != nil {
		return nil, err
	}
	cfg := newConfig(opts)
	return &Client{base: base, http: cfg.httpClient}, nil
}

// RegisterParams is a new account. Email and Password are required.
type RegisterParams struct {
	Email       string `json:"email"`
	Password    string `json:"password"`
	DisplayName string `json:"display_name,omitempty"`
	// Organization (id or slug) is an organization that allows sign-up; without it the user gets a new
	// personal organization and is its owner.
	Organization string `json:"organization,omitempty"`
	// Invitation is the token of an invitation for this email: the account joins its organization.
	Invitation string `json:"invitation,omitempty"`
}

// Register creates an account and signs it in (201). Into an organization that requires a second factor
// the result is MFA (with EnrollmentRequired) instead of Tokens.
//
// Refusals: invalid_request, invalid_email, weak_password, email_taken, organization_not_found,
// signup_not_allowed, invitation_invalid, invitation_email_mismatch, rate_limited.
func (c *Client) Register(ctx context.Context, p RegisterParams) (*LoginResult, error) {
	return c.signIn(ctx, "/v1/auth/register", http.StatusCreated, p)
}

// LoginParams are the credentials of a sign-in.
type LoginParams struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	// Organization (id or slug) to sign in to; default: the user's most recently used.
	Organization string `json:"organization,omitempty"`
}

// Login signs a user in with email and password: Tokens, or MFA when a second factor is due (complete
// it with VerifyMFA).
//
// Refusals: invalid_credentials (wrong password or unknown email, indistinguishably), invalid_email,
// not_a_member, organization_not_found, account_disabled, auth_method_not_allowed, rate_limited.
func (c *Client) Login(ctx context.Context, p LoginParams) (*LoginResult, error) {
	return c.signIn(ctx, "/v1/auth/login", http.StatusOK, p)
}

// signIn posts body to path and reads either answer of a sign-in.
func (c *Client) signIn(ctx context.Context, path string, want int, body any) (*LoginResult, error) {
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodPost, path, "", body, want, &raw); err != nil {
		return nil, err
	}
	var probe struct {
		MFARequired bool `json:"mfa_required"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, fmt.Errorf("identsphere: POST %s: reading the answer: %w", path, err)
	}
	if probe.MFARequired {
		var mfa MFARequired
		if err := json.Unmarshal(raw, &mfa); err != nil {
			return nil, fmt.Errorf("identsphere: POST %s: reading the answer: %w", path, err)
		}
		return &LoginResult{MFA: &mfa}, nil
	}
	var tokens TokenResponse
	if err := json.Unmarshal(raw, &tokens); err != nil {
		return nil, fmt.Errorf("identsphere: POST %s: reading the answer: %w", path, err)
	}
	return &LoginResult{Tokens: &tokens}, nil
}

// RefreshParams is a refresh, or a switch to another organization.
type RefreshParams struct {
	RefreshToken string `json:"refresh_token,omitempty"`
	// Organization (id or slug), to switch the session into it without signing in again: the new tokens
	// carry it in org; sid, aal and auth_time stay.
	Organization string `json:"organization,omitempty"`
}

// Refresh exchanges the refresh token for a new pair; the one sent is spent. With Organization it also
// switches the session into that organization.
//
// Refusals: token_missing, token_invalid, token_expired, token_revoked, refresh_token_reused (the whole
// session is revoked), not_a_member, organization_not_found, account_disabled, insufficient_aal,
// auth_method_not_allowed, rate_limited.
func (c *Client) Refresh(ctx context.Context, p RefreshParams) (*TokenResponse, error) {
	var tokens TokenResponse
	if err := c.do(ctx, http.MethodPost, "/v1/auth/refresh", "", p, http.StatusOK, &tokens); err != nil {
		return nil, err
	}
	return &tokens, nil
}

// LogoutParams says which sessions to end and with which credential: the access token, or the refresh
// token when the access token has expired.
type LogoutParams struct {
	AccessToken  string      `json:"-"`
	RefreshToken string      `json:"refresh_token,omitempty"`
	Scope        LogoutScope `json:"scope,omitempty"`
}

// Logout ends sessions (204): their access tokens are refused by IdentSphere at once, and by Verifiers
// through the revocation feed.
//
// Refusals: token_missing, token_invalid, token_expired, token_revoked.
func (c *Client) Logout(ctx context.Context, p LogoutParams) error {
	return c.do(ctx, http.MethodPost, "/v1/auth/logout", p.AccessToken, p, http.StatusNoContent, nil)
}

// Session asks IdentSphere for the session of accessToken: the user, the session, the organization
// with the user's role, the second factors. Unlike Verifier.Verify it sees a logout at once.
//
// Refusals: token_missing, token_invalid, token_expired, token_revoked, account_disabled, not_a_member.
func (c *Client) Session(ctx context.Context, accessToken string) (*SessionInfo, error) {
	var info SessionInfo
	if err := c.do(ctx, http.MethodGet, "/v1/auth/session", accessToken, nil, http.StatusOK, &info); err != nil {
		return nil, err
	}
	return &info, nil
}

// VerifyMFAParams is a second-factor code, for one of two purposes:
//   - completing a sign-in: MFAToken (from LoginResult.MFA) and Code;
//   - stepping a signed-in session up to aal2: AccessToken, its session's RefreshToken, and Code.
type VerifyMFAParams struct {
	MFAToken string `json:"mfa_token,omitempty"`
	// Code is a 6-digit TOTP code or a recovery code (dashes, spaces and case ignored).
	Code         string `json:"code"`
	AccessToken  string `json:"-"`
	RefreshToken string `json:"refresh_token,omitempty"`
}

// VerifyMFA checks a second factor and answers with tokens at aal2.
//
// Refusals: mfa_invalid_code (wrong or already used), token_missing, token_invalid (an mfa token that is
// not ours or was used), token_expired, rate_limited (too many wrong codes).
func (c *Client) VerifyMFA(ctx context.Context, p VerifyMFAParams) (*TokenResponse, error) {
	var tokens TokenResponse
	if err := c.do(ctx, http.MethodPost, "/v1/auth/mfa/verify", p.AccessToken, p, http.StatusOK, &tokens); err != nil {
		return nil, err
	}
	return &tokens, nil
}

// ForgotPassword asks for a reset link to be mailed to email (202). The answer is the same whether or
// not the email has an account.
//
// Refusals: invalid_email, rate_limited.
func (c *Client) ForgotPassword(ctx context.Context, email string) error {
	body := struct {
		Email string `json:"email"`
	}{email}
	return c.do(ctx, http.MethodPost, "/v1/auth/password/forgot", "", body, http.StatusAccepted, nil)
}

// ResetPassword sets a new password with the token of a reset link (204); every session of the user ends.
//
// Refusals: link_invalid (unknown, expired or used), weak_password, rate_limited.
func (c *Client) ResetPassword(ctx context.Context, token, newPassword string) error {
	body := struct {
		Token    string `json:"token"`
		Password string `json:"password"`
	}{token, newPassword}
	return c.do(ctx, http.MethodPost, "/v1/auth/password/reset", "", body, http.StatusNoContent, nil)
}

// ChangePassword sets a new password for the user of accessToken (204); the user's other sessions end.
//
// Refusals: invalid_credentials (wrong current password), weak_password, insufficient_aal (the user has
// a second factor and the session is aal1), token_* codes, rate_limited.
func (c *Client) ChangePassword(ctx context.Context, accessToken, currentPassword, newPassword string) error {
	body := struct {
		Current string `json:"current_password"`
		New     string `json:"new_password"`
	}{currentPassword, newPassword}
	return c.do(ctx, http.MethodPost, "/v1/auth/password", accessToken, body, http.StatusNoContent, nil)
}

// VerifyEmail marks the address verified with the token of a verification link (204).
//
// Refusals: link_invalid, rate_limited.
func (c *Client) VerifyEmail(ctx context.Context, token string) error {
	body := struct {
		Token string `json:"token"`
	}{token}
	return c.do(ctx, http.MethodPost, "/v1/auth/email/verify", "", body, http.StatusNoContent, nil)
}

// do sends a JSON request (body nil: none) with bearer as Authorization when set, and decodes a `want`
// answer into out (nil: ignored). Any other answer is an *Error.
func (c *Client) do(ctx context.Context, method, path, bearer string, body any, want int, out any) error {
	var payload io.Reader
	if body != nil {
		encoded, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("identsphere: %s %s: %w", method, path, err)
		}
		payload = bytes.NewReader(encoded)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, payload)
	if err != nil {
		return fmt.Errorf("identsphere: %s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("identsphere: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return fmt.Errorf("identsphere: %s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode != want {
		return errorFromResponse(resp, answer)
	}
	if out != nil {
		if err := json.Unmarshal(answer, out); err != nil {
			return fmt.Errorf("identsphere: %s %s: reading the answer: %w", method, path, err)
		}
	}
	return nil
}
