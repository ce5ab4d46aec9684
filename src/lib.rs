//! IdentSphere: a multi-tenant authentication service over REST + JSON.
//!
//! The map is `docs/ARCHITECTURE.md`. In short: `routes` (handlers) call `service` (the sign-in flows),
//! which changes session families only through the organization actors (`identsphere-actors`) and
//! everything durable through the `store` traits; `auth` holds passwords, keys and tokens; `http` the
//! edge (extractors, cookies, CSRF, middleware); `clock` is the only reader of the system time.

pub mod app;
pub mod auth;
pub mod clock;
pub mod config;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod mail;
pub mod model;
pub mod routes;
pub mod service;
pub mod store;
pub mod telemetry;
