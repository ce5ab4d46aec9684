//! The SDK against a real IdentSphere (started in this process on its own port and data directory)
//! and a real axum app using the crate, driven over real HTTP.

// Tests fail by panicking: unwrap and expect are how they say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod helpers;
mod jwks;
mod online;
mod revocations;
mod verify;
