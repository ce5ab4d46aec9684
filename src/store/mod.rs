//! Storage: narrow traits over what the service needs, and their backends.
//!
//! Handlers and actors see only the traits; `postgres` (everything durable) with `redis` (the denylist)
//! implement them for production, `embedded` (one SQLite file) for a single node. Implementations hold
//! no business rules and map their failures to `StoreError` (unreachable = `Unavailable`, unique
//! violation = `Conflict`).

pub mod embedded;
pub mod postgres;
pub mod redis;
pub mod tls;

use std::sync::Arc;

use async_trait::async_trait;
pub use identsphere_actors::{Denylist, FamilyStore, StoreError};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::model::{
    ApiKey, Audit, AuditEvent, Credentials, ExportedUser, Identity, ImportOutcome, ImportedUser, Invitation, Member,
    MembershipChange, MembershipOutcome, NewAccount, NewLink, OrgRef, OrgUpdate, OrgUser, Organization, Passkey,
    PasskeyUse, Rate, Role, SecretHash, SessionContext, SessionInfo, SsoConnection, StoredKey, TotpFactor, UserProfile,
    UserQuery,
};

/// Counts a failure of `store` (`postgres`, `redis`, `embedded`) and passes it on. Conflicts are not
/// counted: a taken email is a normal answer, not a store in trouble.
#[must_use]
pub(crate) fn counted(store: &'static str, err: StoreError) -> StoreError {
    let kind = match &err {
        StoreError::Unavailable(_) => Some("unavailable"),
        StoreError::Internal(_) => Some("internal"),
        StoreError::Conflict(_) => None,
    };
    if let Some(kind) = kind {
        metrics::counter!("identsphere_store_errors_total", "store" => store, "kind" => kind).increment(1);
    }
    err
}

/// Users, organizations, memberships and credentials.
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    /// Finds an organization by id or slug.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn find_org(&self, org: &OrgRef) -> Result<Option<Organization>, StoreError>;

    /// Creates the user, their password credential and their membership in one transaction.
    ///
    /// # Errors
    /// `StoreError::Conflict` when the email (or a personal slug) is taken.
    async fn create_account(&self, account: &NewAccount) -> Result<UserProfile, StoreError>;

    /// The user signing in with this (normalized) email, with their password hash.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn credentials(&self, email_normalized: &str) -> Result<Option<Credentials>, StoreError>;

    /// Replaces a password hash (re-hash with new parameters).
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn set_password_hash(&self, user_id: Uuid, hash: &str, now: OffsetDateTime) -> Result<(), StoreError>;

    /// The user's role in `org_id`, if a member.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn role(&self, user_id: Uuid, org_id: Uuid) -> Result<Option<Role>, StoreError>;

    /// The organization the user used most recently.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn most_recent_org(&self, user_id: Uuid) -> Result<Option<Organization>, StoreError>;

    /// Marks the membership as used now (login picks the most recent one).
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn touch_membership(&self, user_id: Uuid, org_id: Uuid, now: OffsetDateTime) -> Result<(), StoreError>;

    /// A family with its user, organization and role.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn session_context(&self, sid: Uuid) -> Result<Option<SessionContext>, StoreError>;

    /// The user's live families, as `(sid, org_id)`.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn live_families(&self, user_id: Uuid, now: OffsetDateTime) -> Result<Vec<(Uuid, Uuid)>, StoreError>;
}

/// Proving an address its account never had verified (`?1`: the user), after a take-over removed the password
/// or a reset replaced it: whatever else its former holder set up goes, or they would keep a way into the account
/// of its proven owner (pre-account hijacking). A verified account keeps them; the address is verified last.
pub(crate) const PROVEN_ADDRESS_SQL: [&str; 5] = [
    "DELETE FROM passkeys WHERE user_id = ?1 AND ?1 IN (SELECT id FROM users WHERE NOT email_verified)",
    "DELETE FROM totp_factors WHERE user_id = ?1 AND ?1 IN (SELECT id FROM users WHERE NOT email_verified)",
    "DELETE FROM recovery_codes WHERE user_id = ?1 AND ?1 IN (SELECT id FROM users WHERE NOT email_verified)",
    "DELETE FROM identities WHERE user_id = ?1 AND ?1 IN (SELECT id FROM users WHERE NOT email_verified)",
    "UPDATE users SET email_verified = true WHERE id = ?1",
];

