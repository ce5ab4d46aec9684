<?php

declare(strict_types=1);

namespace IdentSphere;

use Psr\Http\Message\ResponseFactoryInterface;
use Psr\Http\Message\ResponseInterface;
use Psr\Http\Message\ServerRequestInterface;
use Psr\Http\Message\StreamFactoryInterface;
use Psr\Http\Server\MiddlewareInterface;
use Psr\Http\Server\RequestHandlerInterface;

/**
 * PSR-15 middleware: verifies the request's access token and hands its claims to the handler as the request
 * attribute `identsphere.claims` (an IdentSphere\Claims); refuses otherwise with the API's envelope and
 * status:
 * - `401 token_missing`, `token_invalid`, `token_expired`; `503 service_unavailable` when no key could be
 *   fetched;
 * - `403 insufficient_aal` with `requireAal2` and a session without a second factor;
 * - `403 not_a_member` with `organization` (an id, or a closure of the request returning one, e.g. from a
 *   route attribute) and a token of another organization;
 * - `403 csrf_rejected` for a cookie-authenticated unsafe request from another origin than the request's
 *   own host or one of `allowedOrigins`.
 * The token is `Authorization: Bearer …`, else the `identsphere_at` cookie. With `optional` a request
 * without any token reaches the handler with no claims (a token that was sent must still verify).
 */
final class Middleware implements MiddlewareInterface
{
    /** The request attribute the claims are under. */
    public const CLAIMS = 'identsphere.claims';

    private readonly Gate $gate;

    /**
     * @param ResponseFactoryInterface $responses and `$streams`: your framework's PSR-17 factories, for refusals
     * @param string|(\Closure(ServerRequestInterface): ?string)|null $organization
     * @param list<string> $allowedOrigins
     */
    public function __construct(
        Verifier $verifier,
        private readonly ResponseFactoryInterface $responses,
        private readonly StreamFactoryInterface $streams,
        bool $requireAal2 = false,
        string|\Closure|null $organization = null,
        bool $optional = false,
        array $allowedOrigins = [],
    ) {
        $this->gate = new Gate($verifier, $requireAal2, $organization, $optional, $allowedOrigins);
    }

    public function process(ServerRequestInterface $request, RequestHandlerInterface $handler): ResponseInterface
    {
        $header = fn (string $name): ?string => $request->hasHeader($name) ? $request->getHeaderLine($name) : null;
        $cookie = $request->getCookieParams()[Gate::ACCESS_COOKIE] ?? null;
        try {
            $claims = $this->gate->check($request->getMethod(), $header, is_string($cookie) ? $cookie : null, $request);
        } catch (IdentSphereException $refusal) {
            [$status, $headers, $body] = $refusal->toResponse();
            $response = $this->responses->createResponse($status)->withBody($this->streams->createStream($body));
            foreach ($headers as $name => $value) {
                $response = $response->withHeader($name, $value);
            }
            return $response;
        }
        return $handler->handle($request->withAttribute(self::CLAIMS, $claims));
    }
}
