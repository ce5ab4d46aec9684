//! Users brought in from another system, and taken out again (`docs/migration.md`).

use identsphere_actors::UserProfile;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Email, Role};

/// One line of an import, checked: what the store writes if the address has no account yet.
#[derive(Clone, Debug)]
pub struct ImportedUser {
    /// The id the account gets if it is created (drawn before: the TOTP secret is sealed to it).
    pub user_id: Uuid,
    /// The address.
    pub email: Email,
    /// As the other system knew it.
    pub email_verified: bool,
    /// Optional display name.
    pub display_name: Option<String>,
    /// The role in the importing organization.
    pub role: Role,
    /// The hash as stored (`auth::imported::admit`); `None` for an account without a password.
    pub password_hash: Option<String>,
    /// When the other system created the account.
    pub created_at: OffsetDateTime,
    /// The other system's id for the user, kept on the membership and searchable.
    pub external_id: Option<String>,
    /// A confirmed TOTP secret, sealed to `user_id` as enrolment seals ours.
    pub sealed_totp: Option<Vec<u8>>,
}

/// What the store did with one imported user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportOutcome {
    /// A new account, with the line's id.
    Created,
    /// The address has an account that is (now) a member: nothing about it changed.
    Exists(Uuid),
    /// The address has an account outside the organization, which this import may not bring in.
    Taken,
}

/// A member as the export writes them: the import's fields.
#[derive(Clone, Debug)]
pub struct ExportedUser {
    /// The account.
    pub user: UserProfile,
    /// Their role in the organization.
    pub role: Role,
    /// The stored hash: our Argon2id, or an imported one not used since.
    pub password_hash: Option<String>,
    /// The other system's id, if imported with one.
    pub external_id: Option<String>,
    /// A confirmed TOTP factor's sealed secret.
    pub sealed_totp: Option<Vec<u8>>,
}
