<?php

declare(strict_types=1);

namespace IdentSphere;

use IdentSphere\Http\Transport;
use Psr\SimpleCache\CacheInterface;

/**
 * Checks IdentSphere access tokens locally, against the public keys IdentSphere publishes at
 * `/.well-known/jwks.json`: no round trip per request.
 *
 * The checks are IdentSphere's own: at most 8 KiB; header `alg` `RS256` (nothing else, `none` included)
 * and `typ` `JWT`; a `kid` the JWKS publishes; the signature; claim `typ` `access` (refresh and mfa tokens
 * are refused); `iss` equal to the issuer; `sub`, `exp` and `iat` present; `exp` not passed (with the
 * leeway).
 *
 * The keys are kept in this object's memory and, with `$cache`, in a PSR-16 cache: under php-fpm, where
 * memory lasts one request, pass one shared by the pool (APCu, Redis) so the pool fetches the JWKS once
 * per max-age instead of once per request (see KeyCache).
 */
final class Verifier
{
    /** Longest token accepted: anything larger is refused before any parsing, as IdentSphere does. */
    public const MAX_TOKEN_BYTES = 8 * 1024;
    /** Three base64url parts (the signature may be empty only to be refused below, as `alg: none` is). */
    private const SHAPE = '/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/D';

    /** The `iss` tokens must carry. */
    public readonly string $issuer;
    private readonly KeyCache $keys;

    /**
     * @param ?string $issuer default the base URL; set it when you reach IdentSphere at another address than
     *                        its IDENTSPHERE_PUBLIC_BASE_URL
     * @param int $leeway seconds a token is still accepted after `exp`, for clock skew
     * @param int $jwksRefetchInterval least seconds between two JWKS fetches, whatever their cause
     * @param ?CacheInterface $cache a PSR-16 cache shared by the processes of a pool (see above)
     * @param ?Transport $transport default: a CurlTransport (5 s to connect, 10 s in all)
     */
    public function __construct(
        string $baseUrl,
        ?string $issuer = null,
        private readonly int $leeway = 0,
        int $jwksRefetchInterval = 30,
        ?CacheInterface $cache = null,
        ?Transport $transport = null,
    ) {
        $connection = new Connection($baseUrl, $transport);
        $this->issuer = $issuer ?? $connection->baseUrl;
        $this->keys = new KeyCache($connection, $jwksRefetchInterval, $cache);
    }

    /**
     * The claims of a valid access token.
     *
     * @throws IdentSphereException `token_invalid` for anything but a well-formed access token signed by a
     *         published key of this issuer, `token_expired` once `exp` (plus the leeway) has passed, and
     *         `service_unavailable` when no JWKS could ever be fetched
     */
    public function verify(#[\SensitiveParameter] string $token): Claims
    {
        if (strlen($token) > self::MAX_TOKEN_BYTES || preg_match(self::SHAPE, $token) !== 1) {
            throw self::invalid();
        }
        [$encodedHeader, $encodedPayload, $encodedSignature] = explode('.', $token);
        $header = self::decodeObject($encodedHeader);
        if (($header['alg'] ?? null) !== 'RS256' || ($header['typ'] ?? null) !== 'JWT' || !is_string($header['kid'] ?? null)) {
            throw self::invalid();
        }
        $key = $this->keys->key($header['kid']);
        $signature = Base64Url::decode($encodedSignature);
        if ($key === null || $signature === null
            || openssl_verify("$encodedHeader.$encodedPayload", $signature, $key, OPENSSL_ALGO_SHA256) !== 1) {
            throw self::invalid();
        }
        // Only now, signed by IdentSphere, are the claims worth reading.
        $claims = Claims::fromPayload(self::decodeObject($encodedPayload));
        if ($claims === null || $claims->typ !== 'access' || $claims->iss !== $this->issuer) {
            throw self::invalid();
        }
        if (time() >= $claims->exp + $this->leeway) {
            throw IdentSphereException::refusal('token_expired');
        }
        return $claims;
    }

    /** @return array<string, mixed> a JSON object of one base64url part */
    private static function decodeObject(string $part): array
    {
        $json = Base64Url::decode($part);
        $decoded = $json === null ? null : json_decode($json, true, 16);
        if (!is_array($decoded) || array_is_list($decoded)) {
            throw self::invalid();
        }
        return $decoded;
    }

    private static function invalid(): IdentSphereException
    {
        return IdentSphereException::refusal('token_invalid');
    }
}
