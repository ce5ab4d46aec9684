//! A user's account as the flows read and write it: credentials, a new account, the session context,
//! second factors and single-use links.

use identsphere_actors::{FamilyRecord, UserProfile};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Audit, Email, Organization, Role};

/// A user with the password hash to check at sign-in.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The user.
    pub user: UserProfile,
    /// Disabled users cannot sign in.
    pub disabled: bool,
    /// PHC string; `None` for an account created through a sign-in provider that never set a password.
    pub password_hash: Option<String>,
}

/// The organization a new account joins.
#[derive(Clone, Debug)]
pub enum Joining {
    /// A new personal organization, owned by the new user.
    Personal {
        /// Its id.
        id: Uuid,
        /// Its slug.
        slug: String,
        /// Its name.
        name: String,
    },
    /// An existing organization that takes sign-ups, as a member.
    Existing(Uuid),
    /// The organization of an invitation, with its role; the invitation is spent in the same transaction.
    Invited {
        /// The organization.
        org_id: Uuid,
        /// The role invited to.
        role: Role,
        /// SHA-256 of the invitation's token.
        token_hash: SecretHash,
    },
    /// An organization an administrator adds the account to (admin API), with its audit entry.
    Added {
        /// The organization.
        org_id: Uuid,
        /// The role given.
        role: Role,
        /// Who added it: written in the same transaction.
        audit: Box<Audit>,
    },
}

/// Everything registering creates, in one transaction.
#[derive(Clone, Debug)]
pub struct NewAccount {
    /// The user's id.
    pub user_id: Uuid,
    /// Their email.
    pub email: Email,
    /// Optional display name.
    pub display_name: Option<String>,
    /// Argon2id PHC string; `None` for an account a sign-in provider created.
    pub password_hash: Option<String>,
    /// Whether the address is verified at creation: an accepted invitation or a provider's verified
    /// address proves it, typing it does not.
    pub email_verified: bool,
    /// The organization joined.
    pub joining: Joining,
    /// The provider identity the account is created through, linked in the same transaction.
    pub identity: Option<super::Identity>,
    /// The request's time.
    pub now: OffsetDateTime,
}

/// What `GET /v1/auth/session` shows, read in one go.
#[derive(Clone, Debug)]
pub struct SessionContext {
    /// The family.
    pub family: FamilyRecord,
    /// Its user.
    pub user: UserProfile,
    /// The user is disabled.
    pub user_disabled: bool,
    /// Its organization.
    pub organization: Organization,
    /// The user's role there; `None` if they left it since.
    pub role: Option<Role>,
    /// When the user's TOTP factor was confirmed; `None` without one.
    pub totp_confirmed_at: Option<OffsetDateTime>,
    /// The user's unused recovery codes (none without a confirmed factor).
    pub recovery_codes_left: u32,
}

/// A user's TOTP factor as stored.
#[derive(Clone)]
pub struct TotpFactor {
    /// The shared secret, sealed under the key-encryption key and bound to the user id.
    pub sealed_secret: Vec<u8>,
    /// When enrollment started.
    pub created_at: OffsetDateTime,
    /// When the first code confirmed it; `None` while the enrollment waits for one.
    pub confirmed_at: Option<OffsetDateTime>,
}

impl std::fmt::Debug for TotpFactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpFactor").field("confirmed_at", &self.confirmed_at).finish_non_exhaustive()
    }
}

/// SHA-256 of a high-entropy secret (a recovery code, a link token): what the stores keep instead.
pub type SecretHash = [u8; 32];

/// What a lifecycle link does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkPurpose {
    /// Proves the user receives mail at an address.
    VerifyEmail,
    /// Lets the user set a new password.
    ResetPassword,
}

impl LinkPurpose {
    /// The stable name, in stores.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
        }
    }
}

/// A lifecycle link to store: only the hash of its token is kept.
#[derive(Clone, Debug)]
pub struct NewLink {
    /// SHA-256 of the token in the link.
    pub token_hash: SecretHash,
    /// Whose account.
    pub user_id: Uuid,
    /// What it does.
    pub purpose: LinkPurpose,
    /// The address it was sent to.
    pub email: String,
    /// When it was made.
    pub created_at: OffsetDateTime,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
}

/// One of a user's session families, as their session list shows it.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    /// The family (`sid`).
    pub sid: Uuid,
    /// Its organization.
    pub org_id: Uuid,
    /// Its assurance level.
    pub aal: identsphere_actors::Aal,
    /// How the user signed in.
    pub auth_method: identsphere_actors::AuthMethod,
    /// When it started.
    pub created_at: OffsetDateTime,
    /// Its last refresh (or its start).
    pub last_used_at: OffsetDateTime,
    /// Its absolute end.
    pub expires_at: OffsetDateTime,
    /// The `User-Agent` it started with.
    pub user_agent: Option<String>,
    /// The client address it started from.
    pub ip: Option<String>,
}
