<?php

declare(strict_types=1);

namespace IdentSphere;

use Psr\SimpleCache\CacheInterface;

/**
 * IdentSphere's public signing keys (the JWKS), fetched when first needed, kept in memory and, when given,
 * in a PSR-16 cache shared by the processes of a pool.
 *
 * The rules, the same in every IdentSphere SDK:
 * - a key set is used as long as its answer's `Cache-Control: max-age` says (default 5 minutes, at most a
 *   day), then fetched again by the first request that finds it stale;
 * - a token whose `kid` is unknown (a key rotation) triggers a refetch, but fetches of any cause are at most
 *   one per refetch interval (30 s by default): a flood of forged `kid`s costs one fetch;
 * - a fetch that fails keeps the keys in use.
 *
 * PHP keeps nothing between requests under php-fpm, so without a shared cache every request starts empty
 * and fetches the JWKS. With one, the key set and the time of the last fetch attempt live in the cache: the
 * pool fetches once per max-age, and the rate limit holds across its processes. PSR-16 has no lock, so
 * processes that miss the cache in the same instant may each fetch once.
 */
final class KeyCache
{
    /** Used when the answer has no usable `max-age`: IdentSphere's own value. */
    public const DEFAULT_MAX_AGE = 300;
    /** Longest a key set is trusted without asking again, whatever the answer says. */
    public const MAX_MAX_AGE = 86400;
    /**
     * Least seconds between two fetches while no key set was ever fetched: every request is refused until
     * one succeeds, so retry sooner than the refetch interval, but not once per request.
     */
    private const COLD_RETRY = 1;
    /** The DER of the rsaEncryption AlgorithmIdentifier (OID 1.2.840.113549.1.1.1, NULL parameters). */
    private const RSA_ALGORITHM = "\x30\x0d\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01\x05\x00";

    /** @var ?array<string, \OpenSSLAsymmetricKey> RS256 keys by `kid`; null before any key set was had */
    private ?array $keys = null;
    /** Unix time (a wall clock: the shared cache outlives processes) when the key set goes stale. */
    private float $freshUntil = 0.0;
    private float $lastAttempt = -INF;
    private readonly string $entryKey;
    private readonly string $attemptKey;

    public function __construct(
        private readonly Connection $connection,
        private readonly int $refetchInterval,
        private readonly ?CacheInterface $cache,
    ) {
        $id = sha1($connection->baseUrl);
        $this->entryKey = "identsphere.jwks.$id";
        $this->attemptKey = "identsphere.jwks_attempt.$id";
    }

    /**
     * The key with this `kid`, or null when IdentSphere does not publish it.
     *
     * @throws IdentSphereException `service_unavailable` when no JWKS could ever be had
     */
    public function key(string $kid): ?\OpenSSLAsymmetricKey
    {
        $now = microtime(true);
        if ($this->lacks($kid, $now)) {
            $this->loadShared(); // what another process of the pool fetched
            if ($this->lacks($kid, $now) && $this->mayFetch($now)) {
                $this->fetch($now);
            }
        }
        if ($this->keys === null) {
            throw IdentSphereException::refusal('service_unavailable');
        }
        return $this->keys[$kid] ?? null;
    }

    /** Whether a fetch is wanted for this `kid`: no key set, an unknown `kid`, or a stale key set. */
    private function lacks(string $kid, float $now): bool
    {
        return $this->keys === null || !isset($this->keys[$kid]) || $now >= $this->freshUntil;
    }

    /** The key set the shared cache holds, if any. */
    private function loadShared(): void
    {
        $entry = $this->shared(fn (CacheInterface $cache) => $cache->get($this->entryKey));
        if (is_array($entry) && is_string($entry['jwks'] ?? null) && is_float($entry['fresh_until'] ?? null)) {
            $this->install($entry['jwks'], $entry['fresh_until']);
        }
    }

    private function mayFetch(float $now): bool
    {
        $shared = $this->shared(fn (CacheInterface $cache) => $cache->get($this->attemptKey));
        $last = max($this->lastAttempt, is_float($shared) ? $shared : -INF);
        return $now - $last >= ($this->keys === null ? self::COLD_RETRY : $this->refetchInterval);
    }

