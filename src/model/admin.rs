//! API keys and the admin API's view of users.

use identsphere_actors::UserProfile;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Role, SecretHash};

/// A secret API key as stored: the hash of its secret, never the secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    /// Its id, also the public part of the key.
    pub id: Uuid,
    /// The organization it acts for; `None` for a platform key (every organization).
    pub org_id: Option<Uuid>,
    /// What it is for, as its creator named it.
    pub name: String,
    /// SHA-256 of the secret part.
    pub secret_hash: SecretHash,
    /// Who created it (`None` for the command line, or once deleted).
    pub created_by: Option<Uuid>,
    /// When.
    pub created_at: OffsetDateTime,
    /// Its last use (kept to the minute).
    pub last_used_at: Option<OffsetDateTime>,
    /// Revoked keys authenticate nothing.
    pub revoked: bool,
}

/// A member as the admin API shows them.
#[derive(Clone, Debug)]
pub struct OrgUser {
    /// The user.
    pub user: UserProfile,
    /// Their role.
    pub role: Role,
    /// When they joined.
    pub joined_at: OffsetDateTime,
    /// An administrator disabled them in this organization.
    pub disabled: bool,
    /// Their id in the system they were imported from.
    pub external_id: Option<String>,
}

/// Which members a listing wants.
#[derive(Clone, Debug, Default)]
pub struct UserQuery {
    /// Only emails containing this (lower-case) text.
    pub email_contains: Option<String>,
    /// Only the member imported with this id.
    pub external_id: Option<String>,
    /// Only emails after this normalized email (the cursor of the page before).
    pub after: Option<String>,
    /// At most this many.
    pub limit: u32,
}
