<?php

declare(strict_types=1);

namespace IdentSphere;

use IdentSphere\Http\CurlTransport;
use IdentSphere\Http\Response;
use IdentSphere\Http\Transport;

/**
 * Where IdentSphere is and how to reach it: shared by the Client and the Verifier's key cache, so every
 * request carries the same User-Agent and goes through one transport.
 *
 * @internal
 */
final class Connection
{
    public const VERSION = '0.1.0';
    public const USER_AGENT = 'identsphere-php/' . self::VERSION . ' (php ' . PHP_VERSION . ')';

    public readonly string $baseUrl;
    private readonly Transport $transport;

    /** @param string $baseUrl `https://auth.example.com` (a trailing `/` is ignored) */
    public function __construct(string $baseUrl, ?Transport $transport)
    {
        $this->baseUrl = rtrim($baseUrl, '/');
        if (preg_match('~^https?://[^/]+~i', $this->baseUrl) !== 1) {
            throw new \InvalidArgumentException("the IdentSphere base URL must start with http:// or https://: $baseUrl");
        }
        $this->transport = $transport ?? new CurlTransport();
    }

    /**
     * Sends one request; `$body` goes as JSON, `$bearer` as `Authorization: Bearer`.
     *
     * @param ?array<string, mixed> $body
     * @param array<string, string|int> $query
     */
    public function request(string $method, string $path, ?string $bearer = null, ?array $body = null, array $query = []): Response
    {
        $url = $this->baseUrl . $path . ($query === [] ? '' : '?' . http_build_query($query));
        $headers = ['Accept' => 'application/json', 'User-Agent' => self::USER_AGENT];
        if ($bearer !== null) {
            $headers['Authorization'] = "Bearer $bearer";
        }
        if ($body !== null) {
            $headers['Content-Type'] = 'application/json';
        }
        // An empty body is the empty JSON object, which PHP would otherwise encode as a list.
        $json = match (true) { $body === null => null, $body === [] => '{}', default => json_encode($body, JSON_THROW_ON_ERROR) };
        return $this->transport->send($method, $url, $headers, $json);
    }
}
