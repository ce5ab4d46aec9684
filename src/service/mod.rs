//! The sign-in flows: register, login, refresh, logout and the session read; the second factor
//! (`mfa`) and the account lifecycle (`lifecycle`).
//!
//! Each flow takes validated domain values and `now` from the clock, talks to the stores through their
//! traits and to session families only through the organization actors, and mints tokens outside the
//! actors. No HTTP here: handlers map the results.

mod accounts;
mod admin;
mod core;
mod import;
mod lifecycle;
mod limits;
mod mfa;
mod organizations;
mod passkeys;
mod session_cache;
mod sessions;
mod social;
mod sso;

pub use admin::{Caller, KeyPrincipal, MintedKey, NewUser, PLATFORM_KEY_PREFIX, USER_PAGE_MAX, is_api_key, issue_key};
pub use core::{
    Collaborators, LogoutCredentials, LogoutScope, Principal, Registration, Service, Settings, SignIn, SocialSettings,
};
pub use import::{
    ImportJob, Importer, MAX_EXTERNAL_ID_CHARS, MAX_IMPORT_BYTES, MAX_IMPORT_LINE_BYTES, MAX_IMPORT_LINES,
};
pub use mfa::{FACTORS, Factor, LoginOutcome, MfaProof, SecondFactor, TotpEnrollment};
pub use organizations::{AUDIT_PAGE_MAX, NewOrganization};
pub use passkeys::{CEREMONY_TTL, PasskeyAsker};
pub use social::{Callback, Finished, Started};
pub use sso::{ConnectionUpdate, Discovered, NewConnection};
