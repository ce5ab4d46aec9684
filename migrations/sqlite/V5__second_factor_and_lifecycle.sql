-- Second factors, spent single-use tokens and lifecycle links: the same tables as Postgres'
-- V3__second_factor_and_lifecycle, in SQLite's dialect (UUID blobs, Unix milliseconds).

CREATE TABLE totp_factors (
    user_id        BLOB PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    sealed_secret  BLOB NOT NULL,
    created_at     INTEGER NOT NULL,
    confirmed_at   INTEGER,
    last_step      INTEGER
) STRICT;

CREATE TABLE recovery_codes (
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  BLOB NOT NULL,
    used_at    INTEGER,
    PRIMARY KEY (user_id, code_hash)
) STRICT, WITHOUT ROWID;

CREATE TABLE spent_tokens (
    jti         BLOB PRIMARY KEY,
    expires_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX spent_tokens_expires_at ON spent_tokens (expires_at);

CREATE TABLE action_tokens (
    token_hash  BLOB PRIMARY KEY,
    user_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose     TEXT NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
    email       TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
) STRICT;
CREATE INDEX action_tokens_by_user ON action_tokens (user_id, purpose) WHERE used_at IS NULL;
