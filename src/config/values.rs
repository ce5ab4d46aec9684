//! The configuration's value types, each with the parser of its variable.

use std::path::PathBuf;

use actix_web::http::Uri;
use time::Duration;

use crate::model::Rate;

/// A configuration value that cannot be used; its `Display` is the one line start-up prints.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{var}: {problem}")]
pub struct ConfigError {
    /// The variable at fault.
    pub var: std::borrow::Cow<'static, str>,
    /// What is wrong with it (never its value when it is a secret).
    pub problem: String,
}

/// The public base URL: issuer, cookie origin and CSRF reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicUrl {
    /// The URL without a trailing slash; the `iss` claim.
    pub base: String,
    /// `scheme://host[:port]`, compared with request `Origin` headers.
    pub origin: String,
    /// Cookies get `Secure` unless this is plain `http://` on localhost or 127.0.0.1.
    pub secure_cookies: bool,
}

impl PublicUrl {
    pub(super) fn parse(var: &'static str, raw: &str) -> Result<Self, ConfigError> {
        let bad = |problem: &str| ConfigError { var: var.into(), problem: problem.to_owned() };
        let base = raw.trim().trim_end_matches('/').to_owned();
        let uri: Uri = base.parse().map_err(|_| bad("not a URL"))?;
        let scheme = uri.scheme_str().ok_or_else(|| bad("needs a scheme, http:// or https://"))?;
        if scheme != "http" && scheme != "https" {
            return Err(bad("the scheme must be http or https"));
        }
        let authority = uri.authority().ok_or_else(|| bad("needs a host"))?;
        if uri.query().is_some() || authority.as_str().contains('@') {
            return Err(bad("must not carry a query or credentials"));
        }
        let host = authority.host();
        let local = matches!(host, "localhost" | "127.0.0.1" | "[::1]");
        Ok(Self {
            origin: format!("{scheme}://{}", authority.as_str().to_ascii_lowercase()),
            secure_cookies: !(scheme == "http" && local),
            base,
        })
    }
}

/// Argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory in KiB (OWASP: 19456).
    pub memory_kib: u32,
    /// Passes (OWASP: 2).
    pub iterations: u32,
    /// Lanes (OWASP: 1).
    pub parallelism: u32,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line, for collectors.
    Json,
    /// Human-readable, for a terminal.
    Pretty,
}

/// An API key. Its `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(pub(super) String);

impl ApiKey {
    /// The key itself, to compare with what a client sent.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(..)")
    }
}

/// The abuse limits, on by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimits {
    /// Sign-in attempts per client IP.
    pub signin_ip: Option<Rate>,
    /// Failed sign-ins per account (by email, existing or not).
    pub signin_account_failures: Option<Rate>,
    /// Registrations per client IP.
    pub register_ip: Option<Rate>,
    /// Refreshes per client IP.
    pub refresh_ip: Option<Rate>,
    /// Wrong second-factor codes per mfa token and per user.
    pub mfa_failures: Option<Rate>,
    /// Requests that send mail (password forgotten, verification resent) per client IP.
    pub email_ip: Option<Rate>,
    /// Mails of those requests per account (by email, existing or not).
    pub email_account: Option<Rate>,
    /// Link redemptions (email verification, password reset) per client IP.
    pub link_ip: Option<Rate>,
    /// Mails an organization sends on its members' or keys' word (invitations, created users).
    pub invite_org: Option<Rate>,
    /// Those mails per recipient address, whatever organization sends them.
    pub invite_recipient: Option<Rate>,
}

/// Outgoing mail: how it is delivered and what its links point at.
#[derive(Clone, PartialEq, Eq)]
pub struct EmailConfig {
    /// `smtp://` or `smtps://` URL (lettre's format, credentials included); `None`: the file outbox.
    pub smtp_url: Option<String>,
    /// The `From` mailbox.
    pub from: String,
    /// The product name the messages speak of.
    pub product_name: String,
    /// Where links point: `<link_base>/verify-email?token=…`, `<link_base>/reset-password?token=…`.
    pub link_base: String,
}

impl std::fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The SMTP URL may carry a password.
        f.debug_struct("EmailConfig")
            .field("smtp", &self.smtp_url.as_ref().map(|_| ".."))
            .field("from", &self.from)
            .field("product_name", &self.product_name)
            .field("link_base", &self.link_base)
            .finish()
    }
}

/// Reads a rate as `COUNT/SECONDS` (`30/60`); `0` or `off` turns it off.
pub(super) fn rate(var: &'static str, raw: Option<String>, default: (u32, i64)) -> Result<Option<Rate>, ConfigError> {
    let Some(raw) = raw else {
        return Ok(Some(Rate { count: default.0, period: Duration::seconds(default.1) }));
    };
    let raw = raw.trim();
    if raw == "0" || raw.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let bad =
        || ConfigError { var: var.into(), problem: format!("must be COUNT/SECONDS like 30/60, or off; got {raw:?}") };
    let (count, seconds) = raw.split_once('/').ok_or_else(bad)?;
    let count: u32 = count.trim().parse().map_err(|_| bad())?;
    let seconds: i64 = seconds.trim().parse().map_err(|_| bad())?;
    if count == 0 || seconds <= 0 {
        return Err(bad());
    }
    Ok(Some(Rate { count, period: Duration::seconds(seconds) }))
}

