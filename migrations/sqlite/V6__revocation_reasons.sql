-- The revocation reasons of Postgres' V4__revocation_reasons. SQLite cannot change a CHECK constraint:
-- the table is rebuilt with the new one, rows and indexes carried over.
CREATE TABLE session_families_next (
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
    revoked_reason     TEXT CHECK (revoked_reason IN (
                           'logout', 'logout_others', 'logout_global', 'refresh_token_reused',
                           'password_reset', 'password_changed', 'membership_ended')),
    CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL))
) STRICT;
INSERT INTO session_families_next SELECT * FROM session_families;
DROP TABLE session_families;
ALTER TABLE session_families_next RENAME TO session_families;
CREATE INDEX session_families_live_by_user ON session_families (user_id) WHERE revoked_at IS NULL;
CREATE INDEX session_families_by_user ON session_families (user_id, created_at DESC);
