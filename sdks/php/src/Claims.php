<?php

declare(strict_types=1);

namespace IdentSphere;

/**
 * The verified claims of an access token, as the integration page lists them. `sub`, `exp`, `iat` and
 * `typ` are always there; the others may be null (a token from a newer or older server may lack them).
 * Times are Unix seconds; `aal` is `aal1` or `aal2`; `authMethod` `password`, `passkey` or `social_oauth`.
 */
final readonly class Claims
{
    public function __construct(
        public string $sub,
        public int $exp,
        public int $iat,
        public string $typ,
        public ?string $org = null,
        public ?string $iss = null,
        public ?string $email = null,
        public ?string $jti = null,
        public ?string $sid = null,
        public ?string $aal = null,
        public ?int $authTime = null,
        public ?string $authMethod = null,
    ) {
    }

    /**
     * The claims of a token's decoded payload, or null when a claim has the wrong type (unknown claims are
     * left out).
     *
     * @param array<string, mixed> $payload
     */
    public static function fromPayload(array $payload): ?self
    {
        $string = fn (string $name): ?string => is_string($payload[$name] ?? null) ? $payload[$name] : null;
        $int = fn (string $name): ?int => is_int($payload[$name] ?? null) ? $payload[$name] : null;
        [$sub, $exp, $iat, $typ] = [$string('sub'), $int('exp'), $int('iat'), $string('typ')];
        if ($sub === null || $sub === '' || $exp === null || $iat === null || $typ === null) {
            return null;
        }
        return new self($sub, $exp, $iat, $typ, $string('org'), $string('iss'), $string('email'), $string('jti'),
            $string('sid'), $string('aal'), $int('auth_time'), $string('auth_method'));
    }

    /** Whether a second factor was verified in this session. */
    public function isAal2(): bool
    {
        return $this->aal === 'aal2';
    }

    /**
     * The claims as the token carries them (snake_case names, nulls left out): for JSON answers and logs.
     *
     * @return array<string, string|int>
     */
    public function toArray(): array
    {
        return array_filter([
            'sub' => $this->sub, 'org' => $this->org, 'iss' => $this->iss, 'exp' => $this->exp, 'iat' => $this->iat,
            'typ' => $this->typ, 'email' => $this->email, 'jti' => $this->jti, 'sid' => $this->sid, 'aal' => $this->aal,
            'auth_time' => $this->authTime, 'auth_method' => $this->authMethod,
        ], fn ($value) => $value !== null);
    }
}
