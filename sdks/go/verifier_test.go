package identsphere_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	identsphere "github.com/IdentSphere/sdks/go"
)

func TestAGenuineAccessTokenVerifiesWithEveryClaimTyped(t *testing.T) {
	t.Parallel()
	tokens := signUp(t, shared)
	claims, err := newVerifier(t, shared).Verify(context.Background(), tokens.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if claims.Sub != tokens.User.ID || claims.Typ != "access" || claims.AAL != identsphere.AAL1 ||
		claims.AuthMethod != identsphere.AuthMethodPassword || claims.Iss != shared.URL {
		t.Errorf("claims: %+v", claims)
	}
	// Every claim of the integration page, as the token carries it.
	encoded, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(encoded, &got); err != nil {
		t.Fatal(err)
	}
	sent := part(t, tokens.AccessToken, 1)
	for _, name := range []string{"sub", "org", "iss", "exp", "iat", "typ", "email", "jti", "sid", "aal", "auth_time", "auth_method"} {
		if got[name] == nil || got[name] != sent[name] {
			t.Errorf("%s: verified %v, sent %v", name, got[name], sent[name])
		}
	}
}

func TestForgedAndMisusedTokensAreTokenInvalid(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newClient(t, shared)
	v := newVerifier(t, shared)
	tokens := signUp(t, shared)
	genuine := tokens.AccessToken
	if _, err := v.Verify(ctx, genuine); err != nil {
		t.Fatal("the genuine token passes:", err)
	}
	header, claims := part(t, genuine, 0), part(t, genuine, 1)
	kid := header["kid"]
	signature := genuine[strings.LastIndexByte(genuine, '.')+1:]

	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	publicKey := ourPublicKeyPEM(t, shared, kid.(string))
	otherUser := copyOf(claims)
	otherUser["sub"] = signUp(t, shared).User.ID
	enrolledTOTP(t, shared, tokens)
	mfa, err := c.Login(ctx, identsphere.LoginParams{Email: tokens.User.Email, Password: password})
	if err != nil || mfa.MFA == nil {
		t.Fatalf("login: %v %+v", err, mfa)
	}

	cases := map[string]string{
		"another key under our kid": signRS256(t, otherKey, header, claims),
		"alg none":                  b64JSON(t, map[string]any{"alg": "none", "typ": "JWT", "kid": kid}) + "." + b64JSON(t, claims) + ".",
		"HS256 keyed with our public key": signHS256(t, publicKey,
			map[string]any{"alg": "HS256", "typ": "JWT", "kid": kid}, claims),
		"our signature over other claims": b64JSON(t, header) + "." + b64JSON(t, otherUser) + "." + signature,
		"a header without typ":            b64JSON(t, map[string]any{"alg": "RS256", "kid": kid}) + "." + b64JSON(t, claims) + "." + signature,
		"a header without kid":            b64JSON(t, map[string]any{"alg": "RS256", "typ": "JWT"}) + "." + b64JSON(t, claims) + "." + signature,
		"an unknown kid":                  b64JSON(t, map[string]any{"alg": "RS256", "typ": "JWT", "kid": "not-a-key-of-ours"}) + "." + b64JSON(t, claims) + "." + signature,
		"a refresh token":                 tokens.RefreshToken,
		"an mfa token":                    mfa.MFA.MFAToken,
		"not a JWT":                       "not-a-jwt",
		"four parts":                      genuine + ".x",
		"empty":                           "",
		"over 8 KiB":                      genuine + strings.Repeat("A", 8*1024),
	}
	if part(t, mfa.MFA.MFAToken, 0)["kid"] != kid || part(t, mfa.MFA.MFAToken, 1)["typ"] != "mfa" {
		t.Fatal("the mfa token is signed like an access token: only its typ tells them apart")
	}
	for name, token := range cases {
		_, err := v.Verify(ctx, token)
		if refusal := assertRefusal(t, err, 401, identsphere.CodeTokenInvalid); refusal.RequestID != "" {
			t.Errorf("%s: a local refusal has no request id: %+v", name, refusal)
		}
	}

	elsewhere := newVerifier(t, shared, identsphere.WithIssuer("https://someone-else.example"))
	_, err = elsewhere.Verify(ctx, genuine)
	assertRefusal(t, err, 401, identsphere.CodeTokenInvalid)
}

// ourPublicKeyPEM is the server's public key kid in PEM, the secret of the classic RS256-to-HS256
// confusion.
func ourPublicKeyPEM(t testing.TB, s *server, kid string) []byte {
	t.Helper()
	for _, k := range publishedJWKS(t, s) {
		if k.Kid == kid {
			key := &rsa.PublicKey{N: bigFromB64(t, k.N), E: int(bigFromB64(t, k.E).Int64())}
			der, err := x509.MarshalPKIXPublicKey(key)
			if err != nil {
				t.Fatal(err)
			}
			return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		}
	}
	t.Fatalf("kid %s is not published", kid)
	return nil
}

func copyOf(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestAnExpiredTokenIsTokenExpiredUnlessWithinTheLeeway(t *testing.T) {
	t.Parallel()
	s := newServer(t, map[string]string{"IDENTSPHERE_ACCESS_TOKEN_TTL": "1"})
	token := signUp(t, s).AccessToken
	v := newVerifier(t, s)
	// The token lives one second of real time.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := v.Verify(context.Background(), token)
		if err != nil {
			assertRefusal(t, err, 401, identsphere.CodeTokenExpired)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a one-second token never expired")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := newVerifier(t, s, identsphere.WithLeeway(time.Minute)).Verify(context.Background(), token); err != nil {
		t.Errorf("within the leeway: %v", err)
	}
}

func TestManyGoroutinesVerifyThroughOneVerifierAndOneJWKSFetch(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	users := make([]*identsphere.TokenResponse, 8)
	for i := range users {
		users[i] = signUp(t, s)
	}
	forged := b64JSON(t, map[string]any{"alg": "none", "typ": "JWT", "kid": part(t, users[0].AccessToken, 0)["kid"]}) +
		"." + strings.Split(users[0].AccessToken, ".")[1] + "."
	before := served(t, s, "/.well-known/jwks.json")
	v := newVerifier(t, s) // fresh: the goroutines race for its first fetch

	const goroutines, rounds = 64, 40
	var wg sync.WaitGroup
	failures := make(chan string, goroutines*rounds)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				user := users[(g+r)%len(users)]
				claims, err := v.Verify(context.Background(), user.AccessToken)
				if err != nil || claims.Sub != user.User.ID {
					failures <- fmt.Sprintf("goroutine %d: %v %+v", g, err, claims)
				}
				if _, err := v.Verify(context.Background(), forged); err == nil {
					failures <- fmt.Sprintf("goroutine %d: a forged token passed", g)
				}
			}
		}(g)
	}
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Error(f)
	}
	if fetched := served(t, s, "/.well-known/jwks.json") - before; fetched != 1 {
		t.Errorf("%d JWKS fetches for %d verifications", fetched, 2*goroutines*rounds)
	}
}
