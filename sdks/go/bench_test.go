package identsphere_test

// What verifying an access token costs, per request: `go test -run '^$' -bench . -benchmem` (against the
// IdentSphere the tests start). BenchmarkRS256 is the floor any local verification pays: the SHA-256 and
// RSA-2048 signature check of the same token with crypto/rsa alone.

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	identsphere "github.com/IdentSphere/sdks/go"
)

func BenchmarkRS256(b *testing.B) {
	token := signUp(b, shared).AccessToken
	cut := strings.LastIndexByte(token, '.')
	signature, err := base64.RawURLEncoding.DecodeString(token[cut+1:])
	if err != nil {
		b.Fatal(err)
	}
	kid := part(b, token, 0)["kid"].(string)
	var key *rsa.PublicKey
	for _, k := range publishedJWKS(b, shared) {
		if k.Kid == kid {
			key = &rsa.PublicKey{N: bigFromB64(b, k.N), E: int(bigFromB64(b, k.E).Int64())}
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		digest := sha256.Sum256([]byte(token[:cut]))
		if err := rsa.VerifyPKCS1v15(key, crypto.SHA256, digest[:], signature); err != nil {
			b.Fatal(err)
		}
	}
}

// benchVerify measures Verify of a genuine token with v, its keys already fetched.
func benchVerify(b *testing.B, v *identsphere.Verifier) {
	token := signUp(b, shared).AccessToken
	ctx := context.Background()
	if _, err := v.Verify(ctx, token); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := v.Verify(ctx, token); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	benchVerify(b, newVerifier(b, shared))
}

// BenchmarkVerifyWithRevocations checks the token against a feed holding the entries of 50 logouts.
func BenchmarkVerifyWithRevocations(b *testing.B) {
	c := newClient(b, shared)
	for i := 0; i < 50; i++ {
		if err := c.Logout(context.Background(), identsphere.LogoutParams{AccessToken: signUp(b, shared).AccessToken}); err != nil {
			b.Fatal(err)
		}
	}
	feed, _ := startedFeed(b, shared)
	if entries := feed.Status().Entries; entries < 50 {
		b.Fatalf("%d entries", entries)
	}
	benchVerify(b, newVerifier(b, shared, identsphere.WithRevocations(feed)))
}

// BenchmarkVerifyParallel is Verify from every core at once through one Verifier.
func BenchmarkVerifyParallel(b *testing.B) {
	v := newVerifier(b, shared)
	token := signUp(b, shared).AccessToken
	if _, err := v.Verify(context.Background(), token); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(context.Background(), token); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkMiddleware is a request through Middleware to a handler, in process (no network).
func BenchmarkMiddleware(b *testing.B) {
	token := signUp(b, shared).AccessToken
	handler := identsphere.Middleware(newVerifier(b, shared))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code, w.Body)
		}
	}
}
