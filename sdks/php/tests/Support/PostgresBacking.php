<?php

declare(strict_types=1);

namespace IdentSphere\Tests\Support;

/**
 * A Postgres database and a Redis key prefix for one server, with the key-encryption key Postgres requires;
 * remove() drops the database and deletes the prefix's keys. Through psql and redis-cli, which every
 * machine that runs Postgres and Redis has.
 */
final class PostgresBacking
{
    /** @var array<string, string> the server's variables */
    public readonly array $env;
    private readonly string $database;
    private readonly string $prefix;

    public static function maintenanceUrl(): string
    {
        return getenv('IDENTSPHERE_TEST_DATABASE_URL') ?: 'postgres://postgres@127.0.0.1:5432/postgres';
    }

    public static function redisUrl(): string
    {
        return getenv('IDENTSPHERE_TEST_REDIS_URL') ?: 'redis://127.0.0.1:6379';
    }

    /** A new backing, or null when Postgres or Redis cannot be reached. */
    public static function create(): ?self
    {
        exec('psql ' . escapeshellarg(self::maintenanceUrl()) . ' -qAtc "SELECT 1" 2>/dev/null', result_code: $postgres);
        exec('redis-cli -u ' . escapeshellarg(self::redisUrl()) . ' ping 2>/dev/null', result_code: $redis);
        return $postgres === 0 && $redis === 0 ? new self() : null;
    }

    private function __construct()
    {
        $suffix = bin2hex(random_bytes(6));
        $this->database = "identsphere_sdk_php_$suffix";
        $this->prefix = "identsphere-sdk-php-$suffix:";
        self::psql("CREATE DATABASE $this->database");
        $databaseUrl = preg_replace('~/[^/]*$~', "/$this->database", self::maintenanceUrl());
        $this->env = [
            'IDENTSPHERE_DATABASE_URL' => $databaseUrl,
            'IDENTSPHERE_REDIS_URL' => self::redisUrl(),
            'IDENTSPHERE_REDIS_KEY_PREFIX' => $this->prefix,
            'IDENTSPHERE_KEY_ENCRYPTION_KEY' => base64_encode(random_bytes(32)),
        ];
    }

    public function remove(): void
    {
        self::psql("DROP DATABASE IF EXISTS $this->database WITH (FORCE)");
        $redis = 'redis-cli -u ' . escapeshellarg(self::redisUrl());
        exec("$redis --scan --pattern " . escapeshellarg("$this->prefix*"), $keys);
        if ($keys !== []) {
            exec("$redis del " . implode(' ', array_map('escapeshellarg', $keys)) . ' >/dev/null');
        }
    }

    private static function psql(string $statement): void
    {
        exec('psql ' . escapeshellarg(self::maintenanceUrl()) . ' -qAtc ' . escapeshellarg($statement), result_code: $status);
        if ($status !== 0) {
            throw new \RuntimeException("psql failed: $statement");
        }
    }
}