/// What `create_account` reports as its conflict when the invitation it was to spend no longer works.
pub const INVITATION_SPENT: &str = "invitation_spent";

/// Spends a waiting, unexpired invitation for the account with this email (the binding), once.
macro_rules! spend_invitation_sql {
    ($p:literal) => {
        concat!(
            "UPDATE invitations SET accepted_at = ",
            $p,
            "3, accepted_by = ",
            $p,
            "2 WHERE token_hash = ",
            $p,
            "1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > ",
            $p,
            "3 AND email_normalized = ",
            $p,
            "4"
        )
    };
}
pub(crate) use spend_invitation_sql;

/// Second factors: TOTP, recovery codes, and single-use tokens.
#[async_trait]
pub trait FactorStore: Send + Sync + 'static {
    /// The user's TOTP factor, confirmed or waiting for its first code.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn totp(&self, user_id: Uuid) -> Result<Option<TotpFactor>, StoreError>;

    /// Starts (or restarts) a TOTP enrollment with a new sealed secret. Returns `false`, changing
    /// nothing, when the user already has a confirmed factor.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn begin_totp(&self, user_id: Uuid, sealed_secret: &[u8], now: OffsetDateTime) -> Result<bool, StoreError>;

    /// Confirms a waiting enrollment with the time step of its first code and replaces the user's
    /// recovery codes, in one transaction. Returns `false` when there was no enrollment waiting.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn confirm_totp(
        &self,
        user_id: Uuid,
        step: i64,
        recovery_codes: &[SecretHash],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Accepts time step `step` of a confirmed factor, once: `false` when it (or a later one) was
    /// accepted before, which is a replayed code.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn accept_totp_step(&self, user_id: Uuid, step: i64) -> Result<bool, StoreError>;

    /// Spends one of the user's unused recovery codes: `false` when no unused code has this hash.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn spend_recovery_code(
        &self,
        user_id: Uuid,
        code: &SecretHash,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Removes the user's TOTP factor and recovery codes: `false` when there was no factor.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn remove_totp(&self, user_id: Uuid) -> Result<bool, StoreError>;

    /// Marks the single-use token `jti` spent until `expires_at`: `false` when it was spent before.
    /// Entries that expired by `now` are dropped on the way.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn spend_once(&self, jti: Uuid, expires_at: OffsetDateTime, now: OffsetDateTime) -> Result<bool, StoreError>;

    /// Whether the single-use token `jti` was spent (and has not expired since).
    ///
    /// # Errors
    /// Unreachable store.
    async fn spent(&self, jti: Uuid) -> Result<bool, StoreError>;
}

/// The account lifecycle: email verification, password reset and change.
#[async_trait]
pub trait LifecycleStore: Send + Sync + 'static {
    /// The user with this id, with their password hash.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn user(&self, user_id: Uuid) -> Result<Option<Credentials>, StoreError>;

    /// Stores a new link.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn add_link(&self, link: &NewLink) -> Result<(), StoreError>;

    /// Spends an unexpired, unused email-verification link and marks the address it was sent to
    /// verified, if it is still the user's. Returns the user, or `None` when the link does not work.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn verify_email(&self, token_hash: &SecretHash, now: OffsetDateTime) -> Result<Option<Uuid>, StoreError>;

    /// Spends an unexpired, unused password-reset link, sets the new password hash and spends the user's
    /// other reset links, in one transaction; the link proved the address (`PROVEN_ADDRESS_SQL`). Returns the
    /// user, or `None` when the link does not work.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn reset_password(
        &self,
        token_hash: &SecretHash,
        password_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Uuid>, StoreError>;

    /// Sets a new password hash chosen by the user and spends their outstanding reset links.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn change_password(&self, user_id: Uuid, password_hash: &str, now: OffsetDateTime) -> Result<(), StoreError>;
}

