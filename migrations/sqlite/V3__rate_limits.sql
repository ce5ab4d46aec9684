-- Rate-limit counters (what Redis holds in production): one GCRA theoretical arrival time per key, in
-- Unix milliseconds. A counter in the past means "a full burst allowed", like no counter at all.
CREATE TABLE rate_limits (
    key  TEXT PRIMARY KEY,
    tat  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX rate_limits_tat ON rate_limits (tat);
