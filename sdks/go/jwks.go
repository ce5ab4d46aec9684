package identsphere

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// defaultMaxAge is how long a JWKS is fresh when its answer does not say (Cache-Control: max-age).
	defaultMaxAge = 5 * time.Minute
	// maxMaxAge caps what a Cache-Control header can ask for, so keys are re-read at least daily.
	maxMaxAge = 24 * time.Hour
	// coldRetry is the least time between two fetches while no JWKS was ever fetched: every request is
	// refused until one succeeds, so retry sooner than the refetch interval, but not per request.
	coldRetry = time.Second
)

// keyCache holds IdentSphere's signing keys (the JWKS), fetched on demand and shared by every goroutine:
// a lookup is one atomic load; a fetch runs at most once at a time (callers that need it wait for the one
// in flight) and at most once per refetch interval whatever asks for it, so a flood of unknown kids costs
// one fetch. A failed fetch keeps the keys in use.
type keyCache struct {
	url             string
	http            *http.Client
	refetchInterval time.Duration
	// timeout bounds a fetch even with an HTTP client configured without a timeout.
	timeout time.Duration
	logger  *log.Logger

	// keys is the last JWKS fetched; nil until a fetch succeeds.
	keys atomic.Pointer[keySet]

	// mu guards the two fields below: the gate that lets one fetch run at a time.
	mu sync.Mutex
	// inflight is the fetch running now, nil when none is.
	inflight *fetch
	// lastStart is when the last fetch started, successful or not.
	lastStart time.Time
}

// keySet is one JWKS: its RS256 keys by kid and how long it may be used without a fetch.
type keySet struct {
	byKID      map[string]*rsa.PublicKey
	freshUntil time.Time
}

// fetch is one JWKS fetch in flight: done is closed when it ends, err set before that.
type fetch struct {
	done chan struct{}
	err  error
}

// key returns the key of kid: from the cache, else after the fetch that a missing kid may ask for.
// Refusals: token_invalid for a kid the JWKS does not have; service_unavailable while no JWKS could
// ever be fetched, or when ctx ends while waiting for the fetch.
func (c *keyCache) key(ctx context.Context, kid string) (*rsa.PublicKey, *Error) {
	if set := c.keys.Load(); set != nil {
		if key, ok := set.byKID[kid]; ok {
			if time.Now().After(set.freshUntil) {
				// Stale: refresh behind this request, which goes on with the key it has.
				c.start()
			}
			return key, nil
		}
	}
	// An unknown kid: a key rotation we have not seen yet, or a forgery. A fetch tells which, if one is
	// allowed now or already running.
	var cause error
	if f := c.start(); f != nil {
		select {
		case <-f.done:
			cause = f.err
		case <-ctx.Done():
			return nil, unavailable(ctx.Err())
		}
	}
	set := c.keys.Load()
	if set == nil {
		if cause == nil {
			cause = errors.New("no JWKS yet: the last fetch failed less than a second ago")
		}
		return nil, unavailable(cause)
	}
	if key, ok := set.byKID[kid]; ok {
		return key, nil
	}
	return nil, refusal(CodeTokenInvalid)
}

// start returns the fetch in flight, or starts one if the last started long enough ago; nil when no
// fetch is allowed now. The fetch runs on its own goroutine, with no caller's context: a caller that
// gives up does not cancel it for the others waiting on it.
func (c *keyCache) start() *fetch {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inflight != nil {
		return c.inflight
	}
	wait := c.refetchInterval
	if c.keys.Load() == nil && coldRetry < wait {
		wait = coldRetry
	}
	if !c.lastStart.IsZero() && time.Since(c.lastStart) < wait {
		return nil
	}
	f := &fetch{done: make(chan struct{})}
	c.inflight, c.lastStart = f, time.Now()
	go c.run(f)
	return f
}

func (c *keyCache) run(f *fetch) {
	set, err := c.download()
	if err != nil {
		report(c.logger, "could not fetch the JWKS from %s, keeping the keys in use: %v", c.url, err)
	} else {
		c.keys.Store(set)
	}
	c.mu.Lock()
	c.inflight = nil
	c.mu.Unlock()
	f.err = err
	close(f.done)
}

// jwk is one key of a JWKS; only what an RS256 public key needs.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
}

func (c *keyCache) download() (*keySet, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	var doc struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponseBytes)).Decode(&doc); err != nil {
		return nil, fmt.Errorf("not a JWKS: %w", err)
	}
	keys := rs256Keys(doc.Keys)
	if len(keys) == 0 {
		// Every token would fail: more likely a broken answer than IdentSphere retiring every key.
		return nil, errors.New("the JWKS has no RS256 signing key")
	}
	age := maxAge(resp.Header.Get("Cache-Control"))
	return &keySet{byKID: keys, freshUntil: time.Now().Add(age)}, nil
}

// rs256Keys are the RSA signature keys of a JWKS that have a kid and are for RS256 (or say nothing of
// their use or algorithm); the others are left out.
func rs256Keys(set []jwk) map[string]*rsa.PublicKey {
	keys := make(map[string]*rsa.PublicKey, len(set))
	for _, k := range set {
		if k.Kty != "RSA" || k.Kid == "" || (k.Use != "" && k.Use != "sig") || (k.Alg != "" && k.Alg != "RS256") {
			continue
		}
		n, errN := base64.RawURLEncoding.DecodeString(k.N)
		e, errE := base64.RawURLEncoding.DecodeString(k.E)
		if errN != nil || errE != nil || len(e) == 0 || len(e) > 4 {
			continue
		}
		exponent := int(new(big.Int).SetBytes(e).Int64())
		if exponent < 3 || exponent%2 == 0 {
			continue
		}
		keys[k.Kid] = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exponent}
	}
	return keys
}

// maxAge is how long a JWKS answer with this Cache-Control may be used: its max-age (no-store and
// no-cache: none), else defaultMaxAge, at most maxMaxAge.
func maxAge(cacheControl string) time.Duration {
	age := defaultMaxAge
	for _, directive := range strings.Split(cacheControl, ",") {
		directive = strings.ToLower(strings.TrimSpace(directive))
		if directive == "no-store" || directive == "no-cache" {
			return 0
		}
		if strings.HasPrefix(directive, "max-age=") {
			value := strings.Trim(strings.TrimPrefix(directive, "max-age="), `"`)
			if seconds, err := strconv.ParseUint(value, 10, 32); err == nil {
				age = time.Duration(seconds) * time.Second
			}
		}
	}
	if age > maxMaxAge {
		return maxMaxAge
	}
	return age
}
