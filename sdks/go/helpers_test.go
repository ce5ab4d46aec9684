package identsphere_test

// What the tests do to IdentSphere besides the SDK's calls: sign up users, enroll a second factor,
// create an organization, read the server's own metrics and mail, forge tokens.

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	identsphere "github.com/IdentSphere/sdks/go"
)

// password passes IdentSphere's password policy.
const password = "correct horse battery staple"

// newClient is a Client of s.
func newClient(t testing.TB, s *server) *identsphere.Client {
	t.Helper()
	c, err := identsphere.NewClient(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newVerifier is a Verifier of s with opts.
func newVerifier(t testing.TB, s *server, opts ...identsphere.Option) *identsphere.Verifier {
	t.Helper()
	v, err := identsphere.NewVerifier(s.URL, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// unique is a name no other test uses.
func unique() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "go-sdk-" + hex.EncodeToString(b)
}

// uniqueEmail is an address no other test uses.
func uniqueEmail() string { return unique() + "@example.com" }

// signUp registers a new user on s: its token response.
func signUp(t testing.TB, s *server) *identsphere.TokenResponse {
	t.Helper()
	res, err := newClient(t, s).Register(context.Background(), identsphere.RegisterParams{Email: uniqueEmail(), Password: password})
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	if res.Tokens == nil {
		t.Fatalf("register answered %v, not tokens", res.MFA)
	}
	return res.Tokens
}

// call sends a JSON request to s for what the SDK does not wrap (enrolling TOTP, creating an
// organization), checks the status and returns the JSON answer (nil for none).
func call(t testing.TB, s *server, method, path, bearer string, body any, status int) map[string]any {
	t.Helper()
	var payload io.Reader
	if body != nil {
		encoded, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		payload = bytes.NewReader(encoded)
	}
	req, err := http.NewRequest(method, s.URL+path, payload)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, status, answer)
	}
	if len(answer) == 0 {
		return nil
	}
	var out map[string]any
	if err := json.Unmarshal(answer, &out); err != nil {
		t.Fatalf("%s %s: %v: %s", method, path, err, answer)
	}
	return out
}

// totp is the RFC 6238 code of secret (base32) at: SHA-1, 6 digits, 30-second steps, as IdentSphere and
// every authenticator app use.
func totp(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.TrimRight(strings.ToUpper(secret), "="))
	if err != nil {
		t.Fatalf("TOTP secret: %v", err)
	}
	var counter [8]byte
	binary.BigEndian.PutUint64(counter[:], uint64(at.Unix()/30))
	mac := hmac.New(sha1.New, key)
	mac.Write(counter[:])
	sum := mac.Sum(nil)
	offset := sum[len(sum)-1] & 0x0f
	code := binary.BigEndian.Uint32(sum[offset:offset+4]) & 0x7fffffff
	return fmt.Sprintf("%06d", code%1_000_000)
}

// enrolledTOTP enrolls and confirms TOTP in the session of tokens (a recent sign-in): the secret, and the
// confirmation's answer (the session at aal2, with access_token, refresh_token and recovery_codes).
func enrolledTOTP(t testing.TB, s *server, tokens *identsphere.TokenResponse) (string, map[string]any) {
	t.Helper()
	enrollment := call(t, s, http.MethodPost, "/v1/auth/mfa/totp", tokens.AccessToken, map[string]any{}, http.StatusOK)
	secret := enrollment["secret"].(string)
	confirmed := call(t, s, http.MethodPost, "/v1/auth/mfa/totp/confirm", tokens.AccessToken,
		map[string]any{"code": totp(t, secret, time.Now()), "refresh_token": tokens.RefreshToken}, http.StatusOK)
	return secret, confirmed
}

// newOrganization creates an organization owned by the user of accessToken: its id.
func newOrganization(t testing.TB, s *server, accessToken, slug string) string {
	t.Helper()
	org := call(t, s, http.MethodPost, "/v1/organizations", accessToken, map[string]any{"name": "Org " + slug, "slug": slug}, http.StatusCreated)
	return org["id"].(string)
}

