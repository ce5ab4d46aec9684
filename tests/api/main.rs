//! The API contract (`docs/api.md`), tested over real HTTP against real Postgres and Redis.
//!
//! One binary; each test spawns its own server with its own database and Redis key prefix.

// Tests fail by panicking: unwrap and expect are how they say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin;
mod authenticator;
mod bad_input;
mod cli;
mod cors;
mod docs;
mod embedded;
mod errors;
mod health;
mod helpers;
mod import;
mod integration_doc;
mod keys;
mod lifecycle;
mod limits;
mod login;
mod logout;
mod mfa;
mod openapi;
mod operations;
mod organizations;
mod passkeys;
mod policy;
mod provider;
mod provider_tests;
mod refresh;
mod register;
mod revocations;
mod session_view;
mod social;
mod sso;
mod store_tls;
mod tokens;
