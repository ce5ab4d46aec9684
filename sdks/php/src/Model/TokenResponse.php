<?php

declare(strict_types=1);

namespace IdentSphere\Model;

/**
 * A completed sign-in, refresh or step-up: the token pair, the user and the session. `recoveryCodes` only
 * when confirming a second factor. var_dump() and print_r() never show a token.
 */
final readonly class TokenResponse
{
    /** @param ?list<string> $recoveryCodes */
    public function __construct(
        public string $accessToken,
        public string $refreshToken,
        public string $tokenType,
        public int $expiresIn,
        public User $user,
        public Session $session,
        public ?PendingOrganization $pendingOrganization = null,
        public ?array $recoveryCodes = null,
    ) {
    }

    /** @param array<string, mixed> $json */
    public static function fromJson(array $json): self
    {
        return new self(
            $json['access_token'],
            $json['refresh_token'],
            $json['token_type'],
            $json['expires_in'],
            User::fromJson($json['user']),
            Session::fromJson($json['session']),
            isset($json['pending_organization']) ? PendingOrganization::fromJson($json['pending_organization']) : null,
            $json['recovery_codes'] ?? null,
        );
    }

    /** A completed sign-in: false. See MfaRequired. */
    public function mfaRequired(): bool
    {
        return false;
    }

    /** @return array<string, mixed> */
    public function __debugInfo(): array
    {
        return ['accessToken' => '[redacted]', 'refreshToken' => '[redacted]', 'recoveryCodes' => $this->recoveryCodes === null ? null : '[redacted]']
            + get_object_vars($this);
    }
}
