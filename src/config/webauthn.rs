//! Where passkeys are valid: the WebAuthn relying party (`IDENTSPHERE_WEBAUTHN_RP_ID`, `_RP_NAME`) and the
//! origins allowed to use it (`IDENTSPHERE_WEBAUTHN_ORIGINS`).
//!
//! The anchors' most reported passkey bug is a relying-party ID that browsers refuse, found only when the
//! first user tries: here a bad one stops the start with one line naming the variable.

use std::net::IpAddr;

use actix_web::http::Uri;

use super::values::{ConfigError, PublicUrl};

const RP_ID: &str = "IDENTSPHERE_WEBAUTHN_RP_ID";
const ORIGINS: &str = "IDENTSPHERE_WEBAUTHN_ORIGINS";

/// The relying party passkeys are bound to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebauthnConfig {
    /// The RP ID: a domain every origin is on. Passkeys registered under it work only under it.
    pub rp_id: String,
    /// The name authenticators show.
    pub rp_name: String,
    /// `scheme://host[:port]` of the pages allowed to run a ceremony.
    pub origins: Vec<String>,
}

/// Whether passkeys are on, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Passkeys {
    /// Passkeys work for this relying party.
    On(WebauthnConfig),
    /// Off, for the reason start-up logs: the public base URL has no domain name and no RP ID was set.
    Off(&'static str),
}

/// Reads the WebAuthn variables. Unset, the RP ID is the public base URL's host and the origins are its
/// origin plus those of `allowed_origins` the RP ID covers (browsers refuse the others anyway). A public
/// base URL on an IP address leaves passkeys off rather than failing the start: browsers never run
/// WebAuthn for an IP address, and `http://127.0.0.1:8080` is the default.
pub(super) fn passkeys(
    get: &impl Fn(&str) -> Option<String>,
    public_url: &PublicUrl,
    allowed_origins: &[String],
) -> Result<Passkeys, ConfigError> {
    let rp_name = get("IDENTSPHERE_WEBAUTHN_RP_NAME").map_or_else(|| "IdentSphere".to_owned(), |n| n.trim().to_owned());
    let explicit_rp = get(RP_ID).map(|raw| raw.trim().to_ascii_lowercase());
    let rp_id = match explicit_rp {
        Some(rp_id) => {
            check_rp_id(&rp_id).map_err(|problem| ConfigError { var: RP_ID.into(), problem })?;
            rp_id
        }
        None => {
            let host = host_of(&public_url.origin);
            if host.parse::<IpAddr>().is_ok() {
                return Ok(Passkeys::Off(
                    "the public base URL's host is an IP address: set IDENTSPHERE_WEBAUTHN_RP_ID to a domain",
                ));
            }
            check_rp_id(&host).map_err(|problem| ConfigError { var: "IDENTSPHERE_PUBLIC_BASE_URL".into(), problem })?;
            host
        }
    };
    let origins = match get(ORIGINS) {
        Some(raw) => {
            let origins = raw
                .split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(|o| PublicUrl::parse(ORIGINS, o).map(|u| u.origin))
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(origin) = origins.iter().find(|o| !usable(o, &rp_id)) {
                return Err(ConfigError {
                    var: ORIGINS.into(),
                    problem: format!(
                        "{origin} cannot use RP ID {rp_id}: an origin must be https:// (or http://localhost) on {rp_id} or a subdomain of it"
                    ),
                });
            }
            origins
        }
        None => {
            std::iter::once(&public_url.origin).chain(allowed_origins).filter(|o| usable(o, &rp_id)).cloned().collect()
        }
    };
    if origins.is_empty() {
        return Err(ConfigError {
            var: RP_ID.into(),
            problem: format!(
                "no origin can use RP ID {rp_id}: set IDENTSPHERE_WEBAUTHN_ORIGINS to https:// origins on {rp_id}"
            ),
        });
    }
    Ok(Passkeys::On(WebauthnConfig { rp_id, rp_name, origins }))
}

/// A domain name browsers accept as an RP ID: not an IP address, lowercase labels of letters, digits and
/// `-`, and more than one label (a single one like `com` is a public suffix) unless it is `localhost`. The
/// full public-suffix list is not checked: a registrable suffix of every origin, which the origins check
/// ensures, rules out the mistakes that happen.
fn check_rp_id(rp_id: &str) -> Result<(), String> {
    if rp_id.trim_matches(['[', ']']).parse::<IpAddr>().is_ok() {
        return Err(format!("{rp_id} is an IP address: passkeys need a domain name"));
    }
    let labels: Vec<&str> = rp_id.split('.').collect();
    let label_ok = |l: &&str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !labels.iter().all(label_ok) {
        return Err(format!("{rp_id} is not a domain name (no scheme, port or path: just the host)"));
    }
    if labels.len() == 1 && rp_id != "localhost" {
        return Err(format!("{rp_id} is a top-level domain: use the site's own domain"));
    }
    Ok(())
}

