<?php

declare(strict_types=1);

namespace IdentSphere\Model;

/** The user, as token and session answers show it. */
final readonly class User
{
    public function __construct(
        public string $id,
        public string $email,
        public bool $emailVerified,
        public ?string $displayName,
        public string $createdAt,
    ) {
    }

    /** @param array<string, mixed> $json */
    public static function fromJson(array $json): self
    {
        return new self($json['id'], $json['email'], $json['email_verified'], $json['display_name'] ?? null, $json['created_at']);
    }
}
