<?php

declare(strict_types=1);

namespace IdentSphere\Http;

use IdentSphere\IdentSphereException;

/**
 * The default transport, on ext-curl: a connect timeout and an overall one, no redirects followed, HTTP and
 * HTTPS only. One curl handle is kept per transport, so consecutive calls reuse the connection.
 */
final class CurlTransport implements Transport
{
    private ?\CurlHandle $handle = null;

    /**
     * @param float $connectTimeout seconds to connect
     * @param float $timeout seconds the whole exchange may take
     */
    public function __construct(
        private readonly float $connectTimeout = 5.0,
        private readonly float $timeout = 10.0,
    ) {
    }

    public function send(string $method, string $url, array $headers, ?string $body): Response
    {
        $this->handle ??= curl_init();
        $handle = $this->handle;
        curl_reset($handle);
        $received = [];
        curl_setopt_array($handle, [
            CURLOPT_URL => $url,
            CURLOPT_CUSTOMREQUEST => $method,
            CURLOPT_HTTPHEADER => array_map(fn (string $name, string $value) => "$name: $value", array_keys($headers), $headers),
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_FOLLOWLOCATION => false,
            CURLOPT_PROTOCOLS => CURLPROTO_HTTP | CURLPROTO_HTTPS,
            CURLOPT_CONNECTTIMEOUT_MS => (int) ($this->connectTimeout * 1000),
            CURLOPT_TIMEOUT_MS => (int) ($this->timeout * 1000),
            CURLOPT_HEADERFUNCTION => static function ($_, string $line) use (&$received): int {
                $parts = explode(':', $line, 2);
                if (count($parts) === 2) {
                    $name = strtolower(trim($parts[0]));
                    $value = trim($parts[1]);
                    $received[$name] = isset($received[$name]) ? "{$received[$name]}, $value" : $value;
                }
                return strlen($line);
            },
        ]);
        if ($body !== null) {
            curl_setopt($handle, CURLOPT_POSTFIELDS, $body);
        }
        $answer = curl_exec($handle);
        if (!is_string($answer)) {
            $where = parse_url($url, PHP_URL_SCHEME) . '://' . parse_url($url, PHP_URL_HOST) . ':'
                . (parse_url($url, PHP_URL_PORT) ?? '') . parse_url($url, PHP_URL_PATH);
            throw IdentSphereException::network("$method $where: " . curl_error($handle));
        }
        return new Response(curl_getinfo($handle, CURLINFO_RESPONSE_CODE), $received, $answer);
    }
}
