//! Validated newtypes: once a value has one of these types, it has passed its rules.

mod email;
mod password;

pub use email::Email;
pub use password::Password;

use uuid::Uuid;

/// An organization named by a client: by id or by slug.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrgRef {
    /// By id.
    Id(Uuid),
    /// By slug (lower-cased).
    Slug(String),
}

impl OrgRef {
    /// Reads a client's `organization` field: a UUID is an id, anything else a slug.
    #[must_use]
    pub fn parse(raw: &str) -> Self {
        let raw = raw.trim();
        Uuid::parse_str(raw).map_or_else(|_| Self::Slug(raw.to_ascii_lowercase()), Self::Id)
    }
}

/// A member's role in an organization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Full control, including the organization itself.
    Owner,
    /// Manages members and settings.
    Admin,
    /// Uses the organization.
    Member,
}

impl Role {
    /// The stable storage and wire name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Member => "member",
        }
    }

    /// Parses the stable name.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "owner" => Some(Self::Owner),
            "admin" => Some(Self::Admin),
            "member" => Some(Self::Member),
            _ => None,
        }
    }
}
