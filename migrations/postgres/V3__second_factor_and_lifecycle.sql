-- Second factors (one TOTP factor per user and its recovery codes), spent single-use tokens, and the
-- links of the account lifecycle (email verification, password reset).

CREATE TABLE totp_factors (
    user_id        uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    -- AES-256-GCM under IDENTSPHERE_KEY_ENCRYPTION_KEY, bound to the user id (associated data).
    sealed_secret  bytea NOT NULL,
    created_at     timestamptz NOT NULL,
    -- NULL while the enrollment waits for its first code; only a confirmed factor is asked at sign-in.
    confirmed_at   timestamptz,
    -- The last time step accepted: each code is accepted once (RFC 6238 section 5.2).
    last_step      bigint
);

CREATE TABLE recovery_codes (
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- SHA-256 of the code: 80 random bits need no slow hash.
    code_hash  bytea NOT NULL,
    used_at    timestamptz,
    PRIMARY KEY (user_id, code_hash)
);

-- Single-use tokens (mfa tokens) already spent, kept until they would have expired anyway.
CREATE TABLE spent_tokens (
    jti         uuid PRIMARY KEY,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX spent_tokens_expires_at ON spent_tokens (expires_at);

-- Email-verification and password-reset links: random, stored as SHA-256, single-use, expiring.
CREATE TABLE action_tokens (
    token_hash  bytea PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose     text NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
    -- The address the link was sent to: a verification link verifies only that address.
    email       text NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX action_tokens_by_user ON action_tokens (user_id, purpose) WHERE used_at IS NULL;
