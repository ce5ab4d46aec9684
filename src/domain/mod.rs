//! Validated newtypes: once a value has one of these types, it has passed its rules.

mod email;
mod password;

pub use email::{Email, normalize as normalize_email};
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
    /// Reads a client's `organization` field: a UUID is an id, anything else a slug. `None` when it
    /// cannot name any organization (slugs are 1 to 63 of `a-z`, `0-9` and `-`), so it is never sent to
    /// a store.
    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        if let Ok(id) = Uuid::parse_str(raw) {
            return Some(Self::Id(id));
        }
        let slug = raw.to_ascii_lowercase();
        let valid = (1..=63).contains(&slug.len()) && slug.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        valid.then_some(Self::Slug(slug))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organization_references_are_ids_or_plausible_slugs() {
        let id = Uuid::new_v4();
        assert_eq!(OrgRef::parse(&format!(" {id} ")), Some(OrgRef::Id(id)));
        assert_eq!(OrgRef::parse("Acme-Corp"), Some(OrgRef::Slug("acme-corp".into())));
        for bad in ["", "a b", "a\0b", "acme/../x", "ünïcode", &"a".repeat(64)] {
            assert_eq!(OrgRef::parse(bad), None, "{bad:?}");
        }
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

    /// Whether this role includes everything `other` may do.
    #[must_use]
    pub const fn at_least(self, other: Self) -> bool {
        self.rank() >= other.rank()
    }

    const fn rank(self) -> u8 {
        match self {
            Self::Owner => 2,
            Self::Admin => 1,
            Self::Member => 0,
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
