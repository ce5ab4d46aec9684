-- Sign-in provider identities: a (provider, subject) pair names one user. `provider` is a platform provider's
-- name or `sso:<connection id>`.
CREATE TABLE identities (
    id            BLOB PRIMARY KEY,
    user_id       BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider      TEXT NOT NULL,
    subject       TEXT NOT NULL,
    -- The address the provider gave at the last sign-in, for display.
    email         TEXT,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    UNIQUE (provider, subject)
) STRICT;
CREATE INDEX identities_user_id ON identities (user_id);
