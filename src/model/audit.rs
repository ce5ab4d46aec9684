//! Who acted on an organization, and its audit log.

use time::OffsetDateTime;
use uuid::Uuid;

/// Who acts on an organization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditActor {
    /// A signed-in user.
    User(Uuid),
    /// An API key (server to server).
    Key(Uuid),
    /// The operator, on the command line (`identsphere admin create-key`).
    Operator,
}

impl AuditActor {
    /// The stored form: the user's id or the key's id (neither for the operator).
    #[must_use]
    pub const fn columns(self) -> (Option<Uuid>, Option<Uuid>) {
        match self {
            Self::User(id) => (Some(id), None),
            Self::Key(id) => (None, Some(id)),
            Self::Operator => (None, None),
        }
    }
}

/// Who changes an organization, for its audit log: written in the same transaction as the change.
#[derive(Clone, Debug)]
pub struct Audit {
    /// When.
    pub at: OffsetDateTime,
    /// Who acts.
    pub actor: AuditActor,
    /// From where (their client address).
    pub ip: Option<String>,
    /// What, as `subject.verb` (`member.removed`).
    pub action: &'static str,
    /// What on: a user or invitation id, or the fields changed.
    pub target: Option<String>,
}

/// One entry of an organization's audit log.
#[derive(Clone, Debug)]
pub struct AuditEvent {
    /// Its id.
    pub id: Uuid,
    /// When.
    pub at: OffsetDateTime,
    /// The user who acted; `None` once deleted, or when a key acted.
    pub actor_id: Option<Uuid>,
    /// The API key that acted; `None` when a user did (or once the key is deleted).
    pub actor_key_id: Option<Uuid>,
    /// What.
    pub action: String,
    /// What on.
    pub target: Option<String>,
    /// From where.
    pub ip: Option<String>,
}
