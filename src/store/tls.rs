//! TLS to Postgres with rustls on aws-lc-rs: tokio-postgres' `MakeTlsConnect` over tokio-rustls, and the
//! certificate checks of libpq's `sslmode`s.
//!
//! Written here rather than taken from `tokio-postgres-rustls`, which is not in the tree and brings its own
//! digest crates: this adapter is the few lines below over crates already in it (aws-lc-rs for the channel
//! binding's hash, x509-parser, which webauthn-rs-core uses, for the certificate's signature algorithm).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_cert_signed_by_trust_anchor};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

use crate::config::{PostgresConfig, SslMode};

/// The connection settings of `database`: its URL with the TLS mode tokio-postgres knows (it has no
/// verifying modes: the checks are in the connector), and the connector.
///
/// # Errors
/// When the URL cannot be parsed, or a verifying mode has no CA file and the system has no CA certificates.
pub fn postgres_tls(database: &PostgresConfig) -> anyhow::Result<(tokio_postgres::Config, MakeRustlsConnect)> {
    let mut config: tokio_postgres::Config = database.url.parse()?;
    config.ssl_mode(match database.ssl_mode {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
    });
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let verifier: Arc<dyn ServerCertVerifier> = match database.ssl_mode {
        SslMode::Disable | SslMode::Prefer | SslMode::Require => Arc::new(Unchecked(algorithms)),
        SslMode::VerifyCa => Arc::new(ChainOnly { roots: Arc::new(roots(database)?), algorithms }),
        SslMode::VerifyFull => {
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots(database)?), Arc::clone(&provider)).build()?
        }
    };
    let tls = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok((config, MakeRustlsConnect(Arc::new(tls))))
}

/// The CA file's certificates, else the system's.
fn roots(database: &PostgresConfig) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    match &database.ca {
        Some(ca) => {
            roots.add_parsable_certificates(ca.certificates.iter().cloned());
        }
        None => {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
    }
    anyhow::ensure!(
        !roots.is_empty(),
        "the system has no CA certificates to check Postgres' certificate against: set IDENTSPHERE_DATABASE_CA_FILE"
    );
    Ok(roots)
}

/// `require` and `prefer`: encrypted, the certificate taken as it comes (libpq without a root certificate).
/// The handshake is still checked to be signed by the certificate's key.
#[derive(Debug)]
struct Unchecked(WebPkiSupportedAlgorithms);

/// `verify-ca`: the certificate chains to a trusted CA, whatever host name it carries.
#[derive(Debug)]
struct ChainOnly {
    roots: Arc<RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
}

/// The handshake-signature checks, the same whatever is made of the certificate.
macro_rules! handshake_signatures {
    ($algorithms:tt) => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls12_signature(message, cert, dss, &self.$algorithms)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls13_signature(message, cert, dss, &self.$algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.$algorithms.supported_schemes()
        }
    };
}

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    handshake_signatures!(0);
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(&cert, &self.roots, intermediates, now, self.algorithms.all)?;
        Ok(ServerCertVerified::assertion())
    }

    handshake_signatures!(algorithms);
}

/// tokio-postgres' TLS connector factory over rustls.
#[derive(Clone, Debug)]
pub struct MakeRustlsConnect(Arc<ClientConfig>);

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> MakeTlsConnect<S> for MakeRustlsConnect {
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> io::Result<RustlsConnect> {
        // A Unix socket has no name (and Postgres offers no TLS on it): fail only if TLS is attempted.
        let name = ServerName::try_from(domain).map(|name| name.to_owned()).ok();
        Ok(RustlsConnect { config: Arc::clone(&self.0), name })
    }
}

/// One TLS handshake with the named server.
#[derive(Debug)]
pub struct RustlsConnect {
    config: Arc<ClientConfig>,
    name: Option<ServerName<'static>>,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> TlsConnect<S> for RustlsConnect {
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let name = self
                .name
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the host is no DNS name or IP address"))?;
            let stream = tokio_rustls::TlsConnector::from(self.config).connect(name, stream).await?;
            Ok(RustlsStream(stream))
        })
    }
}

/// A TLS connection to Postgres.
#[derive(Debug)]
pub struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for RustlsStream<S> {
    /// `tls-server-end-point` (RFC 5929): the server certificate hashed with the hash of its signature, SHA-256
    /// for any other than SHA-384 and SHA-512 (RFC 5929 for MD5 and SHA-1), as Postgres computes it. SCRAM then proves both ends see the same TLS
    /// session, which keeps a relaying impostor out even where the certificate is not checked (`require`).
    /// A certificate this cannot read gives none, and SCRAM runs unbound as tokio-postgres' default allows.
    fn channel_binding(&self) -> ChannelBinding {
        use aws_lc_rs::digest;
        use x509_parser::oid_registry::{
            OID_PKCS1_SHA384WITHRSA, OID_PKCS1_SHA512WITHRSA, OID_SIG_ECDSA_WITH_SHA384, OID_SIG_ECDSA_WITH_SHA512,
        };
        let Some(certificate) = self.0.get_ref().1.peer_certificates().and_then(<[_]>::first) else {
            return ChannelBinding::none();
        };
        let Ok((_, parsed)) = x509_parser::parse_x509_certificate(certificate) else {
            return ChannelBinding::none();
        };
        let signature = &parsed.signature_algorithm.algorithm;
        let hash = if [OID_PKCS1_SHA384WITHRSA, OID_SIG_ECDSA_WITH_SHA384].contains(signature) {
            &digest::SHA384
        } else if [OID_PKCS1_SHA512WITHRSA, OID_SIG_ECDSA_WITH_SHA512].contains(signature) {
            &digest::SHA512
        } else {
            &digest::SHA256
        };
        ChannelBinding::tls_server_end_point(digest::digest(hash, certificate).as_ref().to_vec())
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// What a failure to reach Postgres names: the variables to look at.
#[must_use]
pub fn postgres_variables(database: &PostgresConfig) -> &'static str {
    match (database.ssl_mode, &database.ca) {
        (SslMode::VerifyCa | SslMode::VerifyFull, Some(_)) => {
            "IDENTSPHERE_DATABASE_URL (certificate checked against IDENTSPHERE_DATABASE_CA_FILE)"
        }
        (SslMode::VerifyCa | SslMode::VerifyFull, None) => {
            "IDENTSPHERE_DATABASE_URL (certificate checked against the system's CAs: IDENTSPHERE_DATABASE_CA_FILE \
             names another)"
        }
        _ => "IDENTSPHERE_DATABASE_URL",
    }
}
