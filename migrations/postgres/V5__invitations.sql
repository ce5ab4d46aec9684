-- Invitations into an organization: bound to one email, single-use, expiring, revocable. The token in the
-- mailed link is stored as SHA-256 only.
CREATE TABLE invitations (
    id                uuid PRIMARY KEY,
    org_id            uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    -- As typed, for display; lower-cased, for the binding.
    email             text NOT NULL,
    email_normalized  text NOT NULL,
    role              text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    token_hash        bytea NOT NULL UNIQUE,
    invited_by        uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at        timestamptz NOT NULL,
    expires_at        timestamptz NOT NULL,
    accepted_at       timestamptz,
    accepted_by       uuid REFERENCES users (id) ON DELETE SET NULL,
    revoked_at        timestamptz
);
CREATE INDEX invitations_pending_by_org ON invitations (org_id, created_at)
    WHERE accepted_at IS NULL AND revoked_at IS NULL;
