<?php

declare(strict_types=1);

namespace IdentSphere\Tests\Support;

use Psr\SimpleCache\CacheInterface;

/**
 * A PSR-16 cache in files, shared by every process that names the same directory: in the tests it stands
 * for what a php-fpm pool would share (APCu, Redis). TTLs in seconds or DateInterval, as PSR-16 allows.
 */
final class FileCache implements CacheInterface
{
    public function __construct(private readonly string $directory)
    {
    }

    public function get($key, $default = null): mixed
    {
        $entry = @unserialize((string) @file_get_contents($this->file($key)));
        return is_array($entry) && ($entry['until'] === null || $entry['until'] > microtime(true)) ? $entry['value'] : $default;
    }

    public function set($key, $value, $ttl = null): bool
    {
        $seconds = $ttl instanceof \DateInterval ? (new \DateTime())->add($ttl)->getTimestamp() - time() : $ttl;
        $entry = serialize(['value' => $value, 'until' => $seconds === null ? null : microtime(true) + $seconds]);
        // Written aside and renamed: a process reading meanwhile sees the old entry or the new, whole.
        $aside = $this->file($key) . '.' . bin2hex(random_bytes(4));
        return file_put_contents($aside, $entry) !== false && rename($aside, $this->file($key));
    }

    public function delete($key): bool
    {
        return !is_file($this->file($key)) || unlink($this->file($key));
    }

    public function clear(): bool
    {
        array_map('unlink', glob("$this->directory/*.entry") ?: []);
        return true;
    }

    /** @return iterable<string, mixed> */
    public function getMultiple($keys, $default = null): iterable
    {
        $values = [];
        foreach ($keys as $key) {
            $values[$key] = $this->get($key, $default);
        }
        return $values;
    }

    /** @param iterable<string, mixed> $values */
    public function setMultiple($values, $ttl = null): bool
    {
        foreach ($values as $key => $value) {
            $this->set($key, $value, $ttl);
        }
        return true;
    }

    public function deleteMultiple($keys): bool
    {
        foreach ($keys as $key) {
            $this->delete($key);
        }
        return true;
    }

    public function has($key): bool
    {
        return $this->get($key, $this) !== $this;
    }

    private function file(string $key): string
    {
        return "$this->directory/" . sha1($key) . '.entry';
    }
}
