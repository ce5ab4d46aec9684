-- The audit log: Postgres' V6__audit_events in SQLite's dialect.
CREATE TABLE audit_events (
    id          BLOB PRIMARY KEY,
    org_id      BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    at          INTEGER NOT NULL,
    actor_id    BLOB REFERENCES users (id) ON DELETE SET NULL,
    action      TEXT NOT NULL,
    target      TEXT,
    ip          TEXT
) STRICT;
CREATE INDEX audit_events_by_org ON audit_events (org_id, at DESC, id DESC);
