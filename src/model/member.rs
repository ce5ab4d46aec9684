//! Members of an organization, changes to them, and invitations.

use identsphere_actors::UserProfile;
use time::OffsetDateTime;
use uuid::Uuid;

/// A member of an organization.
#[derive(Clone, Debug)]
pub struct Member {
    /// The user.
    pub user: UserProfile,
    /// Their role.
    pub role: Role,
    /// When they joined.
    pub joined_at: OffsetDateTime,
}

/// A change to one membership.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MembershipChange {
    /// Give the member this role.
    Role(Role),
    /// End the membership.
    Remove,
    /// End the membership and delete the account if it belongs to no other organization (admin API).
    Delete,
    /// Disable (`true`) or enable the membership (admin API): a disabled member is no member for
    /// signing in, switching or acting.
    Disable(bool),
}

impl MembershipChange {
    /// Whether the change takes an enabled owner away: refused for the organization's last one.
    #[must_use]
    pub const fn ends_ownership(self) -> bool {
        !matches!(self, Self::Role(Role::Owner) | Self::Disable(false))
    }
}

/// What a membership change did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MembershipOutcome {
    /// Applied.
    Done,
    /// The user is not a member.
    NotAMember,
    /// Refused: the organization would have no owner left.
    LastOwner,
}

/// An invitation waiting to be accepted.
#[derive(Clone, Debug)]
pub struct Invitation {
    /// Its id.
    pub id: Uuid,
    /// The organization it is into.
    pub org_id: Uuid,
    /// The invited address, as typed.
    pub email: String,
    /// The invited address, normalized: only this account may accept.
    pub email_normalized: String,
    /// The role it grants.
    pub role: Role,
    /// Who invited.
    pub invited_by: Option<Uuid>,
    /// When.
    pub created_at: OffsetDateTime,
    /// Until when it works.
    pub expires_at: OffsetDateTime,
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

    /// The role a client names in `role` (a body field, or an import line's).
    ///
    /// # Errors
    /// `invalid_request` naming `role`.
    pub fn from_field(raw: &str) -> Result<Self, crate::error::ApiError> {
        Self::parse(raw)
            .ok_or_else(|| crate::error::ApiError::invalid_field("role", "role must be owner, admin or member"))
    }
}
