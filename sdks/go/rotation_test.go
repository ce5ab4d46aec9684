package identsphere_test

// A forced key rotation (`identsphere keys rotate`) beside a running server. The embedded store admits
// one process, so this test runs IdentSphere on Postgres and Redis: a database and a key prefix of its
// own, removed afterwards.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	identsphere "github.com/IdentSphere/sdks/go"
)

// postgresServer starts an IdentSphere on a new Postgres database (through the maintenance database
// $IDENTSPHERE_TEST_DATABASE_URL) and a new Redis key prefix ($IDENTSPHERE_TEST_REDIS_URL), both removed
// when the test ends. Without Postgres, Redis or their command-line clients the test is skipped, or fails
// when IDENTSPHERE_TEST_REQUIRE_POSTGRES is set (CI).
func postgresServer(t *testing.T) *server {
	t.Helper()
	maintenance := envOr("IDENTSPHERE_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
	redisURL := envOr("IDENTSPHERE_TEST_REDIS_URL", "redis://127.0.0.1:6379")
	unavailable := func(err error, out []byte) {
		t.Helper()
		if os.Getenv("IDENTSPHERE_TEST_REQUIRE_POSTGRES") != "" {
			t.Fatalf("Postgres and Redis are required here (IDENTSPHERE_TEST_REQUIRE_POSTGRES): %v %s", err, out)
		}
		t.Skipf("needs Postgres and Redis with psql and redis-cli: %v %s", err, out)
	}
	if out, err := exec.Command("redis-cli", "-u", redisURL, "ping").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "PONG" {
		unavailable(err, out)
	}
	suffix := make([]byte, 8)
	_, _ = rand.Read(suffix)
	database := "identsphere_sdk_go_" + hex.EncodeToString(suffix)
	if out, err := psql(maintenance, `CREATE DATABASE "`+database+`"`); err != nil {
		unavailable(err, out)
	}
	prefix := "identsphere-sdk-go:" + hex.EncodeToString(suffix) + ":"
	t.Cleanup(func() {
		if out, err := psql(maintenance, `DROP DATABASE IF EXISTS "`+database+`" WITH (FORCE)`); err != nil {
			t.Errorf("dropping %s: %v %s", database, err, out)
		}
		keys, err := exec.Command("redis-cli", "-u", redisURL, "--scan", "--pattern", prefix+"*").Output()
		if err != nil {
			t.Errorf("listing the Redis keys %s*: %v", prefix, err)
		}
		if names := strings.Fields(string(keys)); len(names) > 0 {
			if out, err := exec.Command("redis-cli", append([]string{"-u", redisURL, "DEL"}, names...)...).CombinedOutput(); err != nil {
				t.Errorf("deleting the Redis keys %s*: %v %s", prefix, err, out)
			}
		}
	})
	databaseURL, err := url.Parse(maintenance)
	if err != nil {
		t.Fatal(err)
	}
	databaseURL.Path = "/" + database
	kek := make([]byte, 32)
	_, _ = rand.Read(kek)
	return newServer(t, map[string]string{
		"IDENTSPHERE_DATABASE_URL":       databaseURL.String(),
		"IDENTSPHERE_DATABASE_POOL_SIZE": "4",
		"IDENTSPHERE_REDIS_URL":          redisURL,
		"IDENTSPHERE_REDIS_KEY_PREFIX":   prefix,
		"IDENTSPHERE_KEY_ENCRYPTION_KEY": base64.StdEncoding.EncodeToString(kek),
	})
}

func psql(databaseURL, statement string) ([]byte, error) {
	return exec.Command("psql", databaseURL, "-v", "ON_ERROR_STOP=1", "-qc", statement).CombinedOutput()
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func TestAfterAKeyRotationNewTokensVerifyWithOneRefetchAndOldOnesStop(t *testing.T) {
	t.Parallel()
	s := postgresServer(t)
	ctx := context.Background()
	const interval = time.Second
	v := newVerifier(t, s, identsphere.WithJWKSRefetchInterval(interval))
	old := signUp(t, s)
	if _, err := v.Verify(ctx, old.AccessToken); err != nil {
		t.Fatal(err)
	}
	fetchedAt := time.Now()

	// The operator's emergency rotation, beside the running server, with its configuration.
	rotate := exec.Command(s.bin, "keys", "rotate")
	rotate.Env = s.Env
	out, err := rotate.Output()
	if err != nil {
		t.Fatalf("identsphere keys rotate: %v", err)
	}
	kid := strings.TrimSpace(string(out))
	waitFor(t, 10*time.Second, "the server's switch to the new key", func() bool {
		keys := publishedJWKS(t, s)
		return len(keys) == 1 && keys[0].Kid == kid
	})
	res, err := newClient(t, s).Login(ctx, identsphere.LoginParams{Email: old.User.Email, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	fresh := res.Tokens.AccessToken
	if part(t, fresh, 0)["kid"] != kid {
		t.Fatalf("the new key signs: %v", part(t, fresh, 0))
	}
	time.Sleep(time.Until(fetchedAt.Add(interval)))

	before := served(t, s, jwksRoute)
	if _, err := v.Verify(ctx, old.AccessToken); err != nil {
		t.Errorf("until the cache is refreshed, the old key still verifies: %v", err)
	}
	for i := 0; i < 3; i++ {
		if _, err := v.Verify(ctx, fresh); err != nil {
			t.Fatalf("a token of the new key: %v", err)
		}
	}
	_, err = v.Verify(ctx, old.AccessToken)
	assertRefusal(t, err, 401, identsphere.CodeTokenInvalid) // its key left the refreshed JWKS
	if fetched := served(t, s, jwksRoute) - before; fetched != 1 {
		t.Errorf("%d JWKS fetches after the rotation, want 1", fetched)
	}
}
