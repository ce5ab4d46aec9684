<?php

declare(strict_types=1);

namespace IdentSphere\Model;

/** A second factor the user has enrolled (`type`: `totp` or `passkey`). */
final readonly class Factor
{
    public function __construct(
        public string $type,
        public string $confirmedAt,
    ) {
    }

    /** @param array<string, mixed> $json */
    public static function fromJson(array $json): self
    {
        return new self($json['type'], $json['confirmed_at']);
    }
}
