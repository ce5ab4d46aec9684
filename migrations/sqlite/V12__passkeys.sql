-- Passkeys (WebAuthn credentials). A credential id names one passkey across every user.
CREATE TABLE passkeys (
    id             BLOB PRIMARY KEY,
    user_id        BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id  BLOB NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    -- webauthn-rs' Credential as JSON: the public key, its algorithm, flags and transports.
    credential     TEXT NOT NULL,
    -- The signature counter and backup state, updated atomically with the regression check.
    counter        INTEGER NOT NULL,
    backed_up      INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    last_used_at   INTEGER
) STRICT;
CREATE INDEX passkeys_user_id ON passkeys (user_id, created_at);

-- WebAuthn ceremonies in flight: five minutes, taken once.
CREATE TABLE ceremonies (
    id          BLOB PRIMARY KEY,
    ceremony    BLOB NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX ceremonies_expires_at ON ceremonies (expires_at);
