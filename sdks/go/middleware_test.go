package identsphere_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	identsphere "github.com/IdentSphere/sdks/go"
)

// app is a net/http service on a real port whose routes the Middleware protects: /me (any session),
// /aal2 (RequireAAL2), /orgs/{id}/… (RequireOrganizationFunc on the path), /pinned (RequireOrganization).
// Each answers with the claims it was handed, as JSON.
func app(t testing.TB, v *identsphere.Verifier, pinned string) *httptest.Server {
	t.Helper()
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, ok := identsphere.ClaimsFromContext(r.Context())
		if !ok {
			http.Error(w, "no claims", http.StatusInternalServerError)
			return
		}
		_ = json.NewEncoder(w).Encode(claims)
	})
	orgInPath := func(r *http.Request) string {
		return strings.SplitN(strings.TrimPrefix(r.URL.Path, "/orgs/"), "/", 2)[0]
	}
	mux := http.NewServeMux()
	mux.Handle("/me", identsphere.Middleware(v)(echo))
	mux.Handle("/aal2", identsphere.Middleware(v, identsphere.RequireAAL2())(echo))
	mux.Handle("/orgs/", identsphere.Middleware(v, identsphere.RequireOrganizationFunc(orgInPath))(echo))
	mux.Handle("/pinned", identsphere.Middleware(v, identsphere.RequireOrganization(pinned))(echo))
	server := httptest.NewServer(mux)
	t.Cleanup(server.Close)
	return server
}

// get calls path on the app with an optional bearer token and extra headers ("Name: value"). The answer's
// body is read at once, so the connection serves the next call.
func get(t testing.TB, a *httptest.Server, method, path, token string, headers ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, a.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ": ")
		req.Header.Set(name, value)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp
}

// assertEnvelope checks an answer of the Middleware: the status, IdentSphere's envelope with code, and the
// headers IdentSphere sets.
func assertEnvelope(t testing.TB, resp *http.Response, status int, code string) {
	t.Helper()
	body, _ := io.ReadAll(resp.Body)
	var env struct {
		Error map[string]string `json:"error"`
	}
	if resp.StatusCode != status || json.Unmarshal(body, &env) != nil || env.Error["code"] != code ||
		env.Error["message"] == "" || env.Error["type"] == "" || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("want %d %s, got %d %s", status, code, resp.StatusCode, body)
	}
	if (status == 401) != (resp.Header.Get("WWW-Authenticate") == "Bearer") {
		t.Errorf("WWW-Authenticate on a %d: %q", status, resp.Header.Get("WWW-Authenticate"))
	}
}

