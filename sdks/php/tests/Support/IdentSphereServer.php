<?php

declare(strict_types=1);

namespace IdentSphere\Tests\Support;

/**
 * A real IdentSphere for the tests: the workspace's binary on a free port with a data directory of its own
 * (or, for a key rotation, a Postgres database and a Redis key prefix of its own), stopped and removed
 * afterwards, even when the test process dies (see Process).
 */
final class IdentSphereServer
{
    /** The IDENTSPHERE_PLATFORM_API_KEY of every test server. */
    public const PLATFORM_KEY = 'platform-key-for-php-sdk-tests-0123456789abcdef';
    private const REPO = __DIR__ . '/../../../..';

    public readonly string $url;
    public readonly string $dataDir;
    private readonly string $binary;
    private readonly string $root;
    /** @var array<string, string> */
    private readonly array $env;
    private ?Process $process = null;

    /** $IDENTSPHERE_BIN, else the debug build in cargo's target directory, as the repository builds it. */
    public static function binary(): string
    {
        $bin = getenv('IDENTSPHERE_BIN');
        if (is_string($bin) && $bin !== '') {
            return $bin;
        }
        $target = getenv('CARGO_TARGET_DIR');
        $target = is_string($target) && $target !== '' ? $target : getenv('HOME') . '/.cache/identsphere/target';
        $bin = "$target/debug/identsphere";
        if (!is_executable($bin)) {
            fwrite(STDERR, "no IdentSphere binary at $bin: set IDENTSPHERE_BIN to one, build it with "
                . "(cd ../.. && cargo build --workspace --bins), or run ./scripts/test.sh, which does\n");
            exit(1);
        }
        return $bin;
    }

    /**
     * The repository's abuse limits, all off (tests sign in far more often from one address than a person
     * would), except the second-factor one, whose refusal the tests check.
     *
     * @return array<string, string>
     */
    public static function limitsOff(): array
    {
        $limits = [];
        foreach (file(self::REPO . '/scripts/limits-off.env', FILE_IGNORE_NEW_LINES) ?: [] as $line) {
            if (str_starts_with($line, 'IDENTSPHERE_') && !str_starts_with($line, 'IDENTSPHERE_RATE_LIMIT_MFA_FAILURES=')) {
                [$name, $value] = explode('=', $line, 2);
                $limits[$name] = $value;
            }
        }
        return $limits;
    }

    /**
     * A server on the embedded store; `$overrides` are added to its configuration.
     *
     * @param array<string, string> $overrides
     */
    public function __construct(array $overrides = [], private readonly ?PostgresBacking $backing = null)
    {
        $this->binary = self::binary(); // first: it ends the run when there is none, which no cleanup follows
        $this->root = sys_get_temp_dir() . '/identsphere-sdk-php-' . bin2hex(random_bytes(6));
        mkdir($this->root, 0700);
        $this->dataDir = "$this->root/data";
        $port = Process::freePort();
        $this->url = "http://127.0.0.1:$port";
        $this->env = array_merge(self::limitsOff(), [
            'IDENTSPHERE_BIND' => "127.0.0.1:$port",
            'IDENTSPHERE_PUBLIC_BASE_URL' => $this->url,
            'IDENTSPHERE_DATA_DIR' => $this->dataDir,
            'IDENTSPHERE_PLATFORM_API_KEY' => self::PLATFORM_KEY,
            'IDENTSPHERE_KEY_CHECK_INTERVAL' => '1',
            'IDENTSPHERE_WORKERS' => '2',
            'IDENTSPHERE_ACTOR_ARBITERS' => '1',
            'IDENTSPHERE_LOG' => 'warn',
            'IDENTSPHERE_LOG_FORMAT' => 'json',
        ], $backing?->env ?? [], $overrides);
        try {
            $this->process = new Process([$this->binary], Process::cleanEnvironment() + $this->env, "$this->root/server.log", $this->root);
            $this->process->waitUntil(fn () => @file_get_contents("$this->url/readyz") !== false, 60, "identsphere at $this->url");
        } catch (\Throwable $error) {
            $this->stop();
            throw $error;
        }
    }

    /**
     * A server on a Postgres database and a Redis key prefix of its own (removed at stop), so that
     * `identsphere keys rotate` can run beside it; null when Postgres or Redis cannot be reached.
     */
    public static function onPostgres(): ?self
    {
        self::binary(); // ends the run when there is none: before a database exists to be left behind
        $backing = PostgresBacking::create();
        if ($backing === null) {
            return null;
        }
        try {
            return new self([], $backing);
        } catch (\Throwable $error) {
            $backing->remove();
            throw $error;
        }
    }

    /**
     * An empty directory (a shared cache's files) inside this server's own, so it goes with the server,
     * even when the test process dies.
     */
    public function scratch(): string
    {
        $directory = "$this->root/scratch-" . bin2hex(random_bytes(4));
        mkdir($directory, 0700);
        return $directory;
    }

    /** Runs the binary with this server's configuration (`keys rotate`): its standard output. */
    public function run(string ...$args): string
    {
        $process = proc_open([$this->binary, ...$args], [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes, null,
            Process::cleanEnvironment() + $this->env);
        if ($process === false) {
            throw new \RuntimeException('could not run identsphere');
        }
        [$output, $errors] = [stream_get_contents($pipes[1]), stream_get_contents($pipes[2])];
        if (proc_close($process) !== 0) {
            throw new \RuntimeException('identsphere ' . implode(' ', $args) . " failed: $errors");
        }
        return (string) $output;
    }

    /** Stops the server and removes its directory (and its database and Redis keys). */
    public function stop(): void
    {
        $this->process?->stop();
        $this->process = null;
        if (is_dir($this->root)) {
            exec('rm -rf ' . escapeshellarg($this->root));
        }
        $this->backing?->remove();
    }

    /** Requests this server has answered on `$route` (its own /metrics), whoever made them. */
    public function served(string $route): int
    {
        $total = 0;
        foreach (explode("\n", (string) file_get_contents("$this->url/metrics")) as $line) {
            if (str_starts_with($line, 'identsphere_http_requests_total{') && str_contains($line, "route=\"$route\"")) {
                $total += (int) substr($line, strrpos($line, ' ') + 1);
            }
        }
        return $total;
    }

    /** @return list<string> the key ids the JWKS publishes now */
    public function publishedKids(): array
    {
        $jwks = json_decode((string) file_get_contents("$this->url/.well-known/jwks.json"), true);
        return array_column($jwks['keys'], 'kid');
    }

    /**
     * The token of the link to `$path` (/verify-email, /reset-password) mailed to `$to`: without SMTP the
     * server writes each mail to outbox/ in its data directory. Mail is sent after the answer, so wait.
     */
    public function mailedToken(string $to, string $path): string
    {
        $deadline = microtime(true) + 10;
        while (microtime(true) < $deadline) {
            foreach (glob("$this->dataDir/outbox/*.eml") ?: [] as $file) {
                $mail = quoted_printable_decode((string) file_get_contents($file));
                if (preg_match('/^To: ' . preg_quote($to, '/') . '\r?$/mi', $mail) === 1
                    && preg_match('~' . preg_quote($path, '~') . '\?token=([A-Za-z0-9_-]+)~', $mail, $match) === 1) {
                    return $match[1];
                }
            }
            usleep(50_000);
        }
        throw new \RuntimeException("no mail to $to with a $path link");
    }
}
