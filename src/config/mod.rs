//! Configuration from the environment (the README's tables): `Config` and how it is read; the value types
//! and their parsers are in `values`.
//!
//! Parsing is a pure function of a variable lookup, so tests configure servers without touching the
//! process environment. A bad value fails start-up with one line naming the variable.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;

use base64::Engine as _;

use time::Duration;

mod oauth;
mod stores;
mod values;
mod webauthn;

pub(crate) use oauth::checked_url;
pub use oauth::{ProviderConfig, ProviderKind};
pub use stores::{CaCertificates, MigrationTarget, PostgresConfig, SslMode, StoreConfig, migration_target};
pub use values::{
    ApiKey, Argon2Params, ClientIpHeader, ConfigError, CookieScope, EmailConfig, KeyEncryptionKey, LogFormat, Logging,
    PublicUrl, RateLimits,
};
use values::{data_dir, parse_num, rate};
pub use webauthn::{Passkeys, WebauthnConfig};

/// Everything the server needs to start.
#[derive(Clone, Debug)]
pub struct Config {
    /// Listen address.
    pub bind: SocketAddr,
    /// Issuer and cookie origin.
    pub public_url: PublicUrl,
    /// Where state lives.
    pub store: StoreConfig,
    /// The embedded store's directory (and its generated key-encryption key).
    pub data_dir: PathBuf,
    /// Access-token lifetime.
    pub access_token_ttl: Duration,
    /// Refresh-token lifetime: the session family's absolute lifetime.
    pub refresh_token_ttl: Duration,
    /// How long a spent refresh token may be replayed for its successor.
    pub refresh_reuse_grace: Duration,
    /// How recent a session's sign-in must be to change its credentials (a factor) without the password.
    pub reauthentication_window: Duration,
    /// Extra origins allowed to make cookie-authenticated unsafe requests, and cross-origin requests (CORS).
    pub allowed_origins: Vec<String>,
    /// How the session cookies are scoped.
    pub cookies: CookieScope,
    /// The WebAuthn relying party of passkeys, or why passkeys are off.
    pub passkeys: Passkeys,
    /// The platform's sign-in providers (`IDENTSPHERE_OAUTH_<NAME>_*`).
    pub oauth_providers: Vec<ProviderConfig>,
    /// Where a social or SSO sign-in may send the browser back: exact URLs, or origins (any path on them).
    pub allowed_redirect_uris: Vec<String>,
    /// Encrypts signing keys at rest; every replica has the same one. Required with Postgres; the
    /// embedded store generates one into its data directory when it is not set.
    pub key_encryption_key: Option<KeyEncryptionKey>,
    /// Password hashing cost.
    pub argon2: Argon2Params,
    /// Password hashes computed at once; further ones queue.
    pub hash_concurrency: NonZeroUsize,
    /// The least time a password check answers in, when longer than one Argon2 hash: set it to an imported
    /// scheme's cost to hide which accounts still have one (docs/migration.md).
    pub password_check_floor: std::time::Duration,
    /// Whether user import takes unsalted or fast legacy hashes (MD5, SHA-1).
    pub import_allow_weak_hashes: bool,
    /// HTTP worker threads.
    pub workers: NonZeroUsize,
    /// Threads the organization actors are spread over.
    pub actor_arbiters: NonZeroUsize,
    /// An organization actor with nothing in flight for this long stops (restarted on demand).
    pub actor_idle_timeout: std::time::Duration,
    /// Log output.
    pub logging: Logging,
    /// Where `/metrics` is served instead of the main port, when set.
    pub metrics_bind: Option<SocketAddr>,
    /// After SIGTERM: how long the server keeps serving with `/readyz` failing, so load balancers stop
    /// sending before it stops accepting.
    pub shutdown_delay: std::time::Duration,
    /// After that: how long in-flight requests get to finish.
    pub shutdown_timeout: std::time::Duration,
    /// How long a signing key signs before the next takes over; zero turns scheduled rotation off.
    pub key_rotation_interval: Duration,
    /// How often each replica reloads the published keys (and rotates when due).
    pub key_check_interval: std::time::Duration,
    /// Abuse limits; `None` turns one off.
    pub rate_limits: RateLimits,
    /// Proxies whose `client_ip_header` names the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The one header those proxies set; no other is believed, since a client can send any of them.
    pub client_ip_header: ClientIpHeader,
    /// The key resource servers present to read the revocation feed; unset: the feed answers nobody.
    pub platform_api_key: Option<ApiKey>,
    /// Outgoing mail.
    pub email: EmailConfig,
    /// Added to this process's reading of the system clock: skew between replicas, for fault testing
    /// (`scripts/faults.sh`). Zero in production.
    pub clock_offset: Duration,
}

