-- Organizations' own identity providers (enterprise SSO). The client secret is sealed under the
-- key-encryption key, bound to the connection id: a copied row opens nowhere else.
CREATE TABLE sso_connections (
    id             BLOB PRIMARY KEY,
    org_id         BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    issuer         TEXT NOT NULL,
    client_id      TEXT NOT NULL,
    sealed_secret  BLOB NOT NULL,
    -- Members whose address is in a verified domain sign in to the organization only through it.
    enforce        INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
) STRICT;
CREATE INDEX sso_connections_org_id ON sso_connections (org_id);

-- The address domains a connection claims. A domain counts (discovery, enforcement, addresses the connection
-- may vouch for) only once the platform operator verified it, and is verified for one connection at most.
CREATE TABLE sso_domains (
    connection_id  BLOB NOT NULL REFERENCES sso_connections (id) ON DELETE CASCADE,
    domain         TEXT NOT NULL,
    verified_at    INTEGER,
    PRIMARY KEY (connection_id, domain)
) STRICT;
CREATE UNIQUE INDEX sso_domains_verified ON sso_domains (domain) WHERE verified_at IS NOT NULL;
