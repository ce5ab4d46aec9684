<?php

declare(strict_types=1);

namespace IdentSphere\Model;

/** At a sign-up into an organization that takes the address's domain: the one joined once it is verified. */
final readonly class PendingOrganization
{
    public function __construct(
        public string $id,
        public string $slug,
        public string $name,
        public string $joinsWhen,
    ) {
    }

    /** @param array<string, mixed> $json */
    public static function fromJson(array $json): self
    {
        return new self($json['id'], $json['slug'], $json['name'], $json['joins_when']);
    }
}