/// Organizations, their members, and users' session lists.
#[async_trait]
pub trait OrganizationStore: Send + Sync + 'static {
    /// Creates an organization with `owner` as its owner, in one transaction.
    ///
    /// # Errors
    /// `StoreError::Conflict("organizations_slug_key")` when the slug is taken.
    async fn create_org(&self, org: &Organization, owner: Uuid, audit: &Audit) -> Result<(), StoreError>;

    /// The organizations the user is a member of, with their role, by name.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn orgs_of(&self, user_id: Uuid) -> Result<Vec<(Organization, Role)>, StoreError>;

    /// Applies `update`; returns the organization afterwards, `None` if there is none with this id.
    ///
    /// # Errors
    /// `StoreError::Conflict("organizations_slug_key")` when the new slug is taken.
    async fn update_org(
        &self,
        org_id: Uuid,
        update: &OrgUpdate,
        audit: &Audit,
    ) -> Result<Option<Organization>, StoreError>;

    /// The members, owners first, then by join time.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn members(&self, org_id: Uuid) -> Result<Vec<Member>, StoreError>;

    /// Changes a membership, serialized per organization so that two concurrent changes cannot leave it
    /// without an owner.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn change_membership(
        &self,
        org_id: Uuid,
        user_id: Uuid,
        change: MembershipChange,
        audit: &Audit,
    ) -> Result<MembershipOutcome, StoreError>;

    /// Stores a new invitation with the hash of its token.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn add_invitation(
        &self,
        invitation: &Invitation,
        token_hash: &SecretHash,
        audit: &Audit,
    ) -> Result<(), StoreError>;

    /// The organization's invitations still waiting at `now`, oldest first.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn invitations(&self, org_id: Uuid, now: OffsetDateTime) -> Result<Vec<Invitation>, StoreError>;

    /// Revokes a waiting invitation of the organization: `false` when there is none with this id.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn revoke_invitation(&self, org_id: Uuid, id: Uuid, audit: &Audit) -> Result<bool, StoreError>;

    /// The waiting, unexpired invitation with this token.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn invitation(&self, token_hash: &SecretHash, now: OffsetDateTime) -> Result<Option<Invitation>, StoreError>;

    /// Spends the waiting, unexpired invitation with this token for `user_id` and makes them a member with
    /// its role (an existing membership stays as it is), in one transaction (the audit entry's target is
    /// the invitation). `None` when the invitation does not work (any more).
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn accept_invitation(
        &self,
        token_hash: &SecretHash,
        user_id: Uuid,
        audit: &Audit,
    ) -> Result<Option<Invitation>, StoreError>;

    /// Makes `user_id` a member of `org_id` because the organization takes sign-ups of the domain of
    /// their verified address, with `audit` in the same transaction. `false` when they already have a
    /// membership there (a disabled one included: that stays as the organization left it).
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn join_by_domain(&self, user_id: Uuid, org_id: Uuid, audit: &Audit) -> Result<bool, StoreError>;

    /// The organization's audit log, newest first: at most `limit` entries older than `before` (an entry's
    /// time and id) when given.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn audit_events(
        &self,
        org_id: Uuid,
        before: Option<(OffsetDateTime, Uuid)>,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, StoreError>;

    /// The user's live session families, newest first.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn sessions(&self, user_id: Uuid, now: OffsetDateTime) -> Result<Vec<SessionInfo>, StoreError>;
}

