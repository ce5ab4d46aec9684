//! Organizations' own identity providers (enterprise SSO): the connections their owners manage, the
//! domains the platform operator verifies for them, discovery by address, and the enforcement that makes a
//! connection the only door into its organization for the addresses of its domains.
//!
//! A connection is an identity provider the organization controls, so it is trusted for less than a platform
//! provider: it signs in only addresses of its verified domains (it could assert any address otherwise, and
//! take over accounts of people outside the organization), and only into its own organization.

use url::Url;
use uuid::Uuid;

use super::admin::Caller;
use super::core::Service;
use super::limits::Limit;
use super::organizations::Door;
use crate::config::{ProviderConfig, ProviderKind, checked_url};
use crate::error::ApiError;
use crate::model::{OrgRef, Role, SsoConnection, SsoDomain, domain_of, parse_domains};
use crate::store::StoreError;

/// The longest client id or secret taken.
const MAX_CREDENTIAL: usize = 2048;

/// A new connection, as its owner sends it.
#[derive(Debug)]
pub struct NewConnection {
    /// The provider's issuer.
    pub issuer: String,
    /// The organization's client id there.
    pub client_id: String,
    /// Its client secret there.
    pub client_secret: String,
    /// The address domains it claims.
    pub domains: Vec<String>,
    /// Whether members of those domains must sign in through it.
    pub enforce: bool,
}

/// A change to a connection; `None` keeps a field.
#[derive(Debug, Default)]
pub struct ConnectionUpdate {
    /// The provider's issuer.
    pub issuer: Option<String>,
    /// The organization's client id there.
    pub client_id: Option<String>,
    /// Its client secret there.
    pub client_secret: Option<String>,
    /// The address domains it claims (the whole list).
    pub domains: Option<Vec<String>>,
    /// Whether members of those domains must sign in through it.
    pub enforce: Option<bool>,
}

/// Where an address signs in through its organization's SSO.
#[derive(Debug)]
pub struct Discovered {
    /// Our authorize URL for the connection: the browser goes there.
    pub authorize_url: String,
    /// The connection.
    pub connection_id: Uuid,
    /// The organization it signs in to.
    pub organization_id: Uuid,
}

impl Service {
    /// The organization and the caller's right to manage its connections: an owner's session in it, or its
    /// API key (or a platform key).
    async fn managing_sso(&self, caller: &Caller, org: &OrgRef) -> Result<Uuid, ApiError> {
        let (org, role) = self.acting_in(caller, org, Door::SessionInIt).await?;
        match caller {
            Caller::User(_) if role != Role::Owner => Err(ApiError::InsufficientRole),
            _ => Ok(org.id),
        }
    }

    /// The organization's connections.
    ///
    /// # Errors
    /// `InsufficientRole` below owner; the organization's errors.
    pub async fn sso_connections(&self, caller: &Caller, org: &OrgRef) -> Result<Vec<SsoConnection>, ApiError> {
        let org_id = self.managing_sso(caller, org).await?;
        Ok(self.stores.sso.connections(org_id).await?)
    }

    /// One of the organization's connections.
    ///
    /// # Errors
    /// `ConnectionNotFound`; `InsufficientRole` below owner; the organization's errors.
    pub async fn sso_connection(&self, caller: &Caller, org: &OrgRef, id: Uuid) -> Result<SsoConnection, ApiError> {
        let org_id = self.managing_sso(caller, org).await?;
        self.connection_in(org_id, id).await
    }

    async fn connection_in(&self, org_id: Uuid, id: Uuid) -> Result<SsoConnection, ApiError> {
        match self.stores.sso.connection(id).await? {
            Some(connection) if connection.org_id == org_id => Ok(connection),
            _ => Err(ApiError::ConnectionNotFound),
        }
    }

    /// Makes a connection; its domains start unverified.
    ///
    /// # Errors
    /// `InvalidRequest` naming the field; `InsufficientRole` below owner; the organization's errors.
    pub async fn create_sso_connection(
        &self,
        caller: &Caller,
        org: &OrgRef,
        new: NewConnection,
    ) -> Result<SsoConnection, ApiError> {
        let org_id = self.managing_sso(caller, org).await?;
        let now = self.clock.now();
        let id = Uuid::new_v4();
        let connection = SsoConnection {
            id,
            org_id,
            issuer: self.connection_issuer(&new.issuer)?,
            client_id: credential("client_id", new.client_id)?,
            sealed_secret: self.seal_client_secret(id, credential("client_secret", new.client_secret)?)?,
            enforce: new.enforce,
            domains: unverified(parse_domains(new.domains)?),
            created_at: now,
            updated_at: now,
        };
        let audit = self.audit(caller, "sso_connection.created", Some(connection.id.to_string()));
        self.stores.sso.add_connection(&connection, &audit).await?;
        self.connection_in(org_id, id).await
    }

