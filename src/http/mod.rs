//! The HTTP edge: body extraction, credentials and cookies, the client's address and the error envelope, and
//! the outermost middleware.

pub mod client_ip;
pub(crate) mod cors;
pub mod credentials;
pub mod error;
pub mod json;
pub mod middleware;
