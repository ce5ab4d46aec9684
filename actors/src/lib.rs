//! IdentSphere's organization actors and the session-family state machine.
//!
//! - [`family`]: the pure, clock-injected rules of refresh rotation (no I/O).
//! - [`ports`]: the storage seams the actors need (`FamilyStore`, `Denylist`); backends implement them.
//! - [`actor`] and [`registry`]: one actix actor per organization, reached through an [`OrgHandle`].

pub mod actor;
pub mod family;
pub mod ports;
pub mod registry;

pub use actor::{ActorSettings, Backend, FamilyError, Move, Rotation, RotationKind};
pub use family::{
    Aal, AuthMethod, FamilyRecord, RefreshPointer, RevokeReason, SessionRules, Spent, Standing, Subject, UserProfile,
};
pub use ports::{
    CLOCK_SKEW_ALLOWANCE, Changed, Check, Denylist, FamilyChange, FamilyStore, LoadedFamily, Origin, Revocation,
    RevocationPage, Revoked, Stamp, StoreError, TokenRef, VERSION_LIFETIME, mark_changed,
};
pub use registry::{OrgHandle, Registry};
