<?php

declare(strict_types=1);

namespace IdentSphere\Http;

use IdentSphere\IdentSphereException;

/**
 * How the SDK reaches IdentSphere: one request, one answer. CurlTransport is the default; implement this to
 * go through your own HTTP stack (a PSR-18 client, a proxy, instrumentation).
 */
interface Transport
{
    /**
     * Sends one request and returns IdentSphere's answer, whatever its status. It must not retry: sign-in,
     * refresh and logout are not idempotent (a retried refresh would spend the new refresh token).
     *
     * @param array<string, string> $headers
     * @throws IdentSphereException `network_error` when no answer arrived
     */
    public function send(string $method, string $url, array $headers, ?string $body): Response;
}