impl Config {
    /// Reads the configuration from `vars` (the process environment in production): the variables a
    /// deployment names itself (`IDENTSPHERE_OAUTH_<NAME>_*`) are found by listing them.
    ///
    /// # Errors
    /// The first variable that is missing where required or cannot be used.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let vars: std::collections::BTreeMap<String, String> = vars.into_iter().collect();
        let names = vars.keys().cloned().collect();
        Self::read(&names, |var| vars.get(var).cloned())
    }

    /// Reads the configuration through `lookup`, without sign-in providers (they are found by listing the
    /// variables: [`Config::from_vars`]).
    ///
    /// # Errors
    /// The first variable that is missing where required or cannot be used.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::read(&BTreeSet::new(), lookup)
    }

    fn read(names: &BTreeSet<String>, lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |var: &str| lookup(var).filter(|v| !v.trim().is_empty());
        let cores = std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN);
        let count = |var: &'static str, default: NonZeroUsize| -> Result<NonZeroUsize, ConfigError> {
            get(var).map_or(Ok(default), |raw| parse_num(var, &raw, "a whole number above 0"))
        };
        let seconds = |var: &'static str, default: i64, min: i64| -> Result<Duration, ConfigError> {
            let secs = get(var).map_or(Ok(default), |raw| parse_num::<i64>(var, &raw, "a whole number of seconds"))?;
            if secs < min {
                return Err(ConfigError { var: var.into(), problem: format!("must be at least {min} seconds") });
            }
            Ok(Duration::seconds(secs))
        };
        let u32_var = |var: &'static str, default: u32| -> Result<u32, ConfigError> {
            get(var).map_or(Ok(default), |raw| parse_num(var, &raw, "a whole number"))
        };

        let bind_raw = get("IDENTSPHERE_BIND").unwrap_or_else(|| "127.0.0.1:8080".to_owned());
        let bind: SocketAddr = parse_num("IDENTSPHERE_BIND", &bind_raw, "an address like 127.0.0.1:8080")?;
        let public_url = PublicUrl::parse(
            "IDENTSPHERE_PUBLIC_BASE_URL",
            &get("IDENTSPHERE_PUBLIC_BASE_URL").unwrap_or_else(|| format!("http://{bind}")),
        )?;

        let email = EmailConfig {
            smtp_url: get("IDENTSPHERE_SMTP_URL").map(|url| url.trim().to_owned()).filter(|url| !url.is_empty()),
            from: get("IDENTSPHERE_EMAIL_FROM").unwrap_or_else(|| "IdentSphere <no-reply@localhost>".to_owned()),
            product_name: get("IDENTSPHERE_PRODUCT_NAME").unwrap_or_else(|| "IdentSphere".to_owned()),
            link_base: match get("IDENTSPHERE_EMAIL_LINK_BASE_URL") {
                Some(raw) => PublicUrl::parse("IDENTSPHERE_EMAIL_LINK_BASE_URL", &raw)?.base,
                None => public_url.base.clone(),
            },
        };

        let store = match (stores::postgres(&get)?, get("IDENTSPHERE_REDIS_URL")) {
            (None, None) => StoreConfig::Embedded,
            (Some(_), None) => {
                return Err(ConfigError {
                    var: "IDENTSPHERE_REDIS_URL".into(),
                    problem: "must be set together with IDENTSPHERE_DATABASE_URL (set both, or neither for the \
                              embedded store)"
                        .to_owned(),
                });
            }
            (None, Some(_)) => {
                return Err(ConfigError {
                    var: "IDENTSPHERE_DATABASE_URL".into(),
                    problem: "must be set together with IDENTSPHERE_REDIS_URL (set both, or neither for the \
                              embedded store)"
                        .to_owned(),
                });
            }
            (Some(database), Some(redis_url)) => {
                let redis_ca = stores::redis(&get, &redis_url)?;
                StoreConfig::Postgres {
                    database,
                    pool_size: count("IDENTSPHERE_DATABASE_POOL_SIZE", NonZeroUsize::new(16).unwrap_or(cores))?.get(),
                    redis_url,
                    redis_ca,
                    redis_key_prefix: get("IDENTSPHERE_REDIS_KEY_PREFIX").unwrap_or_else(|| "identsphere:".to_owned()),
                }
            }
        };

        let kek_var = "IDENTSPHERE_KEY_ENCRYPTION_KEY";
        let key_encryption_key = match get(kek_var) {
            None if matches!(store, StoreConfig::Postgres { .. }) => {
                return Err(ConfigError {
                    var: kek_var.into(),
                    problem: "required with Postgres: 32 random bytes in base64 (`openssl rand -base64 32`)".to_owned(),
                });
            }
            None => None,
            Some(raw) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(raw.trim())
                    .map_err(|_| ConfigError { var: kek_var.into(), problem: "is not valid base64".to_owned() })?;
                Some(KeyEncryptionKey(bytes.try_into().map_err(|_| ConfigError {
                    var: kek_var.into(),
                    problem: "must decode to exactly 32 bytes".to_owned(),
                })?))
            }
        };

        let allowed_origins = get("IDENTSPHERE_ALLOWED_ORIGINS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(|o| PublicUrl::parse("IDENTSPHERE_ALLOWED_ORIGINS", o).map(|u| u.origin))
            .collect::<Result<Vec<_>, _>>()?;

        let cookies =
            CookieScope::parse(&public_url, get("IDENTSPHERE_COOKIE_DOMAIN"), get("IDENTSPHERE_COOKIE_SAMESITE"))?;
        let passkeys = webauthn::passkeys(&get, &public_url, &allowed_origins)?;
        let oauth_providers = oauth::providers(names, &get)?;
        let allowed_redirect_uris = get("IDENTSPHERE_ALLOWED_REDIRECT_URIS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(redirect_target)
            .collect::<Result<Vec<_>, _>>()?;
        let logging = Logging::from_lookup(&get)?;

        let argon2 = Argon2Params {
            memory_kib: u32_var("IDENTSPHERE_ARGON2_MEMORY_KIB", 19_456)?,
            iterations: u32_var("IDENTSPHERE_ARGON2_ITERATIONS", 2)?,
            parallelism: u32_var("IDENTSPHERE_ARGON2_PARALLELISM", 1)?,
        };
        argon2::Params::new(argon2.memory_kib, argon2.iterations, argon2.parallelism, None).map_err(|e| {
            let var = match e {
                argon2::Error::TimeTooSmall => "IDENTSPHERE_ARGON2_ITERATIONS",
                argon2::Error::ThreadsTooFew | argon2::Error::ThreadsTooMany => "IDENTSPHERE_ARGON2_PARALLELISM",
                _ => "IDENTSPHERE_ARGON2_MEMORY_KIB",
            };
            ConfigError { var: var.into(), problem: format!("argon2 rejects it: {e}") }
        })?;

        Ok(Self {
            bind,
            public_url,
            store,
            data_dir: data_dir(&get),
            access_token_ttl: seconds("IDENTSPHERE_ACCESS_TOKEN_TTL", 900, 1)?,
            refresh_token_ttl: seconds("IDENTSPHERE_REFRESH_TOKEN_TTL", 2_592_000, 1)?,
            refresh_reuse_grace: seconds("IDENTSPHERE_REFRESH_REUSE_GRACE", 10, 0)?,
            reauthentication_window: seconds("IDENTSPHERE_REAUTHENTICATION_WINDOW", 600, 0)?,
            allowed_origins,
            cookies,
            passkeys,
            oauth_providers,
            allowed_redirect_uris,
            key_encryption_key,
            argon2,
            hash_concurrency: count("IDENTSPHERE_PASSWORD_HASH_CONCURRENCY", cores)?,
            password_check_floor: std::time::Duration::from_millis(u64::from(u32_var(
                "IDENTSPHERE_PASSWORD_CHECK_MIN_MS",
                0,
            )?)),
            import_allow_weak_hashes: get("IDENTSPHERE_IMPORT_ALLOW_WEAK_HASHES")
                .map_or(Ok(false), |raw| parse_num("IDENTSPHERE_IMPORT_ALLOW_WEAK_HASHES", &raw, "true or false"))?,
            workers: count("IDENTSPHERE_WORKERS", cores)?,
            actor_arbiters: count("IDENTSPHERE_ACTOR_ARBITERS", cores)?,
            actor_idle_timeout: seconds("IDENTSPHERE_ACTOR_IDLE_TIMEOUT", 300, 1)?.unsigned_abs(),
            logging,
            metrics_bind: get("IDENTSPHERE_METRICS_BIND")
                .map(|raw| parse_num("IDENTSPHERE_METRICS_BIND", &raw, "an address like 0.0.0.0:9090"))
                .transpose()?,
            shutdown_delay: seconds("IDENTSPHERE_SHUTDOWN_DELAY", 0, 0)?.unsigned_abs(),
            shutdown_timeout: seconds("IDENTSPHERE_SHUTDOWN_TIMEOUT", 30, 0)?.unsigned_abs(),
            key_rotation_interval: seconds("IDENTSPHERE_KEY_ROTATION_INTERVAL", 2_592_000, 0)?,
            key_check_interval: seconds("IDENTSPHERE_KEY_CHECK_INTERVAL", 10, 1)?.unsigned_abs(),
            clock_offset: Duration::milliseconds(
                get("IDENTSPHERE_CLOCK_OFFSET_MS")
                    .map(|raw| parse_num("IDENTSPHERE_CLOCK_OFFSET_MS", &raw, "a whole number of milliseconds"))
                    .transpose()?
                    .unwrap_or(0),
            ),
            rate_limits: RateLimits {
                signin_ip: rate("IDENTSPHERE_RATE_LIMIT_SIGNIN_IP", get("IDENTSPHERE_RATE_LIMIT_SIGNIN_IP"), (30, 60))?,
                signin_account_failures: rate(
                    "IDENTSPHERE_RATE_LIMIT_SIGNIN_ACCOUNT_FAILURES",
                    get("IDENTSPHERE_RATE_LIMIT_SIGNIN_ACCOUNT_FAILURES"),
                    (10, 900),
                )?,
                register_ip: rate(
                    "IDENTSPHERE_RATE_LIMIT_REGISTER_IP",
                    get("IDENTSPHERE_RATE_LIMIT_REGISTER_IP"),
                    (10, 600),
                )?,
                refresh_ip: rate(
                    "IDENTSPHERE_RATE_LIMIT_REFRESH_IP",
                    get("IDENTSPHERE_RATE_LIMIT_REFRESH_IP"),
                    (300, 60),
                )?,
                mfa_failures: rate(
                    "IDENTSPHERE_RATE_LIMIT_MFA_FAILURES",
                    get("IDENTSPHERE_RATE_LIMIT_MFA_FAILURES"),
                    (5, 900),
                )?,
                email_ip: rate("IDENTSPHERE_RATE_LIMIT_EMAIL_IP", get("IDENTSPHERE_RATE_LIMIT_EMAIL_IP"), (10, 3600))?,
                email_account: rate(
                    "IDENTSPHERE_RATE_LIMIT_EMAIL_ACCOUNT",
                    get("IDENTSPHERE_RATE_LIMIT_EMAIL_ACCOUNT"),
                    (3, 3600),
                )?,
                link_ip: rate("IDENTSPHERE_RATE_LIMIT_LINK_IP", get("IDENTSPHERE_RATE_LIMIT_LINK_IP"), (20, 900))?,
                invite_org: rate(
                    "IDENTSPHERE_RATE_LIMIT_INVITE_ORG",
                    get("IDENTSPHERE_RATE_LIMIT_INVITE_ORG"),
                    (200, 3600),
                )?,
                invite_recipient: rate(
                    "IDENTSPHERE_RATE_LIMIT_INVITE_RECIPIENT",
                    get("IDENTSPHERE_RATE_LIMIT_INVITE_RECIPIENT"),
                    (5, 86_400),
                )?,
            },
            platform_api_key: match get("IDENTSPHERE_PLATFORM_API_KEY") {
                Some(key) if key.trim().len() < 32 => {
                    return Err(ConfigError {
                        var: "IDENTSPHERE_PLATFORM_API_KEY".into(),
                        problem: "must be at least 32 characters (`openssl rand -base64 32`)".to_owned(),
                    });
                }
                key => key.map(|k| ApiKey(k.trim().to_owned())),
            },
            email,
            trusted_proxies: get("IDENTSPHERE_TRUSTED_PROXIES")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| {
                    p.parse::<ipnet::IpNet>()
                        .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                        .map_err(|_| ConfigError {
                            var: "IDENTSPHERE_TRUSTED_PROXIES".into(),
                            problem: format!("{p:?} is not an IP address or CIDR range"),
                        })
                })
                .collect::<Result<_, _>>()?,
            client_ip_header: match get("IDENTSPHERE_CLIENT_IP_HEADER") {
                None => ClientIpHeader::default(),
                Some(raw) => ClientIpHeader::parse(raw.trim()).ok_or_else(|| ConfigError {
                    var: "IDENTSPHERE_CLIENT_IP_HEADER".into(),
                    problem: format!("must be x-forwarded-for, forwarded or x-real-ip, got {raw:?}"),
                })?,
            },
        })
    }

    /// Reads the configuration from the process environment.
    ///
    /// # Errors
    /// See [`Config::from_lookup`].
    pub fn from_env() -> Result<Self, ConfigError> {
        // `vars()` would panic on a variable that is not UTF-8; such a variable is none of ours.
        Self::from_vars(std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))))
    }
}