    /// Changes a connection. A new secret replaces the old; domains kept keep their verification.
    ///
    /// # Errors
    /// `ConnectionNotFound`; `InvalidRequest` naming the field; `InsufficientRole` below owner.
    pub async fn update_sso_connection(
        &self,
        caller: &Caller,
        org: &OrgRef,
        id: Uuid,
        update: ConnectionUpdate,
    ) -> Result<SsoConnection, ApiError> {
        let org_id = self.managing_sso(caller, org).await?;
        let mut connection = self.connection_in(org_id, id).await?;
        let mut changed = Vec::new();
        if let Some(issuer) = update.issuer {
            connection.issuer = self.connection_issuer(&issuer)?;
            changed.push("issuer");
        }
        if let Some(client_id) = update.client_id {
            connection.client_id = credential("client_id", client_id)?;
            changed.push("client_id");
        }
        if let Some(secret) = update.client_secret {
            connection.sealed_secret = self.seal_client_secret(id, credential("client_secret", secret)?)?;
            changed.push("client_secret");
        }
        if let Some(domains) = update.domains {
            let kept = std::mem::take(&mut connection.domains);
            connection.domains = parse_domains(domains)?
                .into_iter()
                .map(|domain| {
                    kept.iter().find(|d| d.domain == domain).cloned().unwrap_or(SsoDomain { domain, verified_at: None })
                })
                .collect();
            changed.push("domains");
        }
        if let Some(enforce) = update.enforce {
            connection.enforce = enforce;
            changed.push(if enforce { "enforce=true" } else { "enforce=false" });
        }
        connection.updated_at = self.clock.now();
        let target = format!("{id} {}", changed.join(","));
        let audit = self.audit(caller, "sso_connection.updated", Some(target));
        if !self.stores.sso.update_connection(&connection, &audit).await? {
            return Err(ApiError::ConnectionNotFound);
        }
        self.connection_in(org_id, id).await
    }

    /// Removes a connection. Its identities stay linked but sign in nowhere: a user who had only that way in
    /// resets their password by email.
    ///
    /// # Errors
    /// `ConnectionNotFound`; `InsufficientRole` below owner; the organization's errors.
    pub async fn delete_sso_connection(&self, caller: &Caller, org: &OrgRef, id: Uuid) -> Result<(), ApiError> {
        let org_id = self.managing_sso(caller, org).await?;
        let audit = self.audit(caller, "sso_connection.deleted", Some(id.to_string()));
        if self.stores.sso.remove_connection(org_id, id, &audit).await? {
            Ok(())
        } else {
            Err(ApiError::ConnectionNotFound)
        }
    }

    /// Verifies one of a connection's domains: the platform operator's act (a platform key), because a
    /// verified domain lets the connection vouch for every address in it.
    ///
    /// # Errors
    /// `InsufficientRole` for any caller but a platform key; `ConnectionNotFound`; `InvalidRequest` for a
    /// domain the connection does not claim; `DomainTaken` when it is verified for another connection.
    pub async fn verify_sso_domain(
        &self,
        caller: &Caller,
        org: &OrgRef,
        id: Uuid,
        domain: &str,
    ) -> Result<SsoConnection, ApiError> {
        let (org, _) = self.acting_in(caller, org, Door::SessionInIt).await?;
        if !matches!(caller, Caller::Key(key) if key.org_id.is_none()) {
            return Err(ApiError::InsufficientRole);
        }
        let domain = domain.trim().to_ascii_lowercase();
        let audit = self.audit(caller, "sso_domain.verified", Some(format!("{id} {domain}")));
        match self.stores.sso.verify_domain(org.id, id, &domain, &audit).await {
            Ok(true) => self.connection_in(org.id, id).await,
            Ok(false) => match self.connection_in(org.id, id).await {
                Ok(_) => Err(ApiError::invalid_field("domain", "the connection does not claim this domain")),
                Err(err) => Err(err),
            },
            Err(StoreError::Conflict(_)) => Err(ApiError::DomainTaken),
            Err(err) => Err(err.into()),
        }
    }

    /// Where `email` signs in through SSO: the authorize URL of the connection that verified its domain.
    /// The same `ConnectionNotFound` whether or not an account has the address: discovery tells only about
    /// domains.
    ///
    /// # Errors
    /// `ConnectionNotFound`; `RedirectUriNotAllowed`; `InvalidRequest` for a malformed `code_challenge`;
    /// `RateLimited`.
    pub async fn discover_sso(
        &self,
        email: &str,
        redirect_uri: &str,
        code_challenge: Option<&str>,
        client_ip: Option<&str>,
    ) -> Result<Discovered, ApiError> {
        self.limit(Limit::SigninIp, client_ip, true).await?;
        self.allowed_redirect(redirect_uri)?;
        super::social::checked_challenge(code_challenge)?;
        let connection =
            self.stores.sso.connection_for_domain(&domain_of(email)).await?.ok_or(ApiError::ConnectionNotFound)?;
        let path = format!("{}/v1/auth/oauth/{}/authorize", self.social().public_base, connection.provider());
        let mut url = Url::parse(&path).map_err(|e| ApiError::Internal(e.into()))?;
        url.query_pairs_mut()
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("organization", &connection.org_id.to_string());
        if let Some(challenge) = code_challenge {
            url.query_pairs_mut().append_pair("code_challenge", challenge);
        }
        Ok(Discovered { authorize_url: url.into(), connection_id: connection.id, organization_id: connection.org_id })
    }

