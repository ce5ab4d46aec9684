<?php

declare(strict_types=1);

namespace IdentSphere;

/**
 * The middleware's checks for plain PHP, without a framework: the request is `$_SERVER` and `$_COOKIE`.
 *
 * ```php
 * $claims = (new IdentSphere\Guard($verifier))->protect(); // refuses and ends the request, or returns the claims
 * ```
 *
 * Same options and refusals as Middleware. Behind Apache with CGI or FastCGI, the `Authorization` header
 * reaches PHP only when the server passes it on (`CGIPassAuth On`); it is read from `HTTP_AUTHORIZATION`,
 * else `REDIRECT_HTTP_AUTHORIZATION`.
 */
final class Guard
{
    private readonly Gate $gate;

    /**
     * @param string|(\Closure(array<string, mixed>): ?string)|null $organization an id, or a closure of
     *                                                                          `$_SERVER` returning one
     * @param list<string> $allowedOrigins
     */
    public function __construct(
        Verifier $verifier,
        bool $requireAal2 = false,
        string|\Closure|null $organization = null,
        bool $optional = false,
        array $allowedOrigins = [],
    ) {
        $this->gate = new Gate($verifier, $requireAal2, $organization, $optional, $allowedOrigins);
    }

    /**
     * The claims of a request given as `$_SERVER` and `$_COOKIE`; null for an anonymous one when optional.
     *
     * @param array<string, mixed> $server
     * @param array<string, mixed> $cookies
     * @throws IdentSphereException the refusal
     */
    public function authenticate(array $server, array $cookies): ?Claims
    {
        $header = function (string $name) use ($server): ?string {
            $key = 'HTTP_' . strtoupper(str_replace('-', '_', $name));
            $value = $server[$key] ?? ($name === 'authorization' ? ($server['REDIRECT_HTTP_AUTHORIZATION'] ?? null) : null);
            return is_string($value) ? $value : null;
        };
        $cookie = $cookies[Gate::ACCESS_COOKIE] ?? null;
        $method = is_string($server['REQUEST_METHOD'] ?? null) ? $server['REQUEST_METHOD'] : 'GET';
        return $this->gate->check($method, $header, is_string($cookie) ? $cookie : null, $server);
    }

    /**
     * The claims of the current request; on a refusal, sends IdentSphere's envelope with its status and ends
     * the request (`exit`), as a plain PHP page that requires a session would.
     */
    public function protect(): ?Claims
    {
        try {
            return $this->authenticate($_SERVER, $_COOKIE);
        } catch (IdentSphereException $refusal) {
            [$status, $headers, $body] = $refusal->toResponse();
            http_response_code($status);
            foreach ($headers as $name => $value) {
                header("$name: $value");
            }
            echo $body;
            exit;
        }
    }
}
