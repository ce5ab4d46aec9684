//! The HTTP edge: body extraction, credentials and cookies, and the outermost middleware.

pub mod client_ip;
pub mod credentials;
pub mod json;
pub mod middleware;