// served is how many requests s has answered on route (its own /metrics, whoever made them).
func served(t testing.TB, s *server, route string) int {
	t.Helper()
	resp, err := http.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	total := 0
	scanner := bufio.NewScanner(resp.Body)
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	for scanner.Scan() {
		line := scanner.Text()
		if strings.HasPrefix(line, "identsphere_http_requests_total{") && strings.Contains(line, `route="`+route+`"`) {
			n, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			if err != nil {
				t.Fatalf("metrics line %q: %v", line, err)
			}
			total += int(n)
		}
	}
	return total
}

// publishedJWKS is s's JWKS now.
func publishedJWKS(t testing.TB, s *server) []struct{ Kid, N, E string } {
	t.Helper()
	var jwks struct {
		Keys []struct{ Kid, N, E string } `json:"keys"`
	}
	resp, err := http.Get(s.URL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&jwks); err != nil {
		t.Fatal(err)
	}
	return jwks.Keys
}

// part decodes a part of a JWT (0: header, 1: claims) as JSON.
func part(t testing.TB, token string, i int) map[string]any {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[i])
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// b64JSON is v as JSON in base64url, a JWT part.
func b64JSON(t testing.TB, v any) string {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(raw)
}

// signRS256 is a JWT of header and claims signed by key.
func signRS256(t testing.TB, key *rsa.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	input := b64JSON(t, header) + "." + b64JSON(t, claims)
	digest := sha256.Sum256([]byte(input))
	signature, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(signature)
}

// signHS256 is a JWT of header and claims MACed with secret.
func signHS256(t testing.TB, secret []byte, header, claims map[string]any) string {
	t.Helper()
	input := b64JSON(t, header) + "." + b64JSON(t, claims)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// mailedLink waits for the mail to `to` whose link goes to path (/verify-email, /reset-password) in s's
// outbox (no SMTP in tests: mail is written to the data directory), and returns the link's token.
func mailedLink(t testing.TB, s *server, to, path string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		files, _ := filepath.Glob(filepath.Join(s.DataDir, "outbox", "*.eml"))
		for _, file := range files {
			if token := linkIn(t, file, to, path); token != "" {
				return token
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no mail to %s with a %s link", to, path)
	return ""
}

// linkIn is the token of the link to path in the plain-text part of the mail in file, if it is to `to`.
func linkIn(t testing.TB, file, to, path string) string {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		return "" // still being written
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil || !strings.EqualFold(msg.Header.Get("To"), to) {
		return ""
	}
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	// The reader decodes the parts' quoted-printable.
	parts := multipart.NewReader(msg.Body, params["boundary"])
	text, err := parts.NextPart()
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	body, _ := io.ReadAll(text)
	for _, word := range strings.Fields(string(body)) {
		if link, err := url.Parse(word); err == nil && link.Path == path {
			return link.Query().Get("token")
		}
	}
	return ""
}

// assertRefusal checks that err is an *Error with status and code, and the envelope's other fields.
func assertRefusal(t testing.TB, err error, status int, code string) *identsphere.Error {
	t.Helper()
	var refusal *identsphere.Error
	if !errors.As(err, &refusal) {
		t.Fatalf("want a %d %s refusal, got %v", status, code, err)
	}
	if refusal.Status != status || refusal.Code != code || refusal.Type == "" || refusal.Message == "" {
		t.Fatalf("want a %d %s refusal, got %+v", status, code, refusal)
	}
	return refusal
}

// bigFromB64 is a base64url big-endian integer (a JWK's n or e).
func bigFromB64(t testing.TB, s string) *big.Int {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return new(big.Int).SetBytes(raw)
}

// waitFor polls cond until it holds, failing the test after within.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen within %v", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
