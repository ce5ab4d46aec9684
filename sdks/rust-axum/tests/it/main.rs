//! The SDK against a real IdentSphere (started in this process on its own port and data directory)
//! and a real axum app using the crate, driven over real HTTP. The few tests that read process-wide
//! metrics run in a process of their own (`helpers::in_own_process`), so plain `cargo test` runs them
//! as faithfully as nextest.

// Tests fail by panicking: unwrap and expect are how they say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// The software passkey authenticator of the server's API tests: one implementation for both suites.
#[path = "../../../../tests/api/authenticator.rs"]
mod authenticator;
mod helpers;
mod jwks;
mod online;
mod revocations;
mod verify;