/// The admin API's store: API keys and the users of an organization (membership changes go through
/// `OrganizationStore::change_membership`).
#[async_trait]
pub trait AdminStore: Send + Sync + 'static {
    /// Stores a new key, with the audit entry of its organization (none for a platform key).
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn add_key(&self, key: &ApiKey, audit: Option<&Audit>) -> Result<(), StoreError>;

    /// The key with this id, revoked or not.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn key(&self, id: Uuid) -> Result<Option<ApiKey>, StoreError>;

    /// The organization's keys, oldest first.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn keys(&self, org_id: Uuid) -> Result<Vec<ApiKey>, StoreError>;

    /// Revokes a live key of the organization: `false` when it has none with this id.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn revoke_key(&self, org_id: Uuid, id: Uuid, audit: &Audit) -> Result<bool, StoreError>;

    /// Records an action that changes nothing stored (sessions ended) in the organization's audit log.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn record(&self, org_id: Uuid, audit: &Audit) -> Result<(), StoreError>;

    /// Records a use of the key at `now` (written at most once a minute).
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn touch_key(&self, id: Uuid, now: OffsetDateTime) -> Result<(), StoreError>;

    /// A page of the organization's members by email.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn org_users(&self, org_id: Uuid, query: &UserQuery) -> Result<Vec<OrgUser>, StoreError>;

    /// One member of the organization.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn org_user(&self, org_id: Uuid, user_id: Uuid) -> Result<Option<OrgUser>, StoreError>;

    /// Imports a batch in one transaction: each address without an account gets one (user, password hash,
    /// membership, confirmed TOTP factor), with an audit entry `user.imported` in `audit`'s name; an address
    /// whose account is a member changes nothing; one whose account is not is `Taken`, or, with
    /// `join_existing`, becomes a member with the line's role (`member.imported`). One outcome per user,
    /// in order.
    ///
    /// # Errors
    /// `StoreError` when the store fails (nothing of the batch is written).
    async fn import_users(
        &self,
        org_id: Uuid,
        users: &[ImportedUser],
        join_existing: bool,
        audit: &Audit,
    ) -> Result<Vec<ImportOutcome>, StoreError>;

    /// A page of the organization's members for the export, by user id after `after`.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn export_users(
        &self,
        org_id: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<ExportedUser>, StoreError>;
}

/// Shared rate-limit counters (GCRA: one "theoretical arrival time" per key), the same for every replica.
#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Whether an event for `key` is allowed at `now` under `rate`; counts it when `consume` and allowed.
    /// Returns `None` when allowed, or how long to wait.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn check(
        &self,
        key: &str,
        rate: Rate,
        consume: bool,
        now: OffsetDateTime,
    ) -> Result<Option<time::Duration>, StoreError>;
}

/// The durable record the denylist is rebuilt from when its store lost its data (Redis restarted without
/// persistence): every family revoked since a time, with when. Access tokens denied one by one need no
/// record of their own: each such denial (a logout) ends the token's family too.
#[async_trait]
pub trait RevocationLog: Send + Sync + 'static {
    /// The families revoked at or after `since`, with the time each was revoked.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn revoked_since(&self, since: OffsetDateTime) -> Result<Vec<(Uuid, OffsetDateTime)>, StoreError>;
}

/// A backing service whose reachability `/readyz` reports.
#[async_trait]
pub trait Probe: Send + Sync + 'static {
    /// The name `/readyz` shows.
    fn name(&self) -> &'static str;

    /// Answers when the service does.
    ///
    /// # Errors
    /// `StoreError::Unavailable` when it does not.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Closes its connections (at shutdown); later calls fail as unavailable.
    fn close(&self) {}
}

