-- The admin API, as in migrations/postgres/V8__admin_api.sql.
CREATE TABLE api_keys (
    id            BLOB PRIMARY KEY,
    org_id        BLOB REFERENCES organizations (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    secret_hash   BLOB NOT NULL,
    created_by    BLOB REFERENCES users (id) ON DELETE SET NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER,
    revoked_at    INTEGER
) STRICT;
CREATE INDEX api_keys_by_org ON api_keys (org_id, created_at);

ALTER TABLE memberships ADD COLUMN disabled_at INTEGER;

ALTER TABLE audit_events ADD COLUMN actor_key_id BLOB REFERENCES api_keys (id) ON DELETE SET NULL;
