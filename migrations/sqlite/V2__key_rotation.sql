-- Key rotation (see migrations/postgres/V2__key_rotation.sql).
DROP INDEX signing_keys_one_active;
ALTER TABLE signing_keys DROP COLUMN retired_at;
ALTER TABLE signing_keys ADD COLUMN activates_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE signing_keys ADD COLUMN retires_at INTEGER;
ALTER TABLE signing_keys ADD COLUMN generation INTEGER NOT NULL DEFAULT 1;
UPDATE signing_keys SET activates_at = created_at;
CREATE UNIQUE INDEX signing_keys_generation ON signing_keys (algorithm, generation);