    /// The provider a connection signs in through, its secret opened.
    pub(super) async fn connection_provider(&self, id: Uuid) -> Result<(SsoConnection, ProviderConfig), ApiError> {
        let connection = self.stores.sso.connection(id).await?.ok_or(ApiError::ProviderNotFound)?;
        let secret =
            self.collaborators.sealer.open(&sealed_for(id), &connection.sealed_secret).map_err(ApiError::Internal)?;
        let provider = ProviderConfig {
            name: connection.provider(),
            kind: ProviderKind::Oidc { issuer: connection.issuer.clone(), discovery: connection.issuer.clone() },
            client_id: connection.client_id.clone(),
            client_secret: String::from_utf8(secret).map_err(|e| ApiError::Internal(e.into()))?,
            scopes: ["openid", "email", "profile"].map(str::to_owned).to_vec(),
            tenant: true,
        };
        Ok((connection, provider))
    }

    /// Refuses a sign-in into `org_id` of `email` other than through `via` when an enforcing connection of
    /// the organization verified the address's domain.
    ///
    /// # Errors
    /// `SsoRequired`; the store's errors.
    pub(super) async fn sso_gate(&self, org_id: Uuid, email: &str, via: Option<Uuid>) -> Result<(), ApiError> {
        let enforced = self.stores.sso.enforced_domains(org_id).await?;
        required_sso(&enforced, email, via)
    }

    /// `sso_gate` for a user known by id: their address is read only when the organization enforces SSO at
    /// all (almost none does), so moving a session between organizations pays one indexed read.
    ///
    /// # Errors
    /// `SsoRequired`; `TokenInvalid` for a user who is gone; the store's errors.
    pub(super) async fn sso_gate_for_user(&self, org_id: Uuid, user_id: Uuid) -> Result<(), ApiError> {
        let enforced = self.stores.sso.enforced_domains(org_id).await?;
        if enforced.is_empty() {
            return Ok(());
        }
        let user = self.stores.lifecycle.user(user_id).await?.ok_or(ApiError::TokenInvalid)?;
        required_sso(&enforced, &user.user.email, None)
    }

    /// An issuer an organization may point its connection at: `https://` on a host name. `http://` on a
    /// loopback address only while IdentSphere itself runs on one (development and tests), so an
    /// organization cannot make the server call its own loopback services.
    fn connection_issuer(&self, raw: &str) -> Result<String, ApiError> {
        let bad = |message: &str| ApiError::invalid_field("issuer", message);
        let issuer = checked_url("issuer", raw).map_err(|e| bad(&format!("the issuer {}", e.problem)))?;
        let url = Url::parse(&issuer).map_err(|_| bad("the issuer is not a URL"))?;
        let local = self.social().loopback;
        let ip_host = matches!(url.host(), Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)));
        if (url.scheme() != "https" || ip_host) && !local {
            return Err(bad("the issuer must be https:// on a host name"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("the issuer has no query or fragment"));
        }
        Ok(issuer)
    }

    fn seal_client_secret(&self, id: Uuid, secret: String) -> Result<Vec<u8>, ApiError> {
        self.collaborators.sealer.seal(&sealed_for(id), secret.as_bytes()).map_err(ApiError::Internal)
    }
}

/// `SsoRequired` when an enforcing connection verified the domain of `email` and the sign-in did not come
/// through it.
fn required_sso(enforced: &[(Uuid, String)], email: &str, via: Option<Uuid>) -> Result<(), ApiError> {
    let domain = domain_of(email);
    match enforced.iter().find(|(_, d)| *d == domain) {
        Some((connection, _)) if via != Some(*connection) => Err(ApiError::SsoRequired),
        _ => Ok(()),
    }
}

/// The associated data binding a sealed client secret to its connection.
fn sealed_for(id: Uuid) -> String {
    format!("sso:{id}")
}

fn unverified(domains: Vec<String>) -> Vec<SsoDomain> {
    domains.into_iter().map(|domain| SsoDomain { domain, verified_at: None }).collect()
}

/// A client id or secret: 1 to 2048 printable characters.
fn credential(field: &'static str, value: String) -> Result<String, ApiError> {
    let value = value.trim().to_owned();
    if value.is_empty() || value.len() > MAX_CREDENTIAL || value.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(field, "must be 1 to 2048 characters without control characters"));
    }
    Ok(value)
}
