package identsphere_test

// The JWKS cache, counted at the server itself (its /metrics): one fetch for a flood of unknown kids, at
// most one per refetch interval, the Cache-Control max-age honoured, the keys kept when IdentSphere is
// down, and one refetch after a key rotation.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	identsphere "github.com/IdentSphere/sdks/go"
)

const jwksRoute = "/.well-known/jwks.json"

// forgedKid is a token under a kid no server has; its signature is never reached.
func forgedKid(t testing.TB, claims string) string {
	t.Helper()
	kid := make([]byte, 16)
	_, _ = rand.Read(kid)
	return b64JSON(t, map[string]any{"alg": "RS256", "typ": "JWT", "kid": hex.EncodeToString(kid)}) + "." + claims + "." +
		base64.RawURLEncoding.EncodeToString(make([]byte, 256))
}

func TestAFloodOfUnknownKidsCostsOneJWKSFetch(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	genuine := signUp(t, s).AccessToken
	claims := strings.Split(genuine, ".")[1]
	before := served(t, s, jwksRoute)
	v := newVerifier(t, s) // the default refetch interval, 30 s

	var wg sync.WaitGroup
	refused := make(chan error, 64*20)
	for g := 0; g < 64; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				_, err := v.Verify(context.Background(), forgedKid(t, claims))
				refused <- err
			}
		}()
	}
	wg.Wait()
	close(refused)
	for err := range refused {
		assertRefusal(t, err, 401, identsphere.CodeTokenInvalid)
	}
	if _, err := v.Verify(context.Background(), genuine); err != nil {
		t.Fatal(err)
	}
	if fetched := served(t, s, jwksRoute) - before; fetched != 1 {
		t.Errorf("1,280 forged kids and a genuine token cost %d JWKS fetches, want 1", fetched)
	}
}

func TestUnknownKidsRefetchAtMostOncePerInterval(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	claims := strings.Split(signUp(t, s).AccessToken, ".")[1]
	const interval = 500 * time.Millisecond
	v := newVerifier(t, s, identsphere.WithJWKSRefetchInterval(interval))
	before := served(t, s, jwksRoute)

	started := time.Now()
	for time.Since(started) < 4*interval {
		_, err := v.Verify(context.Background(), forgedKid(t, claims))
		assertRefusal(t, err, 401, identsphere.CodeTokenInvalid)
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(started)
	fetched := served(t, s, jwksRoute) - before
	// One at the start, then one each time the interval has passed: never more, whatever the load.
	if allowed := int(elapsed/interval) + 1; fetched < 3 || fetched > allowed {
		t.Errorf("%d fetches in %v with a %v interval, want 3 to %d", fetched, elapsed, interval, allowed)
	}
}

// maxAgeProxy stands in front of s and sets the JWKS answer's Cache-Control to max-age=1, so the test sees
// the cache expire in a second rather than IdentSphere's 5 minutes. Everything else is IdentSphere's.
func maxAgeProxy(t testing.TB, s *server) *httptest.Server {
	t.Helper()
	target, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.URL.Path == jwksRoute && resp.Header.Get("Cache-Control") == "public, max-age=300" {
			resp.Header.Set("Cache-Control", "public, max-age=1")
		}
		return nil
	}
	proxy.ErrorLog = log.New(io.Discard, "", 0) // its 502s while IdentSphere is down are expected
	front := httptest.NewServer(proxy)
	t.Cleanup(front.Close)
	return front
}

func TestTheJWKSIsRefreshedWhenItsMaxAgeEndsAndKeptWhenIdentSphereIsDown(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	front := maxAgeProxy(t, s)
	token := signUp(t, s).AccessToken
	claims := strings.Split(token, ".")[1]
	ctx := context.Background()
	logged := &logTail{}
	v, err := identsphere.NewVerifier(front.URL, identsphere.WithIssuer(s.URL), identsphere.WithJWKSRefetchInterval(100*time.Millisecond),
		identsphere.WithLogger(log.New(logged, "", 0)))
	if err != nil {
		t.Fatal(err)
	}
	before := served(t, s, jwksRoute)
	for i := 0; i < 10; i++ {
		if _, err := v.Verify(ctx, token); err != nil {
			t.Fatal(err)
		}
	}
	if fetched := served(t, s, jwksRoute) - before; fetched != 1 {
		t.Fatalf("%d fetches within max-age, want 1", fetched)
	}

	time.Sleep(1100 * time.Millisecond)
	if _, err := v.Verify(ctx, token); err != nil {
		t.Fatal("a stale JWKS still serves while it is refreshed:", err)
	}
	waitFor(t, 5*time.Second, "the refresh of the stale JWKS", func() bool { return served(t, s, jwksRoute)-before == 2 })

	s.stop()
	time.Sleep(1100 * time.Millisecond)
	for i := 0; i < 3; i++ {
		if _, err := v.Verify(ctx, token); err != nil {
			t.Fatal("the keys are kept when a refetch fails:", err)
		}
		_, err := v.Verify(ctx, forgedKid(t, claims))
		assertRefusal(t, err, 401, identsphere.CodeTokenInvalid)
		time.Sleep(150 * time.Millisecond)
	}
	if text := logged.String(); !strings.Contains(text, "could not fetch the JWKS") || strings.Contains(text, claims) {
		t.Errorf("the operator hears of the failed refetches, and of no token: %q", text)
	}

	// A verifier that never fetched the keys cannot tell: service_unavailable, with the reason.
	quiet := identsphere.WithLogger(nil)
	cold, err := identsphere.NewVerifier(front.URL, identsphere.WithIssuer(s.URL), quiet)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cold.Verify(ctx, token)
	refusal := assertRefusal(t, err, 503, identsphere.CodeServiceUnavailable)
	if refusal.RetryAfter <= 0 || errors.Unwrap(refusal) == nil {
		t.Errorf("service_unavailable: %+v", refusal)
	}
	// A caller that gives up waiting gets its context's error through the refusal.
	gone, cancel := context.WithCancel(ctx)
	cancel()
	colder, _ := identsphere.NewVerifier(front.URL, identsphere.WithIssuer(s.URL), quiet)
	if _, err := colder.Verify(gone, token); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled wait: %v", err)
	}
}
