-- The denylist is rebuilt from the families revoked within the last access-token lifetime when Redis lost
-- its data: find them without reading every family.
CREATE INDEX session_families_recently_revoked ON session_families (revoked_at) WHERE revoked_at IS NOT NULL;
