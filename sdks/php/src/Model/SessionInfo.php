<?php

declare(strict_types=1);

namespace IdentSphere\Model;

/** What IdentSphere says of the session of an access token, now (Client::session). */
final readonly class SessionInfo
{
    /** @param list<Factor> $factors */
    public function __construct(
        public User $user,
        public Session $session,
        public Organization $organization,
        public array $factors,
        public int $recoveryCodesLeft,
    ) {
    }

    /** @param array<string, mixed> $json */
    public static function fromJson(array $json): self
    {
        return new self(
            User::fromJson($json['user']),
            Session::fromJson($json['session']),
            Organization::fromJson($json['organization']),
            array_map(Factor::fromJson(...), $json['factors']),
            $json['recovery_codes_left'],
        );
    }
}
