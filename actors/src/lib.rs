//! IdentSphere's organization actors and the session-family state machine.
//!
//! - [`family`]: the pure, clock-injected rules of refresh rotation (no I/O).
//! - [`store`]: the storage seams the actors need; backends implement them.
//! - [`actor`] and [`registry`]: one actix actor per organization, reached through an [`OrgHandle`].

pub mod actor;
pub mod family;
pub mod registry;
pub mod store;

pub use actor::{Backend, FamilyError, Move, Policy, Rotation, RotationKind};
pub use family::{
    Aal, AuthMethod, FamilyRecord, RefreshPointer, RevokeReason, SessionRules, Spent, Standing, Subject, UserProfile,
};
pub use registry::{OrgHandle, Registry};
pub use store::{
    Changed, Check, Denylist, FamilyChange, FamilyStore, LoadedFamily, Origin, Revocation, RevocationPage, Revoked,
    Stamp, StoreError, TokenRef, VERSION_LIFETIME, mark_changed,
};
