package identsphere_test

// Real IdentSphere servers for the tests: the workspace's binary, each on a free port with a data
// directory of its own (or, for the key rotation, a Postgres database and a Redis key prefix of its own),
// stopped and removed afterwards.

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// platformKey is the IDENTSPHERE_PLATFORM_API_KEY of every test server: it reads the revocation feed.
const platformKey = "platform-key-for-go-sdk-tests-0123456789abcdef"

// shared is the server most tests use; tests that need other settings, or count requests at the server,
// start their own.
var shared *server

func TestMain(m *testing.M) {
	s, err := startServer(nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	shared, baseURL = s, s.URL
	code := m.Run()
	s.stop()
	os.Exit(code)
}

// identsphereBinary is $IDENTSPHERE_BIN, else the debug build in cargo's target directory
// ($CARGO_TARGET_DIR, default ~/.cache/identsphere/target, as the repository's scripts build it).
func identsphereBinary() (string, error) {
	if bin := os.Getenv("IDENTSPHERE_BIN"); bin != "" {
		return bin, nil
	}
	target := os.Getenv("CARGO_TARGET_DIR")
	if target == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		target = filepath.Join(home, ".cache", "identsphere", "target")
	}
	bin := filepath.Join(target, "debug", "identsphere")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("no IdentSphere binary at %s: set IDENTSPHERE_BIN to one, build it with "+
			"(cd ../.. && cargo build --workspace --bins), or run ./scripts/test.sh, which does", bin)
	}
	return bin, nil
}

// server is a running IdentSphere.
type server struct {
	URL     string
	DataDir string
	// Env is the server's configuration, for the commands run beside it (identsphere keys rotate).
	Env []string
	bin string
	cmd *exec.Cmd
	log *logTail
	// exited is closed when the process has ended.
	exited chan struct{}
}

// limitsOff are the repository's list of abuse limits, all off (tests sign in far more often from one
// address than a person would), except the second-factor one, whose refusal the tests check.
func limitsOff() ([]string, error) {
	file, err := os.ReadFile(filepath.Join("..", "..", "scripts", "limits-off.env"))
	if err != nil {
		return nil, err
	}
	var vars []string
	for _, line := range strings.Split(string(file), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") &&
			!strings.HasPrefix(line, "IDENTSPHERE_RATE_LIMIT_MFA_FAILURES=") {
			vars = append(vars, line)
		}
	}
	return vars, nil
}

// startServer starts an IdentSphere with overrides added to the test configuration, and waits until it
// is ready.
func startServer(overrides map[string]string) (*server, error) {
	bin, err := identsphereBinary()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dataDir, err := os.MkdirTemp("", "identsphere-sdk-go-")
	if err != nil {
		return nil, err
	}
	s := &server{URL: fmt.Sprintf("http://127.0.0.1:%d", port), DataDir: dataDir, bin: bin, log: &logTail{}, exited: make(chan struct{})}
	limits, err := limitsOff()
	if err != nil {
		os.RemoveAll(dataDir)
		return nil, err
	}
	vars := map[string]string{
		"IDENTSPHERE_BIND":               fmt.Sprintf("127.0.0.1:%d", port),
		"IDENTSPHERE_PUBLIC_BASE_URL":    s.URL,
		"IDENTSPHERE_DATA_DIR":           dataDir,
		"IDENTSPHERE_PLATFORM_API_KEY":   platformKey,
		"IDENTSPHERE_KEY_CHECK_INTERVAL": "1",
		"IDENTSPHERE_WORKERS":            "2",
		"IDENTSPHERE_ACTOR_ARBITERS":     "1",
		"IDENTSPHERE_LOG":                "warn",
		"IDENTSPHERE_LOG_FORMAT":         "json",
	}
	for _, kv := range limits {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	for k, v := range overrides {
		vars[k] = v
	}
	// The developer's own IDENTSPHERE_* variables (a database URL…) must not reach a test server.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "IDENTSPHERE_") {
			s.Env = append(s.Env, kv)
		}
	}
	for k, v := range vars {
		s.Env = append(s.Env, k+"="+v)
	}
	s.cmd = exec.Command(bin)
	s.cmd.Env = s.Env
	s.cmd.Stderr = s.log
	s.cmd.SysProcAttr = dieWithParent()
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dataDir)
		return nil, err
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(60 * time.Second); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// newServer starts an IdentSphere for one test, stopped when the test ends.
func newServer(t testing.TB, overrides map[string]string) *server {
	t.Helper()
	s, err := startServer(overrides)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	return s
}

func (s *server) waitReady(within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("identsphere (%s) exited at start:\n%s", s.bin, s.log)
		default:
		}
		if resp, err := http.Get(s.URL + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("identsphere at %s was not ready within %s:\n%s", s.URL, within, s.log)
}

// stop ends the server (SIGTERM, then SIGKILL if it lingers) and removes its data directory.
func (s *server) stop() {
	select {
	case <-s.exited:
	default:
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	}
	os.RemoveAll(s.DataDir)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// logTail keeps the end of what a server logged, to say why it did not start.
type logTail struct {
	mu  sync.Mutex
	end []byte
}

func (t *logTail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.end = append(t.end, p...)
	if len(t.end) > 8<<10 {
		t.end = t.end[len(t.end)-8<<10:]
	}
	return len(p), nil
}

func (t *logTail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.end)
}
