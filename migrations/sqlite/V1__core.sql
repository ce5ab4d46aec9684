-- The embedded store's schema: the same tables as Postgres (migrations/postgres), in SQLite's dialect.
-- Ids are 16-byte UUID blobs; times are Unix milliseconds. Unique constraints are named after
-- Postgres' defaults by the store when it reports a conflict.

CREATE TABLE organizations (
    id              BLOB PRIMARY KEY,
    slug            TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    signup_mode     TEXT NOT NULL DEFAULT 'closed'
                    CHECK (signup_mode IN ('closed', 'invite_only', 'open', 'domains')),
    -- JSON array of lower-cased domains.
    signup_domains  TEXT NOT NULL DEFAULT '[]',
    disabled_at     INTEGER,
    created_at      INTEGER NOT NULL
) STRICT;

CREATE TABLE users (
    id                BLOB PRIMARY KEY,
    email             TEXT NOT NULL,
    email_normalized  TEXT NOT NULL UNIQUE,
    email_verified    INTEGER NOT NULL DEFAULT 0,
    display_name      TEXT,
    disabled_at       INTEGER,
    created_at        INTEGER NOT NULL
) STRICT;

CREATE TABLE password_credentials (
    user_id     BLOB PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    hash        TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE memberships (
    user_id       BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    org_id        BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    role          TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, org_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX memberships_org_id ON memberships (org_id);

CREATE TABLE session_families (
    id                 BLOB PRIMARY KEY,
    org_id             BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id            BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    aal                TEXT NOT NULL CHECK (aal IN ('aal1', 'aal2')),
    auth_method        TEXT NOT NULL CHECK (auth_method IN ('password', 'passkey', 'social_oauth')),
    auth_time          INTEGER NOT NULL,
    created_at         INTEGER NOT NULL,
    last_used_at       INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    user_agent         TEXT,
    ip                 TEXT,
    refresh_jti        BLOB NOT NULL,
    refresh_issued_at  INTEGER NOT NULL,
    previous_jti       BLOB,
    previous_spent_at  INTEGER,
    rotations          INTEGER NOT NULL DEFAULT 0,
    revoked_at         INTEGER,
    revoked_reason     TEXT CHECK (revoked_reason IN ('logout', 'logout_others', 'logout_global', 'refresh_token_reused')),
    CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL))
) STRICT;
CREATE INDEX session_families_live_by_user ON session_families (user_id) WHERE revoked_at IS NULL;

CREATE TABLE signing_keys (
    kid             TEXT PRIMARY KEY,
    algorithm       TEXT NOT NULL CHECK (algorithm IN ('RS256', 'HS256')),
    sealed_private  BLOB NOT NULL,
    created_at      INTEGER NOT NULL,
    retired_at      INTEGER
) STRICT;
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (algorithm) WHERE retired_at IS NULL;

-- What Redis holds in production: denied access tokens (kind 'jti') and families (kind 'sid'), each
-- until the last token it covers expires. Kept in the same file, so revocations survive a restart.
CREATE TABLE denylist (
    kind        TEXT NOT NULL CHECK (kind IN ('jti', 'sid')),
    id          BLOB NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (kind, id)
) STRICT, WITHOUT ROWID;
CREATE INDEX denylist_expires_at ON denylist (expires_at);
