package identsphere_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	identsphere "github.com/IdentSphere/sdks/go"
)

func TestRegisterAnswersWithATypedTokenResponseThatPrintsNoToken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	email := uniqueEmail()
	res, err := newClient(t, shared).Register(ctx, identsphere.RegisterParams{Email: email, Password: password, DisplayName: "Ada"})
	if err != nil {
		t.Fatal(err)
	}
	if res.MFA != nil || res.Tokens == nil {
		t.Fatalf("want tokens, got %+v", res)
	}
	tokens := res.Tokens
	claims := part(t, tokens.AccessToken, 1)
	if tokens.TokenType != "Bearer" || tokens.ExpiresIn != 900 || tokens.RefreshToken == "" {
		t.Errorf("token fields: %v", tokens)
	}
	user := tokens.User
	if user.ID != claims["sub"] || user.Email != email || user.EmailVerified || user.DisplayName != "Ada" ||
		time.Since(user.CreatedAt) > time.Minute {
		t.Errorf("user: %+v, claims %v", user, claims)
	}
	session := tokens.Session
	if session.ID != claims["sid"] || session.OrganizationID != claims["org"] || session.AAL != identsphere.AAL1 ||
		session.AuthMethod != identsphere.AuthMethodPassword || float64(session.AuthTime) != claims["auth_time"] ||
		!session.ExpiresAt.After(time.Now().Add(29*24*time.Hour)) {
		t.Errorf("session: %+v, claims %v", session, claims)
	}
	for _, printed := range []string{fmt.Sprint(tokens), fmt.Sprintf("%+v", *tokens), fmt.Sprintf("%#v", tokens)} {
		if strings.Contains(printed, tokens.AccessToken) || strings.Contains(printed, tokens.RefreshToken) ||
			!strings.Contains(printed, user.ID) {
			t.Errorf("printed: %s", printed)
		}
	}
}

