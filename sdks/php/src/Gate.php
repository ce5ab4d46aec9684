<?php

declare(strict_types=1);

namespace IdentSphere;

/**
 * What the PSR-15 middleware and the plain-PHP guard share: where a request's credential is found, what a
 * route may require of the claims, and how a refusal is answered.
 *
 * The credential is `Authorization: Bearer <token>`, else the `identsphere_at` cookie IdentSphere sets. A
 * cookie-only unsafe request (`POST`, `PUT`, `PATCH`, `DELETE`) must come from an allowed origin, as
 * IdentSphere itself requires (`csrf_rejected`): a browser sends the cookie whichever site made the
 * request. Refusals are answered with IdentSphereException::toResponse().
 *
 * @internal
 */
final class Gate
{
    /** The access-token cookie IdentSphere sets. */
    public const ACCESS_COOKIE = 'identsphere_at';
    private const SAFE_METHODS = ['GET', 'HEAD', 'OPTIONS', 'TRACE'];

    /** @var list<string> */
    private readonly array $allowedOrigins;

    /**
     * @param string|\Closure|null $organization an organization id, or a closure of the framework's request
     *                                           returning one (from the route)
     * @param list<string> $allowedOrigins
     */
    public function __construct(
        private readonly Verifier $verifier,
        private readonly bool $requireAal2,
        private readonly string|\Closure|null $organization,
        private readonly bool $optional,
        array $allowedOrigins,
    ) {
        $this->allowedOrigins = array_map(fn (string $origin) => rtrim($origin, '/'), $allowedOrigins);
    }

    /**
     * The claims of a request, null for an anonymous one where authentication is optional. `$header` gives a
     * request header by lower-case name; `$request` is what an organization closure receives.
     *
     * @param \Closure(string): ?string $header
     * @throws IdentSphereException the refusal
     */
    public function check(string $method, \Closure $header, ?string $cookie, mixed $request): ?Claims
    {
        $token = $this->credential($method, $header, $cookie);
        if ($token === null) {
            return $this->optional ? null : throw IdentSphereException::refusal('token_missing');
        }
        $claims = $this->verifier->verify($token);
        if ($this->requireAal2 && !$claims->isAal2()) {
            throw IdentSphereException::refusal('insufficient_aal');
        }
        $organization = $this->organization instanceof \Closure ? ($this->organization)($request) : $this->organization;
        if ($organization !== null && $claims->org !== $organization) {
            throw IdentSphereException::refusal('not_a_member');
        }
        return $claims;
    }

    /** The bearer token, else the access cookie (after the CSRF check); null when neither was sent. */
    private function credential(string $method, \Closure $header, ?string $cookie): ?string
    {
        [$scheme, $bearer] = array_pad(explode(' ', $header('authorization') ?? '', 2), 2, '');
        if (strcasecmp($scheme, 'bearer') === 0 && trim($bearer) !== '') {
            return trim($bearer);
        }
        $cookie ??= self::cookie($header('cookie'));
        if ($cookie === null || $cookie === '') {
            return null;
        }
        if (!$this->sameOrigin($method, $header)) {
            throw IdentSphereException::refusal('csrf_rejected');
        }
        return $cookie;
    }

    /** The access cookie of a `Cookie` header. */
    private static function cookie(?string $header): ?string
    {
        foreach (explode(';', $header ?? '') as $pair) {
            [$name, $value] = array_pad(explode('=', trim($pair), 2), 2, '');
            if ($name === self::ACCESS_COOKIE && $value !== '') {
                return $value;
            }
        }
        return null;
    }

    /**
     * Safe methods pass; an unsafe one needs an allowed `Origin` (without a list, the request's own host),
     * or, without `Origin`, no `Sec-Fetch-Site: cross-site`.
     */
    private function sameOrigin(string $method, \Closure $header): bool
    {
        if (in_array(strtoupper($method), self::SAFE_METHODS, true)) {
            return true;
        }
        $origin = $header('origin');
        if ($origin === null) {
            return $header('sec-fetch-site') !== 'cross-site';
        }
        if ($this->allowedOrigins !== []) {
            return in_array($origin, $this->allowedOrigins, true);
        }
        $host = explode('://', $origin, 2)[1] ?? null;
        return $host !== null && $host === $header('host');
    }
}
