-- Sign-in provider identities: a (provider, subject) pair names one user. `provider` is a platform provider's
-- name or `sso:<connection id>`.
CREATE TABLE identities (
    id            uuid PRIMARY KEY,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider      text NOT NULL,
    subject       text NOT NULL,
    -- The address the provider gave at the last sign-in, for display.
    email         text,
    created_at    timestamptz NOT NULL,
    last_used_at  timestamptz,
    UNIQUE (provider, subject)
);
CREATE INDEX identities_user_id ON identities (user_id);