/// Passkeys (durable).
#[async_trait]
pub trait PasskeyStore: Send + Sync + 'static {
    /// Registers `passkey`.
    ///
    /// # Errors
    /// `Conflict` when its credential id is registered already, to anyone.
    async fn add_passkey(&self, passkey: &Passkey) -> Result<(), StoreError>;

    /// The user's passkeys, oldest first.
    ///
    /// # Errors
    /// Unreachable store.
    async fn passkeys(&self, user_id: Uuid) -> Result<Vec<Passkey>, StoreError>;

    /// The passkey with this WebAuthn credential id, whoever's it is.
    ///
    /// # Errors
    /// Unreachable store.
    async fn passkey_by_credential(&self, credential_id: &[u8]) -> Result<Option<Passkey>, StoreError>;

    /// Renames one of the user's passkeys: the passkey after, or `None` when the user has no such one.
    ///
    /// # Errors
    /// Unreachable store.
    async fn rename_passkey(&self, user_id: Uuid, id: Uuid, name: &str) -> Result<Option<Passkey>, StoreError>;

    /// Deletes one of the user's passkeys; `false` when the user has no such one.
    ///
    /// # Errors
    /// Unreachable store.
    async fn remove_passkey(&self, user_id: Uuid, id: Uuid) -> Result<bool, StoreError>;

    /// Records a use of a passkey, atomically with the counter check: `false` (nothing written) when the
    /// passkey is gone or its stored counter is not below the new one, unless both are zero (an
    /// authenticator that keeps no counter).
    ///
    /// # Errors
    /// Unreachable store.
    async fn use_passkey(&self, used: &PasskeyUse) -> Result<bool, StoreError>;
}

/// Sign-in provider identities (durable).
#[async_trait]
pub trait IdentityStore: Send + Sync + 'static {
    /// The identity `(provider, subject)`, whoever's it is.
    ///
    /// # Errors
    /// Unreachable store.
    async fn identity(&self, provider: &str, subject: &str) -> Result<Option<Identity>, StoreError>;

    /// The user's identities, oldest first.
    ///
    /// # Errors
    /// Unreachable store.
    async fn identities(&self, user_id: Uuid) -> Result<Vec<Identity>, StoreError>;

    /// Links `identity` to its user.
    ///
    /// # Errors
    /// `Conflict` when the `(provider, subject)` pair is linked already, to anyone.
    async fn add_identity(&self, identity: &Identity) -> Result<(), StoreError>;

    /// Records a sign-in with the identity `id`, with the address the provider gave.
    ///
    /// # Errors
    /// Unreachable store.
    async fn identity_used(&self, id: Uuid, email: Option<&str>, now: OffsetDateTime) -> Result<(), StoreError>;

    /// Unlinks one of the user's identities; `false` when the user has no such one.
    ///
    /// # Errors
    /// Unreachable store.
    async fn remove_identity(&self, user_id: Uuid, id: Uuid) -> Result<bool, StoreError>;

    /// Hands an account whose address was never verified to the provider identity that proved it: the
    /// password and every other credential go (`PROVEN_ADDRESS_SQL`), the address becomes verified and
    /// `identity` is linked, in one transaction. The caller ends the sessions.
    ///
    /// # Errors
    /// `Conflict` when the identity is linked already.
    async fn take_over(&self, identity: &Identity) -> Result<(), StoreError>;
}

