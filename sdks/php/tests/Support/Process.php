<?php

declare(strict_types=1);

namespace IdentSphere\Tests\Support;

/**
 * A server process of the tests (IdentSphere, `php -S`), run under a shell whose stdin is a pipe this
 * process holds: when the pipe closes (stop(), or the test process died however it died) the shell stops
 * the server with SIGTERM and removes what it used (a directory or a file), so no test run leaves a server
 * or its data behind. fd 3 keeps the pipe for the background reader (an asynchronous list's own stdin is
 * /dev/null).
 */
final class Process
{
    private const WATCHDOG = <<<'SH'
        used=$1
        shift
        exec 3<&0
        "$@" 3<&- &
        server=$!
        (cat <&3 >/dev/null; kill -TERM "$server" 2>/dev/null) &
        exec 3<&-
        wait "$server"
        status=$?
        rm -rf "$used"
        exit "$status"
        SH;

    /** @var resource */
    private $process;
    /** @var resource */
    private $stdin;

    /**
     * @param list<string> $command
     * @param array<string, string> $env the whole environment of the server
     * @param string $used the directory or file to remove once the server has stopped
     */
    public function __construct(array $command, array $env, private readonly string $log, string $used)
    {
        $process = proc_open(['sh', '-c', self::WATCHDOG, 'watchdog', $used, ...$command],
            [0 => ['pipe', 'r'], 1 => ['file', '/dev/null', 'w'], 2 => ['file', $log, 'w']], $pipes, null, $env);
        if ($process === false) {
            throw new \RuntimeException('could not start ' . implode(' ', $command));
        }
        $this->process = $process;
        $this->stdin = $pipes[0];
    }

    public function running(): bool
    {
        return proc_get_status($this->process)['running'];
    }

    /** Waits until `$ready` answers true; throws with the end of the log if the process exits or is slow. */
    public function waitUntil(\Closure $ready, float $seconds, string $what): void
    {
        $deadline = microtime(true) + $seconds;
        while (microtime(true) < $deadline) {
            if (!$this->running()) {
                throw new \RuntimeException("$what exited at start:\n" . $this->logTail());
            }
            if ($ready()) {
                return;
            }
            usleep(50_000);
        }
        throw new \RuntimeException("$what was not ready within $seconds s:\n" . $this->logTail());
    }

    /** Stops the server (SIGTERM through the watchdog, SIGKILL if it lingers 10 s). */
    public function stop(): void
    {
        if (!is_resource($this->stdin)) {
            return;
        }
        fclose($this->stdin);
        $deadline = microtime(true) + 10;
        while ($this->running() && microtime(true) < $deadline) {
            usleep(50_000);
        }
        if ($this->running()) {
            proc_terminate($this->process, 9);
        }
        proc_close($this->process);
    }

    public function logTail(): string
    {
        return is_file($this->log) ? substr((string) file_get_contents($this->log), -4000) : '';
    }

    public static function freePort(): int
    {
        $socket = stream_socket_server('tcp://127.0.0.1:0');
        if ($socket === false) {
            throw new \RuntimeException('no free port');
        }
        $port = (int) substr(strrchr((string) stream_socket_get_name($socket, false), ':'), 1);
        fclose($socket);
        return $port;
    }

    /** @return array<string, string> this process's environment without the developer's IDENTSPHERE_* */
    public static function cleanEnvironment(): array
    {
        return array_filter(getenv(), fn (string $name) => !str_starts_with($name, 'IDENTSPHERE_'), ARRAY_FILTER_USE_KEY);
    }
}
