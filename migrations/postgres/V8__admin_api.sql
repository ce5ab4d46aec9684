-- The admin API: secret API keys (an organization's, or the platform's with org_id NULL), members an
-- administrator disabled, and audit entries made by a key.
CREATE TABLE api_keys (
    id            uuid PRIMARY KEY,
    -- NULL: a platform key (`identsphere admin create-key` without an organization).
    org_id        uuid REFERENCES organizations (id) ON DELETE CASCADE,
    name          text NOT NULL,
    -- SHA-256 of the secret part: the key has 256 random bits, so a fast hash is enough.
    secret_hash   bytea NOT NULL,
    created_by    uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL,
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX api_keys_by_org ON api_keys (org_id, created_at);

-- A disabled member is no member for signing in, switching or acting, until enabled again.
ALTER TABLE memberships ADD COLUMN disabled_at timestamptz;

-- Who acted: a user (actor_id) or an API key (actor_key_id).
ALTER TABLE audit_events ADD COLUMN actor_key_id uuid REFERENCES api_keys (id) ON DELETE SET NULL;