    /** Fetches the JWKS; on failure the keys in use stay. */
    private function fetch(float $now): void
    {
        $this->lastAttempt = $now;
        $this->shared(fn (CacheInterface $cache) => $cache->set($this->attemptKey, $now, $this->refetchInterval));
        try {
            $response = $this->connection->request('GET', '/.well-known/jwks.json');
        } catch (IdentSphereException) {
            return; // unreachable: the keys in use stay
        }
        $maxAge = self::maxAge($response->header('cache-control')) ?? self::DEFAULT_MAX_AGE;
        $freshUntil = $now + max(min($maxAge, self::MAX_MAX_AGE), $this->refetchInterval);
        if ($response->status === 200 && $this->install($response->body, $freshUntil)) {
            // Kept a day, past its freshness: a stale key set still serves when IdentSphere is down.
            $this->shared(fn (CacheInterface $cache) => $cache->set($this->entryKey,
                ['jwks' => $response->body, 'fresh_until' => $freshUntil], self::MAX_MAX_AGE));
        }
    }

    /** Makes a JWKS document the key set in use; false (and nothing changed) when it is no JWKS. */
    private function install(string $jwks, float $freshUntil): bool
    {
        $keys = self::rs256Keys($jwks);
        if ($keys === null) {
            return false;
        }
        $this->keys = $keys;
        $this->freshUntil = $freshUntil;
        return true;
    }

    /**
     * Runs a call on the shared cache, if there is one. A cache that fails (its Redis is down) costs a
     * fetch, never a refusal, so its exceptions are swallowed.
     */
    private function shared(\Closure $call): mixed
    {
        if ($this->cache === null) {
            return null;
        }
        try {
            return $call($this->cache);
        } catch (\Exception) {
            return null;
        }
    }

    /**
     * The RS256 signing keys of a JWKS document, by `kid`; null for a document that is no JWKS. Keys for
     * another use or algorithm, or that do not parse, are left out.
     *
     * @return ?array<string, \OpenSSLAsymmetricKey>
     */
    public static function rs256Keys(string $jwks): ?array
    {
        $document = json_decode($jwks, true);
        if (!is_array($document) || !is_array($document['keys'] ?? null)) {
            return null;
        }
        $keys = [];
        foreach ($document['keys'] as $jwk) {
            if (!is_array($jwk) || ($jwk['kty'] ?? null) !== 'RSA' || !is_string($jwk['kid'] ?? null)
                || !in_array($jwk['alg'] ?? null, [null, 'RS256'], true) || !in_array($jwk['use'] ?? null, [null, 'sig'], true)
                || !is_string($jwk['n'] ?? null) || !is_string($jwk['e'] ?? null)) {
                continue;
            }
            $key = self::rsaPublicKey($jwk['n'], $jwk['e']);
            if ($key !== null) {
                $keys[$jwk['kid']] = $key;
            }
        }
        return $keys;
    }

    /** `max-age` of a `Cache-Control` value in seconds (`no-store` and `no-cache` count as 0), or null. */
    public static function maxAge(?string $value): ?int
    {
        $age = null;
        foreach (explode(',', strtolower($value ?? '')) as $directive) {
            $directive = trim($directive);
            if ($directive === 'no-store' || $directive === 'no-cache') {
                return 0;
            }
            if (str_starts_with($directive, 'max-age=')) {
                $seconds = trim(substr($directive, 8), '"');
                $age = ctype_digit($seconds) ? (int) $seconds : null;
            }
        }
        return $age;
    }

    /**
     * The public key of a JWK's modulus and exponent (base64url), or null. ext-openssl reads keys from PEM
     * only, so the SubjectPublicKeyInfo is written in DER here.
     */
    private static function rsaPublicKey(string $modulus, string $exponent): ?\OpenSSLAsymmetricKey
    {
        $n = Base64Url::decode($modulus);
        $e = Base64Url::decode($exponent);
        if ($n === null || $e === null) {
            return null;
        }
        $rsaPublicKey = self::der(0x30, self::derInteger($n) . self::derInteger($e));
        $spki = self::der(0x30, self::RSA_ALGORITHM . self::der(0x03, "\0" . $rsaPublicKey));
        $key = openssl_pkey_get_public("-----BEGIN PUBLIC KEY-----\n" . chunk_split(base64_encode($spki), 64, "\n") . "-----END PUBLIC KEY-----\n");
        return $key === false ? null : $key;
    }

    /** A DER INTEGER of unsigned big-endian bytes. */
    private static function derInteger(string $bytes): string
    {
        $bytes = ltrim($bytes, "\0");
        // A leading bit of 1 would read as negative: DER then prefixes a zero byte.
        if ($bytes === '' || ord($bytes[0]) > 0x7f) {
            $bytes = "\0" . $bytes;
        }
        return self::der(0x02, $bytes);
    }

    private static function der(int $tag, string $content): string
    {
        $length = strlen($content);
        if ($length < 0x80) {
            return chr($tag) . chr($length) . $content;
        }
        $lengthBytes = ltrim(pack('N', $length), "\0");
        return chr($tag) . chr(0x80 | strlen($lengthBytes)) . $lengthBytes . $content;
    }
}
