-- The audit log of organization management: who did what, when, from where. Written in the same
-- transaction as the change it records; kept with the organization.
CREATE TABLE audit_events (
    id          uuid PRIMARY KEY,
    org_id      uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL,
    -- The user who acted (NULL once that user is deleted).
    actor_id    uuid REFERENCES users (id) ON DELETE SET NULL,
    action      text NOT NULL,
    -- What the action was on: a user id, an invitation id, the fields changed.
    target      text,
    ip          text
);
CREATE INDEX audit_events_by_org ON audit_events (org_id, at DESC, id DESC);
