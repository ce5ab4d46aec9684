//! Where the stores are, and TLS to them: Postgres' `sslmode` (libpq's names and meanings) and the private CA
//! files of both stores, read and checked at start-up so that a bad file fails there with one line.

use std::path::PathBuf;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

use super::values::{ConfigError, data_dir};

const DATABASE_URL: &str = "IDENTSPHERE_DATABASE_URL";
const DATABASE_CA_FILE: &str = "IDENTSPHERE_DATABASE_CA_FILE";
const REDIS_URL: &str = "IDENTSPHERE_REDIS_URL";
const REDIS_CA_FILE: &str = "IDENTSPHERE_REDIS_CA_FILE";

/// How the connection to Postgres is secured: libpq's `sslmode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it, else plain TCP; the certificate is not checked.
    Prefer,
    /// TLS or no connection; the certificate is not checked.
    Require,
    /// TLS, the certificate chains to a trusted CA; its host name is not checked.
    VerifyCa,
    /// TLS, the certificate chains to a trusted CA and names the host connected to.
    VerifyFull,
}

/// The certificates of a CA file, and the file itself (redis-rs takes PEM). Its `Debug` shows how many.
#[derive(Clone, PartialEq, Eq)]
pub struct CaCertificates {
    /// The file's contents.
    pub pem: Vec<u8>,
    /// Its certificates, at least one.
    pub certificates: Vec<CertificateDer<'static>>,
}

impl std::fmt::Debug for CaCertificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CaCertificates({} certificates)", self.certificates.len())
    }
}

/// Where Postgres is and how its certificate is checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostgresConfig {
    /// The connection URL without `sslmode`, which tokio-postgres would refuse for the verifying modes.
    pub url: String,
    /// What TLS is required and what of the certificate is checked.
    pub ssl_mode: SslMode,
    /// Trust anchors instead of the system's (`IDENTSPHERE_DATABASE_CA_FILE`).
    pub ca: Option<CaCertificates>,
}

/// Where the server keeps its state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreConfig {
    /// SQLite under the data directory: zero setup, a single node.
    Embedded,
    /// Postgres for everything durable, Redis for the denylist: any number of replicas.
    Postgres {
        /// Where Postgres is and how its certificate is checked.
        database: PostgresConfig,
        /// Connections kept by the Postgres pool.
        pool_size: usize,
        /// Redis connection string.
        redis_url: String,
        /// Trust anchors of a `rediss://` Redis instead of the system's.
        redis_ca: Option<CaCertificates>,
        /// Prefix of every Redis key, so deployments (and tests) can share one Redis.
        redis_key_prefix: String,
    },
}

/// What `identsphere migrate` migrates: Postgres when `IDENTSPHERE_DATABASE_URL` is set, else the
/// embedded store in the data directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MigrationTarget {
    /// A Postgres database.
    Postgres(PostgresConfig),
    /// The embedded store in this directory.
    Embedded(PathBuf),
}

/// Reads what `identsphere migrate` needs, and nothing more.
///
/// # Errors
/// A `IDENTSPHERE_DATABASE_URL` that is not a `postgres://` URL, a bad `sslmode` or CA file.
pub fn migration_target(get: &impl Fn(&str) -> Option<String>) -> Result<MigrationTarget, ConfigError> {
    Ok(match postgres(get)? {
        Some(database) => MigrationTarget::Postgres(database),
        None => MigrationTarget::Embedded(data_dir(get)),
    })
}

