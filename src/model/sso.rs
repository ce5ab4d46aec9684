//! Organizations' own identity providers: enterprise SSO connections and the address domains they claim.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::ApiError;

/// The provider name of a connection's sign-ins and identities: `sso:<connection id>`.
const PROVIDER_PREFIX: &str = "sso:";

/// Longest list of domains one connection claims.
const MAX_DOMAINS: usize = 100;

/// An organization's OpenID Connect provider.
#[derive(Clone, PartialEq, Eq)]
pub struct SsoConnection {
    /// Its id; its sign-ins go through provider `sso:<id>`.
    pub id: Uuid,
    /// The organization it signs in to.
    pub org_id: Uuid,
    /// The provider's issuer (discovery at `<issuer>/.well-known/openid-configuration`).
    pub issuer: String,
    /// The organization's client id there.
    pub client_id: String,
    /// The client secret, sealed under the key-encryption key and bound to the connection id.
    pub sealed_secret: Vec<u8>,
    /// Members whose address is in a verified domain sign in to the organization only through it.
    pub enforce: bool,
    /// The domains it claims, sorted.
    pub domains: Vec<SsoDomain>,
    /// When it was made.
    pub created_at: OffsetDateTime,
    /// Its last change.
    pub updated_at: OffsetDateTime,
}

impl std::fmt::Debug for SsoConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsoConnection")
            .field("id", &self.id)
            .field("org_id", &self.org_id)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("enforce", &self.enforce)
            .field("domains", &self.domains)
            .finish_non_exhaustive()
    }
}

impl SsoConnection {
    /// Its provider name.
    #[must_use]
    pub fn provider(&self) -> String {
        format!("{PROVIDER_PREFIX}{}", self.id)
    }

    /// Whether `domain` is one of its verified domains.
    #[must_use]
    pub fn vouches_for(&self, domain: &str) -> bool {
        self.domains.iter().any(|d| d.verified_at.is_some() && d.domain == domain)
    }
}

/// A domain a connection claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SsoDomain {
    /// The domain, lower-cased.
    pub domain: String,
    /// When the platform operator verified it; until then it grants nothing.
    pub verified_at: Option<OffsetDateTime>,
}

/// The connection a provider name stands for: `Some(id)` for `sso:<id>`, `None` for a platform provider.
///
/// # Errors
/// `ProviderNotFound` for `sso:` followed by anything but a connection id.
pub fn connection_of(provider: &str) -> Result<Option<Uuid>, ApiError> {
    match provider.strip_prefix(PROVIDER_PREFIX) {
        None => Ok(None),
        Some(id) => Uuid::parse_str(id).map(Some).map_err(|_| ApiError::ProviderNotFound),
    }
}

/// The domain of an address, lower-cased (addresses are stored normalized).
#[must_use]
pub fn domain_of(email: &str) -> String {
    email.rsplit_once('@').map_or("", |(_, domain)| domain).to_ascii_lowercase()
}

/// Reads the domains a client sends for a connection: at most 100 valid domain names, lower-cased, each once.
///
/// # Errors
/// `InvalidRequest` naming `domains`.
pub fn parse_domains(domains: Vec<String>) -> Result<Vec<String>, ApiError> {
    let mut domains: Vec<String> = domains.iter().map(|d| d.trim().to_ascii_lowercase()).collect();
    domains.sort();
    domains.dedup();
    let valid = |d: &String| d.contains('.') && email_address::EmailAddress::is_valid(&format!("a@{d}"));
    if domains.len() > MAX_DOMAINS || !domains.iter().all(valid) {
        return Err(ApiError::invalid_field("domains", "domains must be at most 100 valid domain names"));
    }
    Ok(domains)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_names_name_a_connection_or_none() {
        let id = Uuid::new_v4();
        assert_eq!(connection_of(&format!("sso:{id}")).unwrap(), Some(id));
        assert_eq!(connection_of("google").unwrap(), None);
        assert!(matches!(connection_of("sso:acme"), Err(ApiError::ProviderNotFound)));
    }

    #[test]
    fn domains_are_lower_cased_deduplicated_and_checked() {
        let parsed = parse_domains(vec![" Acme.COM".into(), "acme.com".into(), "b.acme.com".into()]).unwrap();
        assert_eq!(parsed, ["acme.com", "b.acme.com"]);
        for bad in ["localhost", "acme..com", "", "a b.com", "@acme.com"] {
            assert!(parse_domains(vec![bad.to_owned()]).is_err(), "{bad}");
        }
        assert!(parse_domains((0..101).map(|i| format!("d{i}.com")).collect()).is_err());
        assert_eq!(domain_of("Ann@Acme.com"), "acme.com");
    }
}
