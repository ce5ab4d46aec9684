-- Invitations: Postgres' V5__invitations in SQLite's dialect.
CREATE TABLE invitations (
    id                BLOB PRIMARY KEY,
    org_id            BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    email             TEXT NOT NULL,
    email_normalized  TEXT NOT NULL,
    role              TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    token_hash        BLOB NOT NULL UNIQUE,
    invited_by        BLOB REFERENCES users (id) ON DELETE SET NULL,
    created_at        INTEGER NOT NULL,
    expires_at        INTEGER NOT NULL,
    accepted_at       INTEGER,
    accepted_by       BLOB REFERENCES users (id) ON DELETE SET NULL,
    revoked_at        INTEGER
) STRICT;
CREATE INDEX invitations_pending_by_org ON invitations (org_id, created_at)
    WHERE accepted_at IS NULL AND revoked_at IS NULL;