/// `IDENTSPHERE_DATABASE_URL` with its `sslmode` and `IDENTSPHERE_DATABASE_CA_FILE`; `None` when the URL is
/// unset.
pub(super) fn postgres(get: &impl Fn(&str) -> Option<String>) -> Result<Option<PostgresConfig>, ConfigError> {
    let bad = |var: &'static str, problem: String| ConfigError { var: var.into(), problem };
    let Some(raw) = get(DATABASE_URL) else { return Ok(None) };
    if !(raw.starts_with("postgres://") || raw.starts_with("postgresql://")) {
        return Err(bad(DATABASE_URL, "must be a postgres:// URL".to_owned()));
    }
    let (url, mode) = without_sslmode(raw.trim())?;
    let ca_path = get(DATABASE_CA_FILE);
    let ssl_mode = match (mode, &ca_path) {
        (None, None) => SslMode::Prefer,
        // A CA file says the operator wants the certificate checked.
        (None, Some(_)) => SslMode::VerifyFull,
        // As libpq does when a root certificate file is present.
        (Some(SslMode::Require), Some(_)) => SslMode::VerifyCa,
        (Some(SslMode::Disable | SslMode::Prefer), Some(_)) => {
            return Err(bad(
                DATABASE_CA_FILE,
                "is only used with sslmode=require, verify-ca or verify-full in IDENTSPHERE_DATABASE_URL".to_owned(),
            ));
        }
        (Some(mode), _) => mode,
    };
    let ca = ca_path.map(|path| ca_file(DATABASE_CA_FILE, &path)).transpose()?;
    Ok(Some(PostgresConfig { url, ssl_mode, ca }))
}

/// The URL without its `sslmode` parameter, and the mode it named. libpq's `sslrootcert` is refused with a
/// pointer to the variable, so that there is one way to name the CA.
fn without_sslmode(url: &str) -> Result<(String, Option<SslMode>), ConfigError> {
    let Some((base, query)) = url.split_once('?') else { return Ok((url.to_owned(), None)) };
    let mut mode = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=').unwrap_or((pair, "")) {
            ("sslmode", value) => mode = Some(ssl_mode(value)?),
            ("sslrootcert", _) => {
                return Err(ConfigError {
                    var: DATABASE_URL.into(),
                    problem: format!("sslrootcert is not read: name the CA file in {DATABASE_CA_FILE}"),
                });
            }
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
    Ok((url, mode))
}

fn ssl_mode(value: &str) -> Result<SslMode, ConfigError> {
    Ok(match value {
        "disable" => SslMode::Disable,
        "prefer" => SslMode::Prefer,
        "require" => SslMode::Require,
        "verify-ca" => SslMode::VerifyCa,
        "verify-full" => SslMode::VerifyFull,
        other => {
            return Err(ConfigError {
                var: DATABASE_URL.into(),
                problem: format!("sslmode must be disable, prefer, require, verify-ca or verify-full, got {other:?}"),
            });
        }
    })
}

/// Checks `IDENTSPHERE_REDIS_URL` and reads `IDENTSPHERE_REDIS_CA_FILE`, which only a `rediss://` URL uses.
pub(super) fn redis(get: &impl Fn(&str) -> Option<String>, url: &str) -> Result<Option<CaCertificates>, ConfigError> {
    let bad = |var: &'static str, problem: &str| ConfigError { var: var.into(), problem: problem.to_owned() };
    let tls = url.starts_with("rediss://");
    if !tls && !url.starts_with("redis://") {
        return Err(bad(REDIS_URL, "must be a redis:// or rediss:// (TLS) URL"));
    }
    if url.contains('#') {
        // redis-rs reads `#insecure` as "check no certificate"; a private CA goes in the CA file instead.
        return Err(bad(REDIS_URL, "must not carry a #fragment (certificates are always checked)"));
    }
    let Some(path) = get(REDIS_CA_FILE) else { return Ok(None) };
    if !tls {
        return Err(bad(REDIS_CA_FILE, "is only used with a rediss:// URL in IDENTSPHERE_REDIS_URL"));
    }
    ca_file(REDIS_CA_FILE, &path).map(Some)
}