/// One entry of `IDENTSPHERE_ALLOWED_REDIRECT_URIS`: an absolute URL without a fragment (`https://`, or
/// `http://` on loopback; custom schemes of native apps are not taken in v1).
fn redirect_target(raw: &str) -> Result<String, ConfigError> {
    let url = oauth::checked_url("IDENTSPHERE_ALLOWED_REDIRECT_URIS", raw)?;
    if url.contains('#') {
        return Err(ConfigError {
            var: "IDENTSPHERE_ALLOWED_REDIRECT_URIS".into(),
            problem: "a redirect URI has no fragment".to_owned(),
        });
    }
    Ok(url)
}

/// A variable of the process environment; blank counts as unset.
#[must_use]
pub fn env(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Rate;
    use std::collections::HashMap;

    const KEK: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut env: HashMap<String, String> = [
            ("IDENTSPHERE_DATABASE_URL", "postgres://postgres@127.0.0.1/identsphere"),
            ("IDENTSPHERE_REDIS_URL", "redis://127.0.0.1:6379"),
            ("IDENTSPHERE_KEY_ENCRYPTION_KEY", KEK),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        for (k, v) in vars {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        Config::from_lookup(|var| env.get(var).cloned())
    }

    #[test]
    fn a_clock_offset_shifts_the_replicas_clock_either_way_and_is_zero_by_default() {
        assert_eq!(config(&[]).unwrap().clock_offset, Duration::ZERO);
        let behind = config(&[("IDENTSPHERE_CLOCK_OFFSET_MS", "-3000")]).unwrap();
        assert_eq!(behind.clock_offset, Duration::seconds(-3));
        let err = config(&[("IDENTSPHERE_CLOCK_OFFSET_MS", "3s")]).unwrap_err();
        assert_eq!(err.var, "IDENTSPHERE_CLOCK_OFFSET_MS");
    }

    #[test]
    fn defaults_follow_the_contract() {
        let c = config(&[]).unwrap();
        assert_eq!(c.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(c.public_url.base, "http://127.0.0.1:8080");
        assert!(!c.public_url.secure_cookies);
        assert_eq!(c.access_token_ttl, Duration::seconds(900));
        assert_eq!(c.refresh_token_ttl, Duration::seconds(2_592_000));
        assert_eq!(c.refresh_reuse_grace, Duration::seconds(10));
        assert_eq!(c.reauthentication_window, Duration::minutes(10));
        assert_eq!(c.argon2, Argon2Params { memory_kib: 19_456, iterations: 2, parallelism: 1 });
        let limits = c.rate_limits;
        assert_eq!(limits.signin_ip, Some(Rate { count: 30, period: Duration::minutes(1) }));
        assert_eq!(limits.signin_account_failures, Some(Rate { count: 10, period: Duration::minutes(15) }));
        assert!(limits.register_ip.is_some() && limits.refresh_ip.is_some(), "abuse limits are on by default");
        let c = config(&[
            ("IDENTSPHERE_RATE_LIMIT_REGISTER_IP", "off"),
            ("IDENTSPHERE_TRUSTED_PROXIES", "10.0.0.0/8, ::1"),
        ])
        .unwrap();
        assert_eq!(c.rate_limits.register_ip, None);
        assert_eq!(c.trusted_proxies.len(), 2);
    }

    #[test]
    fn the_client_ip_header_is_x_forwarded_for_unless_the_operator_names_another() {
        assert_eq!(config(&[]).unwrap().client_ip_header, ClientIpHeader::XForwardedFor);
        for (raw, header) in [
            ("forwarded", ClientIpHeader::Forwarded),
            (" X-Real-IP ", ClientIpHeader::XRealIp),
            ("x-forwarded-for", ClientIpHeader::XForwardedFor),
        ] {
            assert_eq!(config(&[("IDENTSPHERE_CLIENT_IP_HEADER", raw)]).unwrap().client_ip_header, header, "{raw}");
        }
    }

    #[test]
    fn the_scripts_limits_off_file_turns_every_limit_off() {
        let vars: Vec<(&str, &str)> = include_str!("../../scripts/limits-off.env")
            .lines()
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| line.split_once('=').expect("NAME=value"))
            .collect();
        // Every field named: a new limit does not compile here until it is added to the file's check.
        let off = RateLimits {
            signin_ip: None,
            signin_account_failures: None,
            register_ip: None,
            refresh_ip: None,
            mfa_failures: None,
            email_ip: None,
            email_account: None,
            link_ip: None,
            invite_org: None,
            invite_recipient: None,
        };
        assert_eq!(config(&vars).unwrap().rate_limits, off, "scripts/limits-off.env leaves a limit on");
    }

    #[test]
    fn public_url_decides_origin_and_secure_cookies() {
        let c = config(&[("IDENTSPHERE_PUBLIC_BASE_URL", "https://Auth.Example.com/")]).unwrap();
        assert_eq!(c.public_url.base, "https://Auth.Example.com");
        assert_eq!(c.public_url.origin, "https://auth.example.com");
        assert!(c.public_url.secure_cookies);
        let c = config(&[("IDENTSPHERE_PUBLIC_BASE_URL", "http://localhost:3000")]).unwrap();
        assert!(!c.public_url.secure_cookies);
        let c = config(&[("IDENTSPHERE_PUBLIC_BASE_URL", "http://10.0.0.5:8080")]).unwrap();
        assert!(c.public_url.secure_cookies);
    }

    #[test]
    fn bad_values_name_their_variable_and_never_echo_a_secret() {
        let cases = [
            ("IDENTSPHERE_BIND", "nowhere"),
            ("IDENTSPHERE_PUBLIC_BASE_URL", "ftp://x"),
            ("IDENTSPHERE_ACCESS_TOKEN_TTL", "-5"),
            ("IDENTSPHERE_REFRESH_REUSE_GRACE", "ten"),
            ("IDENTSPHERE_ALLOWED_ORIGINS", "https://ok.example, nope"),
            ("IDENTSPHERE_LOG_FORMAT", "xml"),
            ("IDENTSPHERE_WORKERS", "0"),
            ("IDENTSPHERE_ARGON2_MEMORY_KIB", "1"),
            ("IDENTSPHERE_ARGON2_ITERATIONS", "0"),
            ("IDENTSPHERE_ARGON2_PARALLELISM", "0"),
            ("IDENTSPHERE_REDIS_URL", "http://127.0.0.1:6379"),
            ("IDENTSPHERE_METRICS_BIND", "9090"),
            ("IDENTSPHERE_SHUTDOWN_TIMEOUT", "-1"),
            ("IDENTSPHERE_RATE_LIMIT_SIGNIN_IP", "30"),
            ("IDENTSPHERE_RATE_LIMIT_REFRESH_IP", "0/60"),
            ("IDENTSPHERE_TRUSTED_PROXIES", "10.0.0.0/8, proxy"),
            ("IDENTSPHERE_CLIENT_IP_HEADER", "x-client-ip"),
        ];
        for (var, value) in cases {
            let err = config(&[(var, value)]).unwrap_err();
            assert_eq!(err.var, var, "{value}");
        }
        let err = config(&[("IDENTSPHERE_KEY_ENCRYPTION_KEY", "c2VjcmV0LXRvby1zaG9ydA==")]).unwrap_err();
        assert_eq!(err.var, "IDENTSPHERE_KEY_ENCRYPTION_KEY");
        assert!(!err.to_string().contains("c2VjcmV0"), "{err}");
    }

    fn bare(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: HashMap<&str, &str> = vars.iter().copied().collect();
        Config::from_lookup(|v| env.get(v).map(|s| (*s).to_owned()))
    }

    #[test]
    fn no_urls_means_the_embedded_store_and_one_url_alone_is_refused() {
        let c = bare(&[]).unwrap();
        assert_eq!(c.store, StoreConfig::Embedded);
        assert_eq!(c.data_dir, PathBuf::from("./identsphere-data"));
        assert_eq!(c.key_encryption_key, None, "generated into the data directory");
        let c = bare(&[("IDENTSPHERE_DATA_DIR", "/var/lib/identsphere")]).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/identsphere"));

        let err = bare(&[("IDENTSPHERE_DATABASE_URL", "postgres://x/y")]).unwrap_err();
        assert_eq!(err.var, "IDENTSPHERE_REDIS_URL");
        let err = bare(&[("IDENTSPHERE_REDIS_URL", "redis://x")]).unwrap_err();
        assert_eq!(err.var, "IDENTSPHERE_DATABASE_URL");
        let err = bare(&[("IDENTSPHERE_DATABASE_URL", "postgres://x/y"), ("IDENTSPHERE_REDIS_URL", "redis://x")])
            .unwrap_err();
        assert_eq!(err.var, "IDENTSPHERE_KEY_ENCRYPTION_KEY", "required with Postgres");
    }

    #[test]
    fn migrate_targets_postgres_only_when_its_url_is_set() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |v: &str| vars.iter().find(|(k, _)| *k == v).map(|(_, x)| (*x).to_owned())
        };
        let target = migration_target(&env(&[("IDENTSPHERE_DATABASE_URL", "postgres://h/db?sslmode=require")]));
        let MigrationTarget::Postgres(database) = target.unwrap() else { panic!("not Postgres") };
        assert_eq!((database.url.as_str(), database.ssl_mode), ("postgres://h/db", SslMode::Require));
        assert_eq!(
            migration_target(&env(&[("IDENTSPHERE_DATA_DIR", "/d")])).unwrap(),
            MigrationTarget::Embedded("/d".into())
        );
        assert!(migration_target(&env(&[("IDENTSPHERE_DATABASE_URL", "mysql://h/db")])).is_err());
    }
}
