//! Credentials and tokens: password hashing, the server's keys, minting and verifying JWTs.

pub mod imported;
pub mod keys;
pub mod oauth;
mod outbound;
pub mod password;
pub mod tokens;
