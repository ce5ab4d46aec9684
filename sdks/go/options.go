package identsphere

import (
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Version is this SDK's version, sent in the User-Agent of every request.
const Version = "0.1.0"

const userAgent = "identsphere-go/" + Version

// Defaults, the same in every IdentSphere server-side SDK.
const (
	defaultConnectTimeout = 5 * time.Second
	defaultTimeout        = 10 * time.Second
	// defaultRefetchInterval is the least time between two JWKS fetches: a flood of unknown kids costs
	// at most one fetch per interval.
	defaultRefetchInterval = 30 * time.Second
	defaultPollInterval    = 5 * time.Second
)

// Option configures a Client, a Verifier or a RevocationFeed. Each option says which it applies to; the
// others ignore it.
type Option func(*config)

type config struct {
	httpClient      *http.Client
	timeout         time.Duration
	issuer          string
	leeway          time.Duration
	refetchInterval time.Duration
	revocations     *RevocationFeed
	pollInterval    time.Duration
	logger          *log.Logger
}

// WithHTTPClient makes every request go through c (its transport, proxy, TLS settings and timeouts)
// instead of the SDK's own client. All.
func WithHTTPClient(c *http.Client) Option { return func(cfg *config) { cfg.httpClient = c } }

// WithTimeout sets the total timeout of each request of the SDK's own client (default 10 s; connecting
// alone has 5 s at most). All; without effect with WithHTTPClient.
func WithTimeout(d time.Duration) Option { return func(cfg *config) { cfg.timeout = d } }

// WithIssuer sets the iss tokens must carry: IdentSphere's IDENTSPHERE_PUBLIC_BASE_URL. Default: the
// base URL. Set it when the service reaches IdentSphere at another address than its public one.
// Verifier.
func WithIssuer(issuer string) Option { return func(cfg *config) { cfg.issuer = issuer } }

// WithLeeway accepts tokens up to d (in whole seconds, as exp) after their exp, for clock skew between
// the machines (default 0, as IdentSphere itself). Verifier.
func WithLeeway(d time.Duration) Option { return func(cfg *config) { cfg.leeway = d } }

// WithJWKSRefetchInterval sets the least time between two JWKS fetches, whatever their cause (an unknown
// kid, an expired cache); default 30 s. Verifier.
func WithJWKSRefetchInterval(d time.Duration) Option {
	return func(cfg *config) { cfg.refetchInterval = d }
}

// WithRevocations makes the Verifier refuse tokens the feed lists (token_revoked). Verifier.
func WithRevocations(feed *RevocationFeed) Option {
	return func(cfg *config) { cfg.revocations = feed }
}

// WithPollInterval sets how often the revocation feed is polled (default 5 s): a revoked token is
// refused within this interval plus one round trip. RevocationFeed.
func WithPollInterval(d time.Duration) Option { return func(cfg *config) { cfg.pollInterval = d } }

// WithLogger sets where the SDK reports what an operator should know: the JWKS or the revocation feed
// becoming unreachable, and the feed recovering. Default: log.Default(); nil silences it. Never a token,
// password or code. Verifier and RevocationFeed.
func WithLogger(l *log.Logger) Option { return func(cfg *config) { cfg.logger = l } }

// newConfig applies opts over the defaults.
func newConfig(opts []Option) config {
	cfg := config{
		timeout:         defaultTimeout,
		refetchInterval: defaultRefetchInterval,
		pollInterval:    defaultPollInterval,
		logger:          log.Default(),
	}
	for _, opt := range opts {
		opt(&cfg)
	}
	if cfg.httpClient == nil {
		cfg.httpClient = defaultHTTPClient(cfg.timeout)
	}
	return cfg
}

// report tells the operator through l, if there is one (WithLogger(nil) silences the SDK).
func report(l *log.Logger, format string, args ...any) {
	if l != nil {
		l.Printf("identsphere: "+format, args...)
	}
}

// defaultHTTPClient has a connect and a total timeout, so a hung IdentSphere cannot hold a request, a
// JWKS fetch or a poll forever, and follows no redirect: IdentSphere never redirects, so a redirected
// answer is not its own.
func defaultHTTPClient(timeout time.Duration) *http.Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DialContext = (&net.Dialer{Timeout: defaultConnectTimeout, KeepAlive: 30 * time.Second}).DialContext
	return &http.Client{
		Timeout:   timeout,
		Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// parseBaseURL checks that raw is an http(s) URL and returns it without a trailing slash.
func parseBaseURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("identsphere: the base URL must be an http:// or https:// URL, not %q", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", errors.New("identsphere: the base URL must have no query or fragment")
	}
	return strings.TrimRight(raw, "/"), nil
}
