<?php

declare(strict_types=1);

namespace IdentSphere\Model;

/**
 * The other outcome of `login` (and `register` into an organization that requires a second factor): the
 * password was right and a second factor is due. Complete it with Client::verifyMfa() and `mfaToken`.
 * `enrollmentRequired`: the user has no factor yet and must enroll one with the mfa token.
 */
final readonly class MfaRequired
{
    /** @param list<string> $factors */
    public function __construct(
        public string $mfaToken,
        public array $factors,
        public bool $enrollmentRequired,
    ) {
    }

    /** @param array<string, mixed> $json */
    public static function fromJson(array $json): self
    {
        return new self($json['mfa_token'], $json['factors'], $json['enrollment_required']);
    }

    public function mfaRequired(): bool
    {
        return true;
    }

    /** @return array<string, mixed> */
    public function __debugInfo(): array
    {
        return ['mfaToken' => '[redacted]'] + get_object_vars($this);
    }
}