func TestLoginSessionRefreshAndLogoutFollowOneSessionFamily(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newClient(t, shared)
	user := signUp(t, shared).User
	res, err := c.Login(ctx, identsphere.LoginParams{Email: user.Email, Password: password})
	if err != nil || res.Tokens == nil {
		t.Fatalf("login: %v %+v", err, res)
	}
	first := res.Tokens

	info, err := c.Session(ctx, first.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if info.User.ID != user.ID || info.Session.ID != first.Session.ID || info.Organization.ID != first.Session.OrganizationID ||
		info.Organization.Role != "owner" || info.Organization.Slug == "" || len(info.Factors) != 0 || info.RecoveryCodesLeft != 0 {
		t.Errorf("session: %+v", info)
	}

	second, err := c.Refresh(ctx, identsphere.RefreshParams{RefreshToken: first.RefreshToken})
	if err != nil {
		t.Fatal(err)
	}
	if second.Session.ID != first.Session.ID || second.AccessToken == first.AccessToken || second.RefreshToken == first.RefreshToken {
		t.Errorf("refresh rotates the pair within the family: %v then %v", first, second)
	}

	if err := c.Logout(ctx, identsphere.LogoutParams{AccessToken: second.AccessToken}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Session(ctx, second.AccessToken)
	assertRefusal(t, err, 401, identsphere.CodeTokenRevoked)
	_, err = c.Refresh(ctx, identsphere.RefreshParams{RefreshToken: second.RefreshToken})
	assertRefusal(t, err, 401, identsphere.CodeTokenRevoked)
}

func TestLogoutScopesEndThisSessionOthersOrAll(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newClient(t, shared)
	user := signUp(t, shared).User
	login := func() *identsphere.TokenResponse {
		res, err := c.Login(ctx, identsphere.LoginParams{Email: user.Email, Password: password})
		if err != nil {
			t.Fatal(err)
		}
		return res.Tokens
	}
	live := func(tokens *identsphere.TokenResponse) bool {
		_, err := c.Session(ctx, tokens.AccessToken)
		if err != nil {
			assertRefusal(t, err, 401, identsphere.CodeTokenRevoked)
		}
		return err == nil
	}
	a, b, other := login(), login(), login()

	if err := c.Logout(ctx, identsphere.LogoutParams{AccessToken: a.AccessToken, Scope: identsphere.LogoutOthers}); err != nil {
		t.Fatal(err)
	}
	if !live(a) || live(b) || live(other) {
		t.Fatal("others: only the caller's session stays")
	}
	d := login()
	if err := c.Logout(ctx, identsphere.LogoutParams{AccessToken: d.AccessToken, Scope: identsphere.LogoutGlobal}); err != nil {
		t.Fatal(err)
	}
	if live(a) || live(d) {
		t.Fatal("global: every session ends")
	}

	// With only the refresh token (an access token that expired): the logout of that session.
	e := login()
	if err := c.Logout(ctx, identsphere.LogoutParams{RefreshToken: e.RefreshToken}); err != nil {
		t.Fatal(err)
	}
	if live(e) {
		t.Fatal("a logout by refresh token ends its session")
	}
}

func TestEveryRefusalIsAnErrorWithTheCatalogCodeAndTheRequestID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newClient(t, shared)
	alice, bob := signUp(t, shared), signUp(t, shared)
	cases := []struct {
		name   string
		call   func() error
		status int
		code   string
		// param is the field the refusal must name, when the test expects one.
		param string
	}{
		{"register: taken", func() error {
			_, err := c.Register(ctx, identsphere.RegisterParams{Email: alice.User.Email, Password: password})
			return err
		}, 409, identsphere.CodeEmailTaken, ""},
		{"register: weak password", func() error {
			_, err := c.Register(ctx, identsphere.RegisterParams{Email: uniqueEmail(), Password: "password123"})
			return err
		}, 422, identsphere.CodeWeakPassword, "password"},
		{"register: invalid email", func() error {
			_, err := c.Register(ctx, identsphere.RegisterParams{Email: "not an email", Password: password})
			return err
		}, 422, identsphere.CodeInvalidEmail, "email"},
		{"register: blank organization", func() error {
			_, err := c.Register(ctx, identsphere.RegisterParams{Email: uniqueEmail(), Password: password, Organization: " "})
			return err
		}, 400, identsphere.CodeInvalidRequest, "organization"},
		{"register: unknown organization", func() error {
			_, err := c.Register(ctx, identsphere.RegisterParams{Email: uniqueEmail(), Password: password, Organization: "no-such-org"})
			return err
		}, 404, identsphere.CodeOrganizationNotFound, ""},
		{"register: organization closed to sign-up", func() error {
			_, err := c.Register(ctx, identsphere.RegisterParams{Email: uniqueEmail(), Password: password, Organization: alice.Session.OrganizationID})
			return err
		}, 403, identsphere.CodeSignupNotAllowed, ""},
		{"login: wrong password", func() error {
			_, err := c.Login(ctx, identsphere.LoginParams{Email: alice.User.Email, Password: "wrong horse battery staple"})
			return err
		}, 401, identsphere.CodeInvalidCredentials, ""},
		{"login: another user's organization", func() error {
			_, err := c.Login(ctx, identsphere.LoginParams{Email: alice.User.Email, Password: password, Organization: bob.Session.OrganizationID})
			return err
		}, 403, identsphere.CodeNotAMember, ""},
		{"refresh: no token", func() error {
			_, err := c.Refresh(ctx, identsphere.RefreshParams{})
			return err
		}, 401, identsphere.CodeTokenMissing, ""},
		{"refresh: not a token", func() error {
			_, err := c.Refresh(ctx, identsphere.RefreshParams{RefreshToken: "not-a-token"})
			return err
		}, 401, identsphere.CodeTokenInvalid, ""},
		{"refresh: an access token", func() error {
			_, err := c.Refresh(ctx, identsphere.RefreshParams{RefreshToken: alice.AccessToken})
			return err
		}, 401, identsphere.CodeTokenInvalid, ""},
		{"logout: no credential", func() error {
			return c.Logout(ctx, identsphere.LogoutParams{})
		}, 401, identsphere.CodeTokenMissing, ""},
		{"logout: unknown scope", func() error {
			return c.Logout(ctx, identsphere.LogoutParams{AccessToken: alice.AccessToken, Scope: "everything"})
		}, 400, identsphere.CodeInvalidRequest, "scope"},
		{"session: no token", func() error {
			_, err := c.Session(ctx, "")
			return err
		}, 401, identsphere.CodeTokenMissing, ""},
		{"session: a refresh token", func() error {
			_, err := c.Session(ctx, alice.RefreshToken)
			return err
		}, 401, identsphere.CodeTokenInvalid, ""},
		{"verify mfa: not an mfa token", func() error {
			_, err := c.VerifyMFA(ctx, identsphere.VerifyMFAParams{MFAToken: alice.AccessToken, Code: "123456"})
			return err
		}, 401, identsphere.CodeTokenInvalid, ""},
		{"forgot password: invalid email", func() error {
			return c.ForgotPassword(ctx, "nobody")
		}, 422, identsphere.CodeInvalidEmail, "email"},
		{"reset password: unknown link", func() error {
			return c.ResetPassword(ctx, strings.Repeat("x", 43), "a new passphrase for me")
		}, 400, identsphere.CodeLinkInvalid, ""},
		{"change password: wrong current one", func() error {
			return c.ChangePassword(ctx, bob.AccessToken, "wrong horse battery staple", "a new passphrase for me")
		}, 401, identsphere.CodeInvalidCredentials, ""},
		{"change password: weak new one", func() error {
			return c.ChangePassword(ctx, bob.AccessToken, password, "password123")
		}, 422, identsphere.CodeWeakPassword, ""},
		{"verify email: unknown link", func() error {
			return c.VerifyEmail(ctx, strings.Repeat("x", 43))
		}, 400, identsphere.CodeLinkInvalid, ""},
	}
	for _, tc := range cases {
		refusal := assertRefusal(t, tc.call(), tc.status, tc.code)
		if refusal.RequestID == "" || (tc.param != "" && refusal.Param != tc.param) || !strings.Contains(refusal.Error(), tc.code) {
			t.Errorf("%s: %+v", tc.name, refusal)
		}
	}
}

func TestAReusedRefreshTokenRevokesTheFamily(t *testing.T) {
	t.Parallel()
	s := newServer(t, map[string]string{"IDENTSPHERE_REFRESH_REUSE_GRACE": "0"})
	ctx := context.Background()
	c := newClient(t, s)
	first := signUp(t, s)
	second, err := c.Refresh(ctx, identsphere.RefreshParams{RefreshToken: first.RefreshToken})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Refresh(ctx, identsphere.RefreshParams{RefreshToken: first.RefreshToken})
	assertRefusal(t, err, 401, identsphere.CodeRefreshTokenReused)
	_, err = c.Refresh(ctx, identsphere.RefreshParams{RefreshToken: second.RefreshToken})
	assertRefusal(t, err, 401, identsphere.CodeTokenRevoked)
}

func TestASecondFactorIsAnOutcomeOfLoginAndVerifyMFACompletesOrStepsUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newClient(t, shared)
	owner := signUp(t, shared)
	email := owner.User.Email
	login := func() *identsphere.LoginResult {
		res, err := c.Login(ctx, identsphere.LoginParams{Email: email, Password: password})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	// Two sessions signed in before the factor exists: they stay aal1.
	stepUp, stayAAL1 := login().Tokens, login().Tokens
	secret, confirmed := enrolledTOTP(t, shared, owner)
	codes := confirmed["recovery_codes"].([]any)
	if len(codes) != 10 {
		t.Fatalf("recovery codes: %v", codes)
	}

	res := login()
	if res.Tokens != nil || res.MFA == nil || res.MFA.MFAToken == "" || res.MFA.EnrollmentRequired ||
		len(res.MFA.Factors) != 1 || res.MFA.Factors[0] != "totp" {
		t.Fatalf("want the second-factor step, got %+v", res)
	}
	if printed := fmt.Sprintf("%v %+v %#v", *res.MFA, *res.MFA, res.MFA); strings.Contains(printed, res.MFA.MFAToken) {
		t.Errorf("printed: %s", printed)
	}
	_, err := c.VerifyMFA(ctx, identsphere.VerifyMFAParams{MFAToken: res.MFA.MFAToken, Code: "000000"})
	assertRefusal(t, err, 401, identsphere.CodeMFAInvalidCode)
	// The confirmation spent this 30-second step's code: the next step's is within the ±1 step accepted.
	signedIn, err := c.VerifyMFA(ctx, identsphere.VerifyMFAParams{MFAToken: res.MFA.MFAToken, Code: totp(t, secret, time.Now().Add(30*time.Second))})
	if err != nil {
		t.Fatal(err)
	}
	if signedIn.Session.AAL != identsphere.AAL2 || part(t, signedIn.AccessToken, 1)["aal"] != "aal2" {
		t.Errorf("a verified sign-in is aal2: %+v", signedIn.Session)
	}
	// A recovery code completes a sign-in too.
	if _, err := c.VerifyMFA(ctx, identsphere.VerifyMFAParams{MFAToken: login().MFA.MFAToken, Code: codes[0].(string)}); err != nil {
		t.Fatal(err)
	}

	// Step-up: a session from before the factor, with its refresh token and a recovery code.
	raised, err := c.VerifyMFA(ctx, identsphere.VerifyMFAParams{AccessToken: stepUp.AccessToken, RefreshToken: stepUp.RefreshToken, Code: codes[1].(string)})
	if err != nil {
		t.Fatal(err)
	}
	if stepUp.Session.AAL != identsphere.AAL1 || raised.Session.AAL != identsphere.AAL2 || raised.Session.ID != stepUp.Session.ID {
		t.Errorf("a step-up raises the same session: %+v, was %+v", raised.Session, stepUp.Session)
	}
	info, err := c.Session(ctx, raised.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if info.RecoveryCodesLeft != 8 || len(info.Factors) != 1 || info.Factors[0].Type != "totp" || info.Factors[0].ConfirmedAt.IsZero() {
		t.Errorf("session after two recovery codes: %+v", info)
	}
	// Once the user has a factor, changing the password needs aal2.
	assertRefusal(t, c.ChangePassword(ctx, stayAAL1.AccessToken, password, "a new passphrase for me"), 403, identsphere.CodeInsufficientAAL)
}

func TestRefreshWithAnOrganizationSwitchesTheSession(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newClient(t, shared)
	tokens := signUp(t, shared)
	slug := unique()
	acme := newOrganization(t, shared, tokens.AccessToken, slug)

	switched, err := c.Refresh(ctx, identsphere.RefreshParams{RefreshToken: tokens.RefreshToken, Organization: slug})
	if err != nil {
		t.Fatal(err)
	}
	claims, err := newVerifier(t, shared).Verify(ctx, switched.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if switched.Session.OrganizationID != acme || claims.Org != acme || claims.SID != tokens.Session.ID {
		t.Errorf("switched into %s: session %+v, claims %+v", acme, switched.Session, claims)
	}
	_, err = c.Refresh(ctx, identsphere.RefreshParams{RefreshToken: switched.RefreshToken, Organization: signUp(t, shared).Session.OrganizationID})
	assertRefusal(t, err, 403, identsphere.CodeNotAMember)
}

func TestTheAccountCallsVerifyTheEmailResetAndChangeThePassword(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newClient(t, shared)
	tokens := signUp(t, shared)
	email := tokens.User.Email

	if err := c.VerifyEmail(ctx, mailedLink(t, shared, email, "/verify-email")); err != nil {
		t.Fatal(err)
	}
	info, err := c.Session(ctx, tokens.AccessToken)
	if err != nil || !info.User.EmailVerified {
		t.Fatalf("after verification: %v %+v", err, info)
	}

	if err := c.ForgotPassword(ctx, email); err != nil {
		t.Fatal(err)
	}
	if err := c.ForgotPassword(ctx, uniqueEmail()); err != nil {
		t.Fatal("an unknown email gets the same answer:", err)
	}
	link := mailedLink(t, shared, email, "/reset-password")
	assertRefusal(t, c.ResetPassword(ctx, link, "password123"), 422, identsphere.CodeWeakPassword)
	if err := c.ResetPassword(ctx, link, "a reset passphrase here"); err != nil {
		t.Fatal(err)
	}
	assertRefusal(t, c.ResetPassword(ctx, link, "another passphrase here"), 400, identsphere.CodeLinkInvalid)
	_, err = c.Session(ctx, tokens.AccessToken)
	assertRefusal(t, err, 401, identsphere.CodeTokenRevoked) // a reset ends every session

	res, err := c.Login(ctx, identsphere.LoginParams{Email: email, Password: "a reset passphrase here"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ChangePassword(ctx, res.Tokens.AccessToken, "a reset passphrase here", "a changed passphrase"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(ctx, identsphere.LoginParams{Email: email, Password: "a changed passphrase"}); err != nil {
		t.Fatal(err)
	}
}

func TestWrongSecondFactorCodesAreRateLimitedWithRetryAfter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newClient(t, shared)
	tokens := signUp(t, shared)
	enrolledTOTP(t, shared, tokens)
	res, err := c.Login(ctx, identsphere.LoginParams{Email: tokens.User.Email, Password: password})
	if err != nil || res.MFA == nil {
		t.Fatalf("login: %v %+v", err, res)
	}
	verify := func() error {
		_, err := c.VerifyMFA(ctx, identsphere.VerifyMFAParams{MFAToken: res.MFA.MFAToken, Code: "000000"})
		return err
	}
	for i := 0; i < 5; i++ {
		assertRefusal(t, verify(), 401, identsphere.CodeMFAInvalidCode)
	}
	limited := assertRefusal(t, verify(), 429, identsphere.CodeRateLimited)
	if limited.RetryAfter < time.Second {
		t.Errorf("Retry-After: %v", limited.RetryAfter)
	}
}

func TestTheClientSendsItsUserAgentAndTimesOut(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tokens := signUp(t, shared) // by the SDK
	list := call(t, shared, http.MethodGet, "/v1/auth/sessions", tokens.AccessToken, nil, http.StatusOK)
	if agent := list["sessions"].([]any)[0].(map[string]any)["user_agent"]; agent != "identsphere-go/"+identsphere.Version {
		t.Errorf("user agent seen by IdentSphere: %v", agent)
	}

	// A server that accepts and never answers.
	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	c, err := identsphere.NewClient("http://"+hung.Addr().String(), identsphere.WithTimeout(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	_, err = c.Session(ctx, tokens.AccessToken)
	var netErr net.Error
	var refusal *identsphere.Error
	if !errors.As(err, &netErr) || !netErr.Timeout() || errors.As(err, &refusal) || time.Since(started) > 5*time.Second {
		t.Errorf("want a timeout that is not a refusal, got %v after %v", err, time.Since(started))
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	patient, err := identsphere.NewClient("http://" + hung.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err = patient.Session(short, tokens.AccessToken); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the context bounds a call: %v", err)
	}
	if strings.Contains(err.Error(), tokens.AccessToken) {
		t.Error("an error names the token")
	}

	for _, bad := range []string{"", "auth.example.com", "ftp://auth.example.com", "https://auth.example.com/?x=1"} {
		if _, err := identsphere.NewClient(bad); err == nil {
			t.Errorf("NewClient(%q) accepted", bad)
		}
	}
}

func TestEveryCodeConstantIsOneTheServerDocuments(t *testing.T) {
	t.Parallel()
	resp, err := http.Get(shared.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Components struct {
			Schemas struct {
				Error struct {
					Properties struct {
						Code struct {
							Enum []string `json:"enum"`
						} `json:"code"`
					} `json:"properties"`
				} `json:"Error"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, code := range doc.Components.Schemas.Error.Properties.Code.Enum {
		documented[code] = true
	}
	file, err := parser.ParseFile(token.NewFileSet(), "errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	constants := 0
	ast.Inspect(file, func(n ast.Node) bool {
		spec, ok := n.(*ast.ValueSpec)
		if !ok || !strings.HasPrefix(spec.Names[0].Name, "Code") {
			return true
		}
		value, _ := strconv.Unquote(spec.Values[0].(*ast.BasicLit).Value)
		constants++
		if !documented[value] {
			t.Errorf("%s = %q is not in the server's error catalog", spec.Names[0].Name, value)
		}
		return true
	})
	if constants < 20 {
		t.Fatalf("read only %d code constants", constants)
	}
}

func TestAnOrganizationThatRequiresASecondFactorAnswersSignUpWithItsEnrollment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newClient(t, shared)
	owner := signUp(t, shared)
	slug := unique()
	newOrganization(t, shared, owner.AccessToken, slug)
	inside, err := c.Refresh(ctx, identsphere.RefreshParams{RefreshToken: owner.RefreshToken, Organization: slug})
	if err != nil {
		t.Fatal(err)
	}
	call(t, shared, http.MethodPatch, "/v1/organizations/"+slug, inside.AccessToken,
		map[string]any{"signup": map[string]any{"mode": "open"}, "policy": map[string]any{"mfa_required": true}}, http.StatusOK)

	res, err := c.Register(ctx, identsphere.RegisterParams{Email: uniqueEmail(), Password: password, Organization: slug})
	if err != nil {
		t.Fatal(err)
	}
	if res.Tokens != nil || res.MFA == nil || !res.MFA.EnrollmentRequired || len(res.MFA.Factors) != 0 || res.MFA.MFAToken == "" {
		t.Errorf("want an enrollment, got %+v", res)
	}
}
