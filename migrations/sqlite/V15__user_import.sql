-- User import, as in migrations/postgres/V14__user_import.sql.
ALTER TABLE memberships ADD COLUMN external_id TEXT;
CREATE INDEX memberships_external_id ON memberships (org_id, external_id) WHERE external_id IS NOT NULL;
