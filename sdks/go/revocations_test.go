package identsphere_test

import (
	"context"
	"errors"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	identsphere "github.com/IdentSphere/sdks/go"
)

const (
	poll          = 200 * time.Millisecond
	revocationsAt = "/v1/revocations"
)

// startedFeed is a revocation feed of s polled every poll, stopped when the test ends.
func startedFeed(t testing.TB, s *server, opts ...identsphere.Option) (*identsphere.RevocationFeed, context.CancelFunc) {
	t.Helper()
	feed, err := identsphere.NewRevocationFeed(s.URL, platformKey, append([]identsphere.Option{identsphere.WithPollInterval(poll)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	if err := feed.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return feed, stop
}

// refusedWithin waits until the app refuses token with token_revoked, and fails if that takes longer than
// the poll interval plus a second.
func refusedWithin(t testing.TB, a *httptest.Server, token string) {
	t.Helper()
	started := time.Now()
	waitFor(t, 5*time.Second, "the refusal of the revoked token", func() bool {
		return get(t, a, http.MethodGet, "/me", token).StatusCode != http.StatusOK
	})
	if took := time.Since(started); took > poll+time.Second {
		t.Errorf("refused after %v", took)
	}
	assertEnvelope(t, get(t, a, http.MethodGet, "/me", token), 401, identsphere.CodeTokenRevoked)
}

func TestAfterLogoutTheAppRefusesTheTokenWithinThePollIntervalPlusASecond(t *testing.T) {
	t.Parallel()
	feed, _ := startedFeed(t, shared)
	a := app(t, newVerifier(t, shared, identsphere.WithRevocations(feed)), "")
	token, bystander := signUp(t, shared).AccessToken, signUp(t, shared).AccessToken
	claimsIn(t, get(t, a, http.MethodGet, "/me", token))

	if err := newClient(t, shared).Logout(context.Background(), identsphere.LogoutParams{AccessToken: token}); err != nil {
		t.Fatal(err)
	}
	refusedWithin(t, a, token)
	claimsIn(t, get(t, a, http.MethodGet, "/me", bystander)) // other sessions are untouched
	if status := feed.Status(); !status.Synced || status.Entries < 1 || status.ConsecutiveFailures != 0 || status.LastError != nil {
		t.Errorf("status: %+v", status)
	}
}

func TestAfterRefreshTokenReuseTheAppRefusesTheWholeFamily(t *testing.T) {
	t.Parallel()
	s := newServer(t, map[string]string{"IDENTSPHERE_REFRESH_REUSE_GRACE": "0"})
	feed, _ := startedFeed(t, s)
	a := app(t, newVerifier(t, s, identsphere.WithRevocations(feed)), "")
	c := newClient(t, s)
	first := signUp(t, s)
	successor, err := c.Refresh(context.Background(), identsphere.RefreshParams{RefreshToken: first.RefreshToken})
	if err != nil {
		t.Fatal(err)
	}
	claimsIn(t, get(t, a, http.MethodGet, "/me", successor.AccessToken))

	_, err = c.Refresh(context.Background(), identsphere.RefreshParams{RefreshToken: first.RefreshToken})
	assertRefusal(t, err, 401, identsphere.CodeRefreshTokenReused)
	refusedWithin(t, a, successor.AccessToken)
	assertEnvelope(t, get(t, a, http.MethodGet, "/me", first.AccessToken), 401, identsphere.CodeTokenRevoked)
}

func TestTheFeedStopsWithItsContextAndKeepsWhatItKnowsWhileIdentSphereIsDown(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	logged := &logTail{}
	feed, stop := startedFeed(t, s, identsphere.WithLogger(log.New(logged, "", 0)))
	v := newVerifier(t, s, identsphere.WithRevocations(feed))
	a := app(t, v, "")
	revoked, valid := signUp(t, s).AccessToken, signUp(t, s).AccessToken
	claimsIn(t, get(t, a, http.MethodGet, "/me", valid)) // the keys are cached
	if err := newClient(t, s).Logout(context.Background(), identsphere.LogoutParams{AccessToken: revoked}); err != nil {
		t.Fatal(err)
	}
	refusedWithin(t, a, revoked)
	if err := feed.Start(context.Background()); err == nil {
		t.Error("a second Start starts a second poller")
	}

	s.stop()
	waitFor(t, 5*time.Second, "two failed polls", func() bool { return feed.Status().ConsecutiveFailures >= 2 })
	claimsIn(t, get(t, a, http.MethodGet, "/me", valid))
	assertEnvelope(t, get(t, a, http.MethodGet, "/me", revoked), 401, identsphere.CodeTokenRevoked)
	if status := feed.Status(); !status.Synced || status.Entries < 1 || status.LastError == nil {
		t.Errorf("status: %+v", status)
	}
	if text := logged.String(); strings.Count(text, "revocation feed is unreachable") != 1 || strings.Contains(text, revoked) {
		t.Errorf("the outage is logged once, without a token: %q", text)
	}

	// Stopped with its context: no poll after that.
	stop()
	failures := feed.Status().ConsecutiveFailures
	time.Sleep(3 * poll)
	settled := feed.Status().ConsecutiveFailures
	time.Sleep(5 * poll)
	if now := feed.Status().ConsecutiveFailures; now != settled || settled > failures+1 {
		t.Errorf("polls after the context ended: %d, then %d, then %d failures", failures, settled, now)
	}
}

func TestAWrongPlatformKeyIsRefusedAtStart(t *testing.T) {
	t.Parallel()
	feed, err := identsphere.NewRevocationFeed(shared.URL, "not-the-platform-key", identsphere.WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	err = feed.Start(ctx)
	assertRefusal(t, err, 401, identsphere.CodeTokenInvalid)
	var refusal *identsphere.Error
	if status := feed.Status(); status.Synced || status.ConsecutiveFailures != 1 || !errors.As(status.LastError, &refusal) {
		t.Errorf("status: %+v", status)
	}
	if _, err := identsphere.NewRevocationFeed(shared.URL, ""); err == nil {
		t.Error("a feed without a key")
	}
}

func TestRevocationsAreForgottenOnceTheirTokensHaveExpired(t *testing.T) {
	t.Parallel()
	// Long enough that a loaded machine still polls the entry before it expires; short enough to see it
	// forgotten. An entry lives until its tokens' exp plus the server's clock-skew allowance (60 s: a token a
	// replica whose clock runs ahead minted must stay refused), so forgetting takes a minute.
	s := newServer(t, map[string]string{"IDENTSPHERE_ACCESS_TOKEN_TTL": "3"})
	feed, _ := startedFeed(t, s)
	token := signUp(t, s).AccessToken
	if err := newClient(t, s).Logout(context.Background(), identsphere.LogoutParams{AccessToken: token}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "the logout in the feed", func() bool { return feed.Status().Entries > 0 })
	time.Sleep(5 * time.Second)
	if feed.Status().Entries == 0 {
		t.Fatal("the entry was forgotten when its tokens expired: a replica whose clock runs ahead could still mint one")
	}
	waitFor(t, 75*time.Second, "the entry forgotten after its tokens expired", func() bool { return feed.Status().Entries == 0 })
}
