-- Key rotation: a key is published from its creation, signs from `activates_at`, and stays published
-- until `retires_at` (unset while it is the newest). `generation` numbers the keys of one algorithm, so
-- replicas racing to rotate store one next key between them.
ALTER TABLE signing_keys
    ADD COLUMN activates_at timestamptz,
    ADD COLUMN retires_at timestamptz,
    ADD COLUMN generation bigint;
UPDATE signing_keys SET activates_at = created_at, generation = 1;
ALTER TABLE signing_keys
    ALTER COLUMN activates_at SET NOT NULL,
    ALTER COLUMN generation SET NOT NULL;
DROP INDEX signing_keys_one_active;
ALTER TABLE signing_keys DROP COLUMN retired_at;
CREATE UNIQUE INDEX signing_keys_generation ON signing_keys (algorithm, generation);
