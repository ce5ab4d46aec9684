-- Per-organization policy beyond sign-up, as in migrations/postgres/V7__organization_policy.sql.
-- `auth_methods` is a JSON array; `rate_limits` a JSON object.
ALTER TABLE organizations ADD COLUMN mfa_required INTEGER NOT NULL DEFAULT 0;
ALTER TABLE organizations ADD COLUMN auth_methods TEXT NOT NULL DEFAULT '["password","passkey","social_oauth"]';
ALTER TABLE organizations ADD COLUMN access_token_ttl INTEGER CHECK (access_token_ttl > 0);
ALTER TABLE organizations ADD COLUMN refresh_token_ttl INTEGER CHECK (refresh_token_ttl > 0);
ALTER TABLE organizations ADD COLUMN rate_limits TEXT NOT NULL DEFAULT '{}';
