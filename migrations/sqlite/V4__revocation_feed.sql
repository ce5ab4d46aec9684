-- The revocation feed (a Redis stream in production): every denylisting in order, for resource servers
-- that poll `GET /v1/revocations`. Rows drop out once the tokens they cover have expired.
CREATE TABLE revocation_feed (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL CHECK (kind IN ('jti', 'sid')),
    id          BLOB NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX revocation_feed_expires_at ON revocation_feed (expires_at);