/// Where and how logs are written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logging {
    /// Log output format.
    pub format: LogFormat,
    /// Log filter (`tracing_subscriber::EnvFilter` syntax).
    pub filter: String,
}

impl Logging {
    /// Reads `IDENTSPHERE_LOG_FORMAT` and `IDENTSPHERE_LOG`.
    ///
    /// # Errors
    /// An unknown format.
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let format = match get("IDENTSPHERE_LOG_FORMAT").as_deref().map(str::trim) {
            None | Some("auto") => {
                if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                    LogFormat::Pretty
                } else {
                    LogFormat::Json
                }
            }
            Some("json") => LogFormat::Json,
            Some("pretty") => LogFormat::Pretty,
            Some(other) => {
                return Err(ConfigError {
                    var: "IDENTSPHERE_LOG_FORMAT".into(),
                    problem: format!("must be auto, json or pretty, got {other:?}"),
                });
            }
        };
        Ok(Self { format, filter: get("IDENTSPHERE_LOG").unwrap_or_else(|| "info".to_owned()) })
    }
}

pub(super) fn data_dir(get: &impl Fn(&str) -> Option<String>) -> PathBuf {
    PathBuf::from(get("IDENTSPHERE_DATA_DIR").unwrap_or_else(|| "./identsphere-data".to_owned()))
}

/// The 32-byte key-encryption key. Its `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyEncryptionKey(pub [u8; 32]);

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyEncryptionKey(..)")
    }
}

pub(super) fn parse_num<T: std::str::FromStr>(var: &'static str, raw: &str, what: &str) -> Result<T, ConfigError> {
    raw.trim().parse().map_err(|_| ConfigError { var: var.into(), problem: format!("must be {what}, got {raw:?}") })
}

/// The header the trusted proxies set, the only one read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientIpHeader {
    /// `X-Forwarded-For`, which proxies append to (ingress-nginx, AWS ALB, most others).
    #[default]
    XForwardedFor,
    /// `Forwarded` (RFC 7239), its `for=` parameters.
    Forwarded,
    /// `X-Real-IP`: one address, which the proxy sets, replacing what the client sent.
    XRealIp,
}

impl ClientIpHeader {
    /// The configuration's spelling: `x-forwarded-for`, `forwarded` or `x-real-ip` (any case).
    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        [Self::XForwardedFor, Self::Forwarded, Self::XRealIp].into_iter().find(|h| raw.eq_ignore_ascii_case(h.name()))
    }

    /// The header name, lower case.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::XForwardedFor => "x-forwarded-for",
            Self::Forwarded => "forwarded",
            Self::XRealIp => "x-real-ip",
        }
    }
}

/// How the session cookies are scoped (`IDENTSPHERE_COOKIE_DOMAIN`, `IDENTSPHERE_COOKIE_SAMESITE`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CookieScope {
    /// `Secure`, unless the public base URL is plain `http://` on a loopback name.
    pub secure: bool,
    /// `Domain=`: shared with the subdomains of this domain; `None` is host-only.
    pub domain: Option<String>,
    /// `SameSite=None` on both cookies (an app on another site); otherwise `Lax` (access) and `Strict`
    /// (refresh).
    pub cross_site: bool,
}

impl CookieScope {
    /// Reads the scope: a domain the public base URL's host is on, and `lax` (default) or `none`, which
    /// needs `Secure` cookies (browsers drop `SameSite=None` without it).
    pub(super) fn parse(
        public: &PublicUrl,
        domain: Option<String>,
        same_site: Option<String>,
    ) -> Result<Self, ConfigError> {
        let host = public.origin.split("://").nth(1).unwrap_or_default().rsplit_once(':').map_or_else(
            || public.origin.split("://").nth(1).unwrap_or_default().to_owned(),
            |(host, port)| {
                if port.bytes().all(|b| b.is_ascii_digit()) { host.to_owned() } else { format!("{host}:{port}") }
            },
        );
        let domain = match domain {
            None => None,
            Some(raw) => {
                let domain = raw.trim().trim_start_matches('.').to_ascii_lowercase();
                let bad = |problem: &str| ConfigError {
                    var: "IDENTSPHERE_COOKIE_DOMAIN".into(),
                    problem: problem.to_owned(),
                };
                if !domain.contains('.') || !email_address::EmailAddress::is_valid(&format!("a@{domain}")) {
                    return Err(bad("must be a domain name like example.com"));
                }
                if host != domain && !host.ends_with(&format!(".{domain}")) {
                    return Err(bad("must be the public base URL's host or a domain it is under"));
                }
                Some(domain)
            }
        };
        let cross_site = match same_site.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
            None | Some("lax") => false,
            Some("none") if public.secure_cookies => true,
            Some("none") => {
                return Err(ConfigError {
                    var: "IDENTSPHERE_COOKIE_SAMESITE".into(),
                    problem: "none needs Secure cookies: an https:// public base URL".to_owned(),
                });
            }
            Some(_) => {
                return Err(ConfigError {
                    var: "IDENTSPHERE_COOKIE_SAMESITE".into(),
                    problem: "must be lax or none".to_owned(),
                });
            }
        };
        Ok(Self { secure: public.secure_cookies, domain, cross_site })
    }
}