/// Whether a page at `origin` may run a ceremony for `rp_id`: its host is the RP ID or under it, and it
/// is a secure context (`https://`, or `http://` on localhost).
fn usable(origin: &str, rp_id: &str) -> bool {
    let host = host_of(origin);
    let on_rp = host == rp_id || host.strip_suffix(rp_id).is_some_and(|rest| rest.ends_with('.'));
    let secure = origin.starts_with("https://") || host == "localhost" || host.ends_with(".localhost");
    on_rp && secure
}

/// The host of `scheme://host[:port]`, without brackets or port.
fn host_of(origin: &str) -> String {
    origin
        .parse::<Uri>()
        .ok()
        .and_then(|uri| uri.host().map(|h| h.trim_matches(['[', ']']).to_ascii_lowercase()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(vars: &[(&str, &str)], public: &str, allowed: &[&str]) -> Result<Passkeys, ConfigError> {
        let get = |var: &str| vars.iter().find(|(k, _)| *k == var).map(|(_, v)| (*v).to_owned());
        let public_url = PublicUrl::parse("IDENTSPHERE_PUBLIC_BASE_URL", public).unwrap();
        let allowed: Vec<String> = allowed.iter().map(|o| (*o).to_owned()).collect();
        passkeys(&get, &public_url, &allowed)
    }

    fn on(rp_id: &str, origins: &[&str]) -> Passkeys {
        Passkeys::On(WebauthnConfig {
            rp_id: rp_id.to_owned(),
            rp_name: "IdentSphere".to_owned(),
            origins: origins.iter().map(|o| (*o).to_owned()).collect(),
        })
    }

    #[test]
    fn defaults_follow_the_public_base_url() {
        let got = read(&[], "https://auth.example.com", &["https://app.example.com", "https://other.org"]);
        assert_eq!(got.unwrap(), on("auth.example.com", &["https://auth.example.com"]));
        let got = read(&[(RP_ID, "Example.com")], "https://auth.example.com", &["https://app.example.com"]);
        assert_eq!(got.unwrap(), on("example.com", &["https://auth.example.com", "https://app.example.com"]));
        let got = read(&[], "http://localhost:8080", &[]);
        assert_eq!(got.unwrap(), on("localhost", &["http://localhost:8080"]));
    }

    #[test]
    fn an_ip_address_turns_passkeys_off_unless_asked_for() {
        assert!(matches!(read(&[], "http://127.0.0.1:8080", &[]).unwrap(), Passkeys::Off(_)));
        assert!(matches!(read(&[], "http://[::1]:8080", &[]).unwrap(), Passkeys::Off(_)));
        let err = read(&[(RP_ID, "10.0.0.5")], "https://10.0.0.5", &[]).unwrap_err();
        assert_eq!(err.var, RP_ID);
        assert!(err.problem.contains("IP address"), "{}", err.problem);
    }

    #[test]
    fn bad_relying_parties_and_origins_fail_the_start_naming_the_variable() {
        for bad in ["com", "https://example.com", "example.com:443", "exa mple.com", "-x.example.com", "[::1]"] {
            let err = read(&[(RP_ID, bad)], "https://auth.example.com", &[]).unwrap_err();
            assert_eq!(err.var, RP_ID, "{bad}");
        }
        // The origin is not on the RP ID, or a mere suffix of its text.
        for origins in ["https://example.org", "https://badexample.com", "http://app.example.com"] {
            let err = read(&[(RP_ID, "example.com"), (ORIGINS, origins)], "https://auth.example.com", &[]).unwrap_err();
            assert_eq!(err.var, ORIGINS, "{origins}");
        }
        // An RP ID that covers no origin at all.
        let err = read(&[(RP_ID, "example.org")], "https://auth.example.com", &[]).unwrap_err();
        assert_eq!(err.var, RP_ID);
        let ok = read(
            &[(RP_ID, "example.com"), (ORIGINS, "https://a.example.com, https://example.com:8443")],
            "http://x",
            &[],
        );
        assert_eq!(ok.unwrap(), on("example.com", &["https://a.example.com", "https://example.com:8443"]));
    }
}
