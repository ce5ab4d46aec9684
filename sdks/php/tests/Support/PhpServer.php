<?php

declare(strict_types=1);

namespace IdentSphere\Tests\Support;

/**
 * PHP's built-in web server (`php -S`) running one of the front controllers in tests/apps: every request a
 * fresh PHP runtime, as under php-fpm, so what the SDK keeps in memory lasts one request.
 */
final class PhpServer
{
    public readonly string $url;
    private readonly string $log;
    private Process $process;

    /** @param array<string, string> $env what the front controller reads (`getenv`) */
    public function __construct(string $app, array $env)
    {
        $port = Process::freePort();
        $this->url = "http://127.0.0.1:$port";
        $this->log = tempnam(sys_get_temp_dir(), 'identsphere-sdk-php-server-');
        $this->process = new Process([PHP_BINARY, '-S', "127.0.0.1:$port", dirname(__DIR__) . "/apps/$app.php"],
            Process::cleanEnvironment() + $env, $this->log, $this->log);
        try {
            $this->process->waitUntil(fn () => @fsockopen('127.0.0.1', $port) !== false, 10, "php -S $app");
        } catch (\Throwable $error) {
            $this->stop();
            throw $error;
        }
    }

    public function stop(): void
    {
        $this->process->stop();
        @unlink($this->log);
    }

    /**
     * A request to the app: status, headers by lower-case name, body.
     *
     * @param array<string, string> $headers
     * @return array{int, array<string, string>, string}
     */
    public function request(string $method, string $path, array $headers = []): array
    {
        $headers += $method === 'GET' ? [] : ['Content-Type' => 'application/json'];
        $lines = array_map(fn (string $name, string $value) => "$name: $value", array_keys($headers), $headers);
        $context = stream_context_create(['http' => [
            'method' => $method, 'header' => $lines, 'ignore_errors' => true, 'content' => $method === 'GET' ? null : '{}',
        ]]);
        $body = (string) file_get_contents("$this->url$path", false, $context);
        $received = [];
        foreach ($http_response_header as $line) {
            $parts = explode(':', $line, 2);
            if (count($parts) === 2) {
                $received[strtolower(trim($parts[0]))] = trim($parts[1]);
            }
        }
        return [(int) explode(' ', $http_response_header[0])[1], $received, $body];
    }
}
