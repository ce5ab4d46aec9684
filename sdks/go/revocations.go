package identsphere

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"sync"
	"time"
)

const (
	// feedPage is the number of entries asked for per page: the feed's maximum.
	feedPage = 1000
	// maxPagesPerPoll bounds one poll, so a huge backlog cannot hold it past its interval.
	maxPagesPerPoll = 100
)

// RevocationFeed keeps what IdentSphere has revoked (logouts, refresh-token reuse, sessions ended by an
// admin), polled from GET /v1/revocations with a platform API key, so that a Verifier given it with
// WithRevocations refuses those tokens (token_revoked) although their signature stays valid until exp.
//
// Each entry names a session family (sid) or a token (jti) and is forgotten once every token it covers
// has expired: memory is bounded by the revoked-but-unexpired tokens. When the feed cannot be reached
// the entries already known keep applying; Status says so, and the logger hears it once when the feed
// starts failing and once when it recovers. It is safe for concurrent use.
type RevocationFeed struct {
	url    string
	apiKey string
	http   *http.Client
	every  time.Duration
	logger *log.Logger
	// cursor is where the next poll reads from ("": the oldest entry still meaningful). Only the poller
	// touches it: Start's first poll, then run's, one after the other.
	cursor string

	// mu guards everything below.
	mu sync.RWMutex
	// sids and jtis map a revoked id to the Unix second when its tokens have all expired.
	sids, jtis map[string]int64
	status     FeedStatus
	started    bool
}

// FeedStatus is what the feed knows of itself, for health checks.
type FeedStatus struct {
	// Synced: at least one poll has succeeded.
	Synced bool
	// ConsecutiveFailures counts the polls that failed in a row (0 when the last one succeeded).
	ConsecutiveFailures int
	// LastError is the error of the last poll, nil when it succeeded (an *Error when IdentSphere refused
	// it, e.g. token_invalid for a wrong platform key).
	LastError error
	// Entries is the number of revocations held now.
	Entries int
}

// NewRevocationFeed returns a feed of the IdentSphere at baseURL, read with platformAPIKey (the server's
// IDENTSPHERE_PLATFORM_API_KEY, or a key of `identsphere admin create-key`). It polls nothing until
// Start. Options: WithPollInterval, WithHTTPClient, WithTimeout, WithLogger.
func NewRevocationFeed(baseURL, platformAPIKey string, opts ...Option) (*RevocationFeed, error) {
	base, err := parseBaseURL(baseURL)
	if err != nil {
		return nil, err
	}
	if platformAPIKey == "" {
		return nil, errors.New("identsphere: the revocation feed needs a platform API key")
	}
	cfg := newConfig(opts)
	return &RevocationFeed{
		url:    base + "/v1/revocations",
		apiKey: platformAPIKey,
		http:   cfg.httpClient,
		every:  cfg.pollInterval,
		logger: cfg.logger,
		sids:   map[string]int64{},
		jtis:   map[string]int64{},
	}, nil
}

// Start reads the feed once, then polls it every interval on a goroutine of its own until ctx ends. It
// returns the first poll's error, if any (the revocations are not known yet, but polling goes on), or an
// error if the feed was already started.
func (f *RevocationFeed) Start(ctx context.Context) error {
	f.mu.Lock()
	if f.started {
		f.mu.Unlock()
		return errors.New("identsphere: the revocation feed is already started")
	}
	f.started = true
	f.mu.Unlock()
	err := f.poll(ctx)
	go f.run(ctx)
	return err
}

// Status reports the feed's state.
func (f *RevocationFeed) Status() FeedStatus {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.status
}

func (f *RevocationFeed) run(ctx context.Context) {
	ticks := time.NewTicker(f.every)
	defer ticks.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks.C:
			_ = f.poll(ctx) // recorded in the status and logged
		}
	}
}

// revoked reports whether the token's jti or its session's sid is revoked at now (Unix seconds).
func (f *RevocationFeed) revoked(c *Claims, now int64) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.jtis[c.JTI] > now || f.sids[c.SID] > now
}

// feedEntry is one revocation of a page.
type feedEntry struct {
	Kind      string `json:"kind"`
	ID        string `json:"id"`
	ExpiresAt int64  `json:"expires_at"`
}

// poll reads every new page once and records the outcome.
func (f *RevocationFeed) poll(ctx context.Context) error {
	err := f.readPages(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case err == nil && f.status.ConsecutiveFailures > 0:
		report(f.logger, "the revocation feed is reachable again after %d failed polls", f.status.ConsecutiveFailures)
	case err != nil && f.status.ConsecutiveFailures == 0:
		report(f.logger, "the revocation feed is unreachable, serving with the %d revocations known: %v", f.status.Entries, err)
	}
	f.status.LastError = err
	if err != nil {
		f.status.ConsecutiveFailures++
		return err
	}
	f.status.Synced, f.status.ConsecutiveFailures = true, 0
	return nil
}

func (f *RevocationFeed) readPages(ctx context.Context) error {
	for i := 0; i < maxPagesPerPoll; i++ {
		entries, next, err := f.page(ctx, f.cursor)
		var refused *Error
		if errors.As(err, &refused) && refused.Code == CodeInvalidRequest && f.cursor != "" {
			// IdentSphere no longer knows our cursor (its store was replaced): read again from the
			// oldest entry still meaningful. Entries are idempotent.
			f.cursor = ""
			continue
		}
		if err != nil {
			return err
		}
		f.apply(entries, time.Now().Unix())
		f.cursor = next
		if len(entries) < feedPage {
			return nil
		}
	}
	return nil
}

// page reads the page after cursor: its entries and the cursor that follows it.
func (f *RevocationFeed) page(ctx context.Context, cursor string) ([]feedEntry, string, error) {
	query := url.Values{"limit": {fmt.Sprint(feedPage)}}
	if cursor != "" {
		query.Set("after", cursor)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.url+"?"+query.Encode(), nil)
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Authorization", "Bearer "+f.apiKey)
	resp, err := f.http.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", errorFromResponse(resp, body)
	}
	var page struct {
		Revocations []feedEntry `json:"revocations"`
		Cursor      string      `json:"cursor"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, "", fmt.Errorf("not a revocation page: %w", err)
	}
	return page.Revocations, page.Cursor, nil
}

// apply adds entries and forgets those whose tokens have all expired at now.
func (f *RevocationFeed) apply(entries []feedEntry, now int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range entries {
		var ids map[string]int64
		switch e.Kind {
		case "sid":
			ids = f.sids
		case "jti":
			ids = f.jtis
		default:
			continue // a kind this version does not know
		}
		if e.ExpiresAt > ids[e.ID] {
			ids[e.ID] = e.ExpiresAt
		}
	}
	for _, ids := range []map[string]int64{f.sids, f.jtis} {
		for id, until := range ids {
			if until <= now {
				delete(ids, id)
			}
		}
	}
	f.status.Entries = len(f.sids) + len(f.jtis)
}
