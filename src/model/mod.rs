//! The records the service works with, and the validated newtypes a client's input becomes: once a value
//! has one of these types, it has passed its rules. No I/O here: the stores read and write these, the
//! routes show them.

mod account;
mod admin;
mod audit;
mod display;
mod email;
mod identity;
mod import;
mod json;
mod key;
mod member;
mod organization;
mod passkey;
mod password;
mod rate;
mod sso;

pub use account::{
    Credentials, Joining, LinkPurpose, NewAccount, NewLink, SecretHash, SessionContext, SessionInfo, TotpFactor,
};
pub use admin::{ApiKey, OrgUser, UserQuery};
pub use audit::{Audit, AuditActor, AuditEvent};
pub use display::{MAX_DISPLAY_NAME, display_text};
pub use email::{Email, normalize as normalize_email};
pub use identity::{Identity, OAuthFlow, PendingSignIn};
pub use identsphere_actors::{FamilyRecord, SessionRules, UserProfile};
pub use import::{ExportedUser, ImportOutcome, ImportedUser};
pub use json::parse_json;
pub use key::{KeyAlgorithm, StoredKey};
pub use member::{Invitation, Member, MembershipChange, MembershipOutcome, Role};
pub use organization::{
    ACCESS_TTL_FLOOR, OrgPolicy, OrgRateLimits, OrgRef, OrgUpdate, Organization, PolicyAsked, PolicyUpdate,
    REFRESH_TTL_FLOOR, SLUG_PATTERN, SignupMode, admit, drawn_slug, parse_slug, personal_slug, session_rules,
    takes_domain,
};
pub use passkey::{Ceremony, CeremonyFor, Passkey, PasskeyUse};
pub use password::Password;
pub use rate::Rate;
pub use sso::{SsoConnection, SsoDomain, connection_of, domain_of, parse_domains};
