//! The platform's sign-in providers: one set of variables per provider name, `IDENTSPHERE_OAUTH_<NAME>_*`.
//!
//! `GOOGLE`, `MICROSOFT` and `GITHUB` are presets (their issuers and endpoints are known); any other name is
//! a generic OpenID Connect provider found by discovery at its issuer.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::net::IpAddr;

use actix_web::http::Uri;

use super::values::ConfigError;

const PREFIX: &str = "IDENTSPHERE_OAUTH_";

/// How IdentSphere talks to a provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProviderKind {
    /// OpenID Connect: discovery, the authorization code flow with PKCE, a validated ID token.
    Oidc {
        /// The issuer, exactly as the ID tokens carry it; `{tenantid}` stands for the token's `tid` claim
        /// (Microsoft's multi-tenant issuers).
        issuer: String,
        /// Where the discovery document is: the issuer, or Microsoft's `common`/tenant authority.
        discovery: String,
    },
    /// GitHub: OAuth 2 without OpenID Connect; the user from `/user`, the verified primary address from
    /// `/user/emails`.
    GitHub {
        /// `https://github.com`, or a GitHub Enterprise Server.
        web: String,
        /// `https://api.github.com`, or the server's `/api/v3`.
        api: String,
    },
}

/// A platform provider.
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderConfig {
    /// The lower-cased name: the path segment (`/v1/auth/oauth/google/authorize`).
    pub name: String,
    /// How to talk to it.
    pub kind: ProviderKind,
    /// Our client id there.
    pub client_id: String,
    /// Our client secret there.
    pub client_secret: String,
    /// The scopes asked for.
    pub scopes: Vec<String>,
    /// An organization's connection rather than the operator's provider: its URLs must reach public
    /// addresses only.
    pub tenant: bool,
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// The providers named by the variables in `names`, each read through `get`.
pub(super) fn providers(
    names: &BTreeSet<String>,
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Vec<ProviderConfig>, ConfigError> {
    let provider_names: BTreeSet<&str> = names
        .iter()
        .filter_map(|var| var.strip_prefix(PREFIX))
        .filter_map(|rest| {
            ["_ISSUER", "_CLIENT_ID", "_CLIENT_SECRET", "_SCOPES"].iter().find_map(|suffix| rest.strip_suffix(suffix))
        })
        .collect();
    provider_names.into_iter().map(|name| provider(name, get)).collect()
}

fn provider(name: &str, get: &impl Fn(&str) -> Option<String>) -> Result<ProviderConfig, ConfigError> {
    let var = |suffix: &str| format!("{PREFIX}{name}{suffix}");
    let (id_var, secret_var, issuer_var) = (var("_CLIENT_ID"), var("_CLIENT_SECRET"), var("_ISSUER"));
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(ConfigError { var: id_var.into(), problem: "a provider name is letters, digits and _".to_owned() });
    }
    let required = |var: String| match get(&var) {
        Some(value) => Ok(value.trim().to_owned()),
        None => Err(ConfigError { var: var.into(), problem: "is required".to_owned() }),
    };
    let client_id = required(id_var)?;
    let client_secret = required(secret_var)?;
    let issuer = get(&issuer_var).map(|raw| checked_url(issuer_var.clone(), &raw)).transpose()?;
    let (kind, default_scopes) = match (name, issuer) {
        ("GITHUB", base) => {
            let kind = match base {
                None => ProviderKind::GitHub {
                    web: "https://github.com".to_owned(),
                    api: "https://api.github.com".to_owned(),
                },
                // GitHub Enterprise Server: the same paths under its host, the API under `/api/v3`.
                Some(base) => ProviderKind::GitHub { api: format!("{base}/api/v3"), web: base },
            };
            (kind, "read:user user:email")
        }
        ("GOOGLE", issuer) => {
            let issuer = issuer.unwrap_or_else(|| "https://accounts.google.com".to_owned());
            (ProviderKind::Oidc { discovery: issuer.clone(), issuer }, "openid email profile")
        }
        ("MICROSOFT", authority) => {
            // Every Entra ID authority (`common`, `organizations`, a tenant) publishes the issuer of the
            // tenant that signs in: `https://login.microsoftonline.com/{tenantid}/v2.0`.
            let discovery = authority.unwrap_or_else(|| "https://login.microsoftonline.com/common/v2.0".to_owned());
            let issuer = match discovery.rsplit_once('/') {
                Some((base, "v2.0")) => {
                    let host = base.rsplit_once('/').map_or(base, |(host, _)| host);
                    format!("{host}/{{tenantid}}/v2.0")
                }
                _ => discovery.clone(),
            };
            (ProviderKind::Oidc { issuer, discovery }, "openid email profile")
        }
        (_, Some(issuer)) => (ProviderKind::Oidc { discovery: issuer.clone(), issuer }, "openid email profile"),
        (_, None) => {
            return Err(ConfigError {
                var: issuer_var.into(),
                problem: "is required for a provider other than GOOGLE, MICROSOFT and GITHUB".to_owned(),
            });
        }
    };
    let scopes = get(&var("_SCOPES")).unwrap_or_else(|| default_scopes.to_owned());
    let mut scopes: Vec<String> = scopes.split([' ', ',']).filter(|s| !s.is_empty()).map(str::to_owned).collect();
    if matches!(kind, ProviderKind::Oidc { .. }) && !scopes.iter().any(|s| s == "openid") {
        scopes.insert(0, "openid".to_owned());
    }
    Ok(ProviderConfig { name: name.to_ascii_lowercase(), kind, client_id, client_secret, scopes, tenant: false })
}

/// An issuer or base URL without a trailing slash: `https://`, or `http://` on a loopback address only
/// (development and tests), as the cookies' `Secure` rule.
pub(crate) fn checked_url(var: impl Into<Cow<'static, str>>, raw: &str) -> Result<String, ConfigError> {
    let url = raw.trim().trim_end_matches('/').to_owned();
    let var = var.into();
    let bad = |problem: &str| ConfigError { var: var.clone(), problem: problem.to_owned() };
    let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
    let host = uri.host().ok_or_else(|| bad("needs a host"))?;
    let loopback =
        host == "localhost" || host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    match uri.scheme_str() {
        Some("https") => Ok(url),
        Some("http") if loopback => Ok(url),
        _ => Err(bad("must be https:// (http:// only on a loopback address)")),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<Vec<ProviderConfig>, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let names = map.keys().cloned().collect();
        providers(&names, &|var: &str| map.get(var).cloned())
    }

    #[test]
    fn presets_fill_in_their_endpoints_and_a_generic_provider_needs_its_issuer() {
        let got = read(&[
            ("IDENTSPHERE_OAUTH_GOOGLE_CLIENT_ID", "g-id"),
            ("IDENTSPHERE_OAUTH_GOOGLE_CLIENT_SECRET", "g-secret"),
            ("IDENTSPHERE_OAUTH_GITHUB_CLIENT_ID", "gh-id"),
            ("IDENTSPHERE_OAUTH_GITHUB_CLIENT_SECRET", "gh-secret"),
            ("IDENTSPHERE_OAUTH_MICROSOFT_CLIENT_ID", "m-id"),
            ("IDENTSPHERE_OAUTH_MICROSOFT_CLIENT_SECRET", "m-secret"),
            ("IDENTSPHERE_OAUTH_ACME_IDP_ISSUER", "https://idp.acme.test/"),
            ("IDENTSPHERE_OAUTH_ACME_IDP_CLIENT_ID", "a-id"),
            ("IDENTSPHERE_OAUTH_ACME_IDP_CLIENT_SECRET", "a-secret"),
            ("IDENTSPHERE_OAUTH_ACME_IDP_SCOPES", "email profile"),
        ])
        .unwrap();
        let by_name: HashMap<&str, &ProviderConfig> = got.iter().map(|p| (p.name.as_str(), p)).collect();
        assert_eq!(by_name.len(), 4);
        assert_eq!(
            by_name["google"].kind,
            ProviderKind::Oidc {
                issuer: "https://accounts.google.com".into(),
                discovery: "https://accounts.google.com".into()
            }
        );
        assert_eq!(
            by_name["microsoft"].kind,
            ProviderKind::Oidc {
                issuer: "https://login.microsoftonline.com/{tenantid}/v2.0".into(),
                discovery: "https://login.microsoftonline.com/common/v2.0".into()
            }
        );
        assert_eq!(
            by_name["github"].kind,
            ProviderKind::GitHub { web: "https://github.com".into(), api: "https://api.github.com".into() }
        );
        assert_eq!(by_name["acme_idp"].scopes, ["openid", "email", "profile"]);
        assert!(!format!("{:?}", by_name["acme_idp"]).contains("a-secret"), "the secret is never printed");
    }

    #[test]
    fn a_bad_provider_stops_the_start_naming_its_variable() {
        let err = read(&[("IDENTSPHERE_OAUTH_ACME_CLIENT_ID", "x"), ("IDENTSPHERE_OAUTH_ACME_CLIENT_SECRET", "y")])
            .unwrap_err();
        assert_eq!(err.var, "IDENTSPHERE_OAUTH_ACME_ISSUER");
        let err = read(&[("IDENTSPHERE_OAUTH_GOOGLE_CLIENT_ID", "x")]).unwrap_err();
        assert_eq!(err.var, "IDENTSPHERE_OAUTH_GOOGLE_CLIENT_SECRET");
        for issuer in ["http://idp.acme.test", "ftp://idp", "not a url"] {
            let err = read(&[
                ("IDENTSPHERE_OAUTH_ACME_ISSUER", issuer),
                ("IDENTSPHERE_OAUTH_ACME_CLIENT_ID", "x"),
                ("IDENTSPHERE_OAUTH_ACME_CLIENT_SECRET", "y"),
            ])
            .unwrap_err();
            assert_eq!(err.var, "IDENTSPHERE_OAUTH_ACME_ISSUER", "{issuer}");
        }
        let local = read(&[
            ("IDENTSPHERE_OAUTH_DEV_ISSUER", "http://127.0.0.1:9000"),
            ("IDENTSPHERE_OAUTH_DEV_CLIENT_ID", "x"),
            ("IDENTSPHERE_OAUTH_DEV_CLIENT_SECRET", "y"),
        ]);
        assert!(local.is_ok(), "{local:?}");
    }
}
