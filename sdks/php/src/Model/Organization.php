<?php

declare(strict_types=1);

namespace IdentSphere\Model;

/** The organization of a session, with the user's `role` in it (`owner`, `admin`, `member`). */
final readonly class Organization
{
    public function __construct(
        public string $id,
        public string $slug,
        public string $name,
        public string $role,
    ) {
    }

    /** @param array<string, mixed> $json */
    public static function fromJson(array $json): self
    {
        return new self($json['id'], $json['slug'], $json['name'], $json['role']);
    }
}
