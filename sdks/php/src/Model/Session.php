<?php

declare(strict_types=1);

namespace IdentSphere\Model;

/**
 * A session family: one sign-in and its refreshes, in one organization. `aal` is `aal1` or `aal2`,
 * `authTime` Unix seconds, `expiresAt` the family's absolute end (RFC 3339).
 */
final readonly class Session
{
    public function __construct(
        public string $id,
        public string $organizationId,
        public string $aal,
        public string $authMethod,
        public int $authTime,
        public string $expiresAt,
    ) {
    }

    /** @param array<string, mixed> $json */
    public static function fromJson(array $json): self
    {
        return new self($json['id'], $json['organization_id'], $json['aal'], $json['auth_method'], $json['auth_time'], $json['expires_at']);
    }
}