// claimsIn is the claims a route echoed.
func claimsIn(t testing.TB, resp *http.Response) identsphere.Claims {
	t.Helper()
	var claims identsphere.Claims
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("want 200, got %d %s", resp.StatusCode, body)
	}
	if err := json.NewDecoder(resp.Body).Decode(&claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

func TestTheMiddlewareHandsTheClaimsToTheHandlerAndRefusesInTheEnvelope(t *testing.T) {
	t.Parallel()
	tokens := signUp(t, shared)
	token := tokens.AccessToken
	a := app(t, newVerifier(t, shared), tokens.Session.OrganizationID)

	if claims := claimsIn(t, get(t, a, http.MethodGet, "/me", token)); claims.Sub != tokens.User.ID || claims.SID != tokens.Session.ID {
		t.Errorf("claims: %+v", claims)
	}
	if claims := claimsIn(t, get(t, a, http.MethodGet, "/me", "", "Cookie: theme=dark; identsphere_at="+token)); claims.Sub != tokens.User.ID {
		t.Errorf("claims from the cookie: %+v", claims)
	}
	assertEnvelope(t, get(t, a, http.MethodGet, "/me", ""), 401, identsphere.CodeTokenMissing)
	assertEnvelope(t, get(t, a, http.MethodGet, "/me", "", "Authorization: Basic YTpi"), 401, identsphere.CodeTokenMissing)
	assertEnvelope(t, get(t, a, http.MethodGet, "/me", "not-a-jwt"), 401, identsphere.CodeTokenInvalid)
	assertEnvelope(t, get(t, a, http.MethodGet, "/me", tokens.RefreshToken), 401, identsphere.CodeTokenInvalid)

	// Organizations: the one in the path, or the pinned one.
	own := "/orgs/" + tokens.Session.OrganizationID + "/things"
	if claims := claimsIn(t, get(t, a, http.MethodGet, own, token)); claims.Org != tokens.Session.OrganizationID {
		t.Errorf("claims: %+v", claims)
	}
	claimsIn(t, get(t, a, http.MethodGet, "/pinned", token))
	other := signUp(t, shared)
	assertEnvelope(t, get(t, a, http.MethodGet, own, other.AccessToken), 403, identsphere.CodeNotAMember)
	assertEnvelope(t, get(t, a, http.MethodGet, "/orgs//things", token), 403, identsphere.CodeNotAMember)
	assertEnvelope(t, get(t, a, http.MethodGet, "/pinned", other.AccessToken), 403, identsphere.CodeNotAMember)
	assertEnvelope(t, get(t, a, http.MethodGet, own, ""), 401, identsphere.CodeTokenMissing)

	// A second factor: refused at aal1, admitted once the session confirms TOTP.
	assertEnvelope(t, get(t, a, http.MethodGet, "/aal2", token), 403, identsphere.CodeInsufficientAAL)
	_, confirmed := enrolledTOTP(t, shared, tokens)
	if claims := claimsIn(t, get(t, a, http.MethodGet, "/aal2", confirmed["access_token"].(string))); claims.AAL != identsphere.AAL2 {
		t.Errorf("claims: %+v", claims)
	}

	if _, ok := identsphere.ClaimsFromContext(context.Background()); ok {
		t.Error("claims outside the middleware")
	}
}

func TestACrossSiteUnsafeRequestWithTheCookieIsRefused(t *testing.T) {
	t.Parallel()
	token := signUp(t, shared).AccessToken
	v := newVerifier(t, shared)
	a := app(t, v, "")
	cookie := "Cookie: identsphere_at=" + token

	claimsIn(t, get(t, a, http.MethodPost, "/me", "", cookie, "Origin: "+a.URL))
	claimsIn(t, get(t, a, http.MethodPost, "/me", "", cookie)) // no Origin, no Sec-Fetch-Site: not a browser's cross-site request
	assertEnvelope(t, get(t, a, http.MethodPost, "/me", "", cookie, "Origin: https://evil.example"), 403, identsphere.CodeCSRFRejected)
	assertEnvelope(t, get(t, a, http.MethodDelete, "/me", "", cookie, "Sec-Fetch-Site: cross-site"), 403, identsphere.CodeCSRFRejected)
	claimsIn(t, get(t, a, http.MethodGet, "/me", "", cookie, "Origin: https://evil.example")) // a safe method
	claimsIn(t, get(t, a, http.MethodPost, "/me", token, "Origin: https://evil.example"))     // a bearer token is no CSRF risk

	// With allowed origins, those and only those.
	allowed := httptest.NewServer(identsphere.Middleware(v, identsphere.AllowedOrigins("https://app.example/"))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	defer allowed.Close()
	if resp := get(t, allowed, http.MethodPost, "/", "", cookie, "Origin: https://app.example"); resp.StatusCode != http.StatusOK {
		t.Errorf("an allowed origin: %d", resp.StatusCode)
	}
	assertEnvelope(t, get(t, allowed, http.MethodPost, "/", "", cookie, "Origin: "+allowed.URL), 403, identsphere.CodeCSRFRejected)
}

func TestWithoutKeysTheMiddlewareAnswersServiceUnavailable(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	token := signUp(t, s).AccessToken
	s.stop()
	a := app(t, newVerifier(t, s, identsphere.WithLogger(nil)), "")
	resp := get(t, a, http.MethodGet, "/me", token)
	if resp.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After on a 503")
	}
	assertEnvelope(t, resp, 503, identsphere.CodeServiceUnavailable)
}
