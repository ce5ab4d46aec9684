//! The HTTP client the SDK uses to reach IdentSphere (JWKS, discovery, revocation feed, online
//! mode): one per [`crate::IdentSphere`], with a timeout so a hung server cannot hold a poll or a
//! request forever. With the `rustls` feature it speaks HTTPS (rustls on aws-lc-rs).

use std::time::Duration;

use crate::BuildError;

/// A client with `timeout` on every call and no redirects (a redirected JWKS is not IdentSphere's).
pub(crate) fn client(timeout: Duration) -> Result<reqwest::Client, BuildError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("identsphere-axum/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| BuildError::Http(e.to_string()))
}