/// The certificates of the PEM file at `path`, at least one.
fn ca_file(var: &'static str, path: &str) -> Result<CaCertificates, ConfigError> {
    let bad = |problem: String| ConfigError { var: var.into(), problem };
    let path = path.trim();
    let pem = std::fs::read(path).map_err(|e| bad(format!("cannot read {path}: {e}")))?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("{path} is not a PEM file of certificates: {e}")))?;
    if certificates.is_empty() {
        return Err(bad(format!("{path} holds no PEM certificate")));
    }
    // A certificate the trust store cannot take would fail every connection: say so now.
    let mut roots = rustls::RootCertStore::empty();
    let (_, unusable) = roots.add_parsable_certificates(certificates.iter().cloned());
    if unusable > 0 {
        return Err(bad(format!("{path}: {unusable} of its certificates cannot be used as a CA")));
    }
    Ok(CaCertificates { pem, certificates })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |var: &str| vars.iter().find(|(k, _)| k == var).map(|(_, v)| v.clone())
    }

    #[test]
    fn sslmode_is_read_and_taken_out_of_the_url_and_prefer_is_the_default() {
        let pg = |url: &str| postgres(&lookup(&[(DATABASE_URL, url)])).unwrap().unwrap();
        let c = pg("postgres://u:p@db:5432/app?sslmode=verify-full&application_name=x");
        assert_eq!(
            (c.url.as_str(), c.ssl_mode),
            ("postgres://u:p@db:5432/app?application_name=x", SslMode::VerifyFull)
        );
        let c = pg("postgresql://db/app?sslmode=verify-ca");
        assert_eq!((c.url.as_str(), c.ssl_mode), ("postgresql://db/app", SslMode::VerifyCa));
        assert_eq!(pg("postgres://db/app").ssl_mode, SslMode::Prefer);
        assert_eq!(pg("postgres://db/app?sslmode=disable").ssl_mode, SslMode::Disable);
        assert_eq!(pg("postgres://db/app?sslmode=require").ssl_mode, SslMode::Require);
    }

    #[test]
    fn a_bad_sslmode_or_sslrootcert_names_the_url_without_echoing_it() {
        for url in ["postgres://u:secret@db/app?sslmode=verify", "postgres://u:secret@db/app?sslrootcert=/ca.pem"] {
            let err = postgres(&lookup(&[(DATABASE_URL, url)])).unwrap_err();
            assert_eq!(err.var, DATABASE_URL, "{url}");
            assert!(!err.to_string().contains("secret") && !err.to_string().contains('\n'), "{err}");
        }
    }

    #[test]
    fn ca_files_must_be_readable_pem_certificates() {
        let dir = std::env::temp_dir().join(format!("identsphere-ca-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let junk = junk.display().to_string();
        let missing = dir.join("missing.pem").display().to_string();
        for path in [junk.as_str(), missing.as_str()] {
            let vars = [(DATABASE_URL, "postgres://db/app?sslmode=verify-full"), (DATABASE_CA_FILE, path)];
            assert_eq!(postgres(&lookup(&vars)).unwrap_err().var, DATABASE_CA_FILE, "{path}");
            let err = redis(&lookup(&[(REDIS_CA_FILE, path)]), "rediss://cache:6380").unwrap_err();
            assert_eq!(err.var, REDIS_CA_FILE, "{path}");
            assert!(!err.to_string().contains('\n'), "{err}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_ca_file_without_tls_is_refused_rather_than_ignored() {
        let vars = [(DATABASE_URL, "postgres://db/app?sslmode=disable"), (DATABASE_CA_FILE, "/ca.pem")];
        assert_eq!(postgres(&lookup(&vars)).unwrap_err().var, DATABASE_CA_FILE);
        let err = redis(&lookup(&[(REDIS_CA_FILE, "/ca.pem")]), "redis://cache:6379").unwrap_err();
        assert_eq!(err.var, REDIS_CA_FILE);
    }

    #[test]
    fn redis_takes_rediss_and_never_the_insecure_fragment() {
        assert_eq!(redis(&lookup(&[]), "rediss://cache:6380").unwrap(), None);
        assert_eq!(redis(&lookup(&[]), "redis://cache:6379").unwrap(), None);
        for url in ["rediss://cache:6380/#insecure", "http://cache"] {
            assert_eq!(redis(&lookup(&[]), url).unwrap_err().var, REDIS_URL, "{url}");
        }
    }
}