/// Organizations' SSO connections and the domains they claim (durable). Every change is written with its
/// audit entry, in the organization of the connection, in one transaction.
#[async_trait]
pub trait SsoStore: Send + Sync + 'static {
    /// The organization's connections, oldest first.
    ///
    /// # Errors
    /// Unreachable store.
    async fn connections(&self, org_id: Uuid) -> Result<Vec<SsoConnection>, StoreError>;

    /// The connection `id`, whichever organization's.
    ///
    /// # Errors
    /// Unreachable store.
    async fn connection(&self, id: Uuid) -> Result<Option<SsoConnection>, StoreError>;

    /// Stores a new connection; its domains are unverified whatever `connection` says.
    ///
    /// # Errors
    /// Unreachable store.
    async fn add_connection(&self, connection: &SsoConnection, audit: &Audit) -> Result<(), StoreError>;

    /// Replaces the connection's settings and domains: a domain it keeps keeps its verification, a new one
    /// starts unverified. `false` when the organization has no such connection.
    ///
    /// # Errors
    /// Unreachable store.
    async fn update_connection(&self, connection: &SsoConnection, audit: &Audit) -> Result<bool, StoreError>;

    /// Removes one of the organization's connections; `false` when it has no such one.
    ///
    /// # Errors
    /// Unreachable store.
    async fn remove_connection(&self, org_id: Uuid, id: Uuid, audit: &Audit) -> Result<bool, StoreError>;

    /// Marks `domain` verified for connection `id`; `false` when the connection does not claim it.
    ///
    /// # Errors
    /// `Conflict` when the domain is verified for another connection.
    async fn verify_domain(&self, org_id: Uuid, id: Uuid, domain: &str, audit: &Audit) -> Result<bool, StoreError>;

    /// The connection for which `domain` is verified.
    ///
    /// # Errors
    /// Unreachable store.
    async fn connection_for_domain(&self, domain: &str) -> Result<Option<SsoConnection>, StoreError>;

    /// The verified domains of the organization's enforcing connections, each with its connection: empty for
    /// almost every organization, so a sign-in pays one indexed read.
    ///
    /// # Errors
    /// Unreachable store.
    async fn enforced_domains(&self, org_id: Uuid) -> Result<Vec<(Uuid, String)>, StoreError>;
}

/// WebAuthn ceremonies in flight: short-lived and shared by every replica (Redis, or the embedded store).
#[async_trait]
pub trait CeremonyStore: Send + Sync + 'static {
    /// Keeps `ceremony` under `id` until `expires_at`.
    ///
    /// # Errors
    /// Unreachable store.
    async fn put_ceremony(
        &self,
        id: Uuid,
        ceremony: &[u8],
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Takes the ceremony `id` out, once: `None` when it is unknown, taken or expired.
    ///
    /// # Errors
    /// Unreachable store.
    async fn take_ceremony(&self, id: Uuid, now: OffsetDateTime) -> Result<Option<Vec<u8>>, StoreError>;
}

/// The backends of one running server.
#[derive(Clone)]
pub struct Stores {
    /// Users, organizations, memberships.
    pub accounts: Arc<dyn AccountStore>,
    /// Session families.
    pub families: Arc<dyn FamilyStore>,
    /// Organizations, members and session lists.
    pub organizations: Arc<dyn OrganizationStore>,
    /// Second factors and single-use tokens.
    pub factors: Arc<dyn FactorStore>,
    /// Email verification, password reset and change.
    pub lifecycle: Arc<dyn LifecycleStore>,
    /// Passkeys.
    pub passkeys: Arc<dyn PasskeyStore>,
    /// Sign-in provider identities.
    pub identities: Arc<dyn IdentityStore>,
    /// Organizations' SSO connections.
    pub sso: Arc<dyn SsoStore>,
    /// WebAuthn ceremonies in flight.
    pub ceremonies: Arc<dyn CeremonyStore>,
    /// Keys.
    pub keys: Arc<dyn KeyStore>,
    /// Access-token denylist.
    pub denylist: Arc<dyn Denylist>,
    /// Rate-limit counters.
    pub limiter: Arc<dyn RateLimiter>,
    /// API keys and the admin API's user management.
    pub admin: Arc<dyn AdminStore>,
    /// Everything `/readyz` checks.
    pub probes: Vec<Arc<dyn Probe>>,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let probes: Vec<_> = self.probes.iter().map(|p| p.name()).collect();
        f.debug_struct("Stores").field("probes", &probes).finish_non_exhaustive()
    }
}

/// Where keys are kept.
#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// The keys still published at `now` (not retired), newest generation first.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn published_keys(&self, now: OffsetDateTime) -> Result<Vec<StoredKey>, StoreError>;

    /// Stores `key` and, in the same transaction, schedules every older key of its algorithm that has no
    /// retirement yet to retire at `retire_others_at`. `false` when another replica stored that
    /// generation first.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn add_key(&self, key: &StoredKey, retire_others_at: Option<OffsetDateTime>) -> Result<bool, StoreError>;
}
