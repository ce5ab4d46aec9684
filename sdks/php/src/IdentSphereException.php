<?php

declare(strict_types=1);

namespace IdentSphere;

use IdentSphere\Http\Response;

/**
 * Every refusal: an answer of IdentSphere in its error envelope, or a refusal of the Verifier, the
 * middleware or the guard, which use the same codes. Callers switch on `$e->errorCode`, exactly as in the
 * error catalog (PHP's own `getCode()` is final and an int: it is the HTTP status here).
 *
 * When no envelope could be read at all, the SDK raises one itself: `network_error` (status 0: IdentSphere
 * could not be reached or did not answer in time) or `unexpected_response` (an answer without the
 * envelope), with type `client_error`, as the other SDKs do.
 */
final class IdentSphereException extends \RuntimeException
{
    /**
     * The refusals the SDK makes itself: code => [status, type, message], the catalog's rows with the
     * server's own messages, so a PHP service answers exactly as IdentSphere would.
     */
    public const REFUSALS = [
        'token_missing' => [401, 'authentication_error', 'no token was sent'],
        'token_invalid' => [401, 'authentication_error', 'the token is not valid'],
        'token_expired' => [401, 'authentication_error', 'the token has expired'],
        'token_revoked' => [401, 'authentication_error', 'the token has been revoked'],
        'insufficient_aal' => [403, 'permission_error', 'this action needs a session verified with a second factor'],
        'not_a_member' => [403, 'permission_error', 'you are not a member of this organization'],
        'csrf_rejected' => [403, 'permission_error', 'cross-site request refused'],
        'service_unavailable' => [503, 'api_error', 'the authentication service is unavailable, retry shortly'],
    ];

    /**
     * @param int $status the HTTP status (401, 403, …; 0 when no answer was received)
     * @param string $errorCode the catalog's stable code (`invalid_credentials`, `token_expired`, …)
     * @param string $type the catalog's class of the code (`authentication_error`, `permission_error`, …)
     * @param ?string $param the offending request field, when IdentSphere names one
     * @param ?string $requestId IdentSphere's `X-Request-Id` of the refused request, to find it in the
     *                           server's log; null for the SDK's own refusals
     * @param ?int $retryAfter seconds to wait before trying again (`Retry-After` on 429 and 503)
     */
    public function __construct(
        public readonly int $status,
        public readonly string $errorCode,
        public readonly string $type,
        string $message,
        public readonly ?string $param = null,
        public readonly ?string $requestId = null,
        public readonly ?int $retryAfter = null,
        ?\Throwable $previous = null,
    ) {
        parent::__construct($message, $status, $previous);
    }

    /** One of the SDK's own refusals (REFUSALS), e.g. `IdentSphereException::refusal('token_expired')`. */
    public static function refusal(string $code): self
    {
        [$status, $type, $message] = self::REFUSALS[$code];
        return new self($status, $code, $type, $message, retryAfter: $code === 'service_unavailable' ? 1 : null);
    }

    /** The error a refused answer stands for: its envelope, or `unexpected_response` without one. */
    public static function fromResponse(Response $response): self
    {
        $error = self::envelopeOf($response->body);
        if ($error === null) {
            return self::unexpected($response, "HTTP {$response->status} without the API's error envelope");
        }
        return new self(
            $response->status,
            $error['code'],
            $error['type'],
            $error['message'],
            param: is_string($error['param'] ?? null) ? $error['param'] : null,
            requestId: $response->header('x-request-id'),
            retryAfter: self::parseRetryAfter($response->header('retry-after')),
        );
    }

    /** An answer the SDK cannot read (no envelope, no JSON where JSON was due). */
    public static function unexpected(Response $response, string $message): self
    {
        return new self($response->status, 'unexpected_response', 'client_error', $message,
            requestId: $response->header('x-request-id'));
    }

    /** A failure on the client's side: IdentSphere could not be reached, or did not answer in time. */
    public static function network(string $message): self
    {
        return new self(0, 'network_error', 'client_error', $message);
    }

    /** Seconds of a `Retry-After` value: delay-seconds (what IdentSphere sends) or an HTTP date. */
    public static function parseRetryAfter(?string $value, ?int $now = null): ?int
    {
        if ($value === null) {
            return null;
        }
        $value = trim($value);
        if (ctype_digit($value)) {
            return (int) $value;
        }
        $at = \DateTimeImmutable::createFromFormat(\DateTimeInterface::RFC7231, $value);
        return $at === false ? null : max(0, $at->getTimestamp() - ($now ?? time()));
    }

    /**
     * The API's error envelope for this refusal, as IdentSphere itself would answer it.
     *
     * @return array{error: array{code: string, message: string, type: string, param?: string}}
     */
    public function envelope(): array
    {
        $error = ['code' => $this->errorCode, 'message' => $this->getMessage(), 'type' => $this->type];
        if ($this->param !== null) {
            $error['param'] = $this->param;
        }
        return ['error' => $error];
    }

    /**
     * The HTTP answer to this refusal, for an application that refuses a request with it: status, headers
     * and IdentSphere's envelope as JSON, so a client of your service reads it as it reads IdentSphere's. A
     * failure on the client's side (IdentSphere unreachable) is answered as `503 service_unavailable`.
     *
     * @return array{int, array<string, string>, string}
     */
    public function toResponse(): array
    {
        $error = $this->status < 400 ? self::refusal('service_unavailable') : $this;
        $headers = ['Content-Type' => 'application/json'];
        if ($error->status === 401) {
            $headers['WWW-Authenticate'] = 'Bearer';
        }
        if ($error->status === 429 || $error->status === 503) {
            $headers['Retry-After'] = (string) ($error->retryAfter ?? 1);
        }
        return [$error->status, $headers, json_encode($error->envelope(), JSON_THROW_ON_ERROR)];
    }

    public function __toString(): string
    {
        $request = $this->requestId === null ? '' : " (request {$this->requestId})";
        return self::class . " {$this->status} {$this->errorCode}: {$this->getMessage()}{$request}";
    }

    /** @return ?array{code: string, message: string, type: string, param?: mixed} */
    private static function envelopeOf(string $body): ?array
    {
        $decoded = json_decode($body, true);
        $error = is_array($decoded) ? ($decoded['error'] ?? null) : null;
        if (!is_array($error)) {
            return null;
        }
        foreach (['code', 'type', 'message'] as $field) {
            if (!is_string($error[$field] ?? null)) {
                return null;
            }
        }
        return $error;
    }
}
