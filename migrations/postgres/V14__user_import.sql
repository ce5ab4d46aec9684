-- User import (docs/migration.md): the id a member had in the system they were imported from, per
-- organization (two organizations' systems may use the same ids), searchable by the admin API.
ALTER TABLE memberships ADD COLUMN external_id text;
CREATE INDEX memberships_external_id ON memberships (org_id, external_id) WHERE external_id IS NOT NULL;

-- password_credentials.hash now also holds an imported hash (bcrypt, scrypt, PBKDF2, SHA-crypt, Firebase
-- scrypt) until its first successful sign-in replaces it with Argon2id.
COMMENT ON COLUMN password_credentials.hash IS
    'PHC string (argon2id), or an imported hash until its first successful sign-in (src/auth/imported.rs)';
