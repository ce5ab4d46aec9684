-- Per-organization policy beyond sign-up: a required second factor, the sign-in methods allowed, token
-- lifetimes (NULL: the server's; the server's bounds still apply at use) and extra rate limits.
-- The refresh compare-and-set checks `mfa_required` and `auth_methods` itself, so a policy change stops
-- refreshes at once on every replica.
ALTER TABLE organizations
    ADD COLUMN mfa_required       boolean NOT NULL DEFAULT false,
    ADD COLUMN auth_methods       text[] NOT NULL DEFAULT '{password,passkey,social_oauth}'
                                  CHECK (auth_methods <@ '{password,passkey,social_oauth}' AND cardinality(auth_methods) > 0),
    ADD COLUMN access_token_ttl   integer CHECK (access_token_ttl > 0),
    ADD COLUMN refresh_token_ttl  integer CHECK (refresh_token_ttl > 0),
    -- {"signin_ip": {"count": 5, "period": 60}, ...}: counted on top of the server-wide limits.
    ADD COLUMN rate_limits        jsonb NOT NULL DEFAULT '{}';
