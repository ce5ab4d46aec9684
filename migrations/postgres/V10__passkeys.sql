-- Passkeys (WebAuthn credentials). A credential id names one passkey across every user.
CREATE TABLE passkeys (
    id             uuid PRIMARY KEY,
    user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id  bytea NOT NULL UNIQUE,
    name           text NOT NULL,
    -- webauthn-rs' Credential: the public key, its algorithm, flags and transports.
    credential     jsonb NOT NULL,
    -- The authenticator's signature counter and backup state, kept here so a use updates them
    -- atomically with the regression check.
    counter        bigint NOT NULL,
    backed_up      boolean NOT NULL,
    created_at     timestamptz NOT NULL,
    last_used_at   timestamptz
);
CREATE INDEX passkeys_user_id ON passkeys (user_id, created_at);
