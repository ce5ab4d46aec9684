//! The session-family state machine: what presenting a refresh token does to a family.
//!
//! Pure logic with the clock injected: it owns the rules of `docs/api.md` ("Sessions and refresh rotation")
//! and nothing else. It must not do I/O; the store applies a `Rotate` decision atomically (compare and
//! set on the current refresh token) and the actor serializes decisions within one process.

use std::fmt;

use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// Authenticator assurance level of a session family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Aal {
    /// One factor verified.
    Aal1,
    /// A second factor verified.
    Aal2,
}

/// How the user originally authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// Email and password.
    Password,
    /// A WebAuthn passkey.
    Passkey,
    /// A social OAuth provider.
    SocialOauth,
}

impl AuthMethod {
    /// Every method, in the order the API lists them.
    pub const ALL: [Self; 3] = [Self::Password, Self::Passkey, Self::SocialOauth];
}

/// Why a family was ended. Stored durably, so the names never change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RevokeReason {
    /// The user logged out of this family.
    Logout,
    /// The user logged out of every other family.
    LogoutOthers,
    /// The user logged out everywhere.
    LogoutGlobal,
    /// A spent refresh token came back after the grace window: a theft signal.
    RefreshTokenReused,
    /// The password was reset by email link: every family ends.
    PasswordReset,
    /// The user changed their password: every other family ends.
    PasswordChanged,
    /// The user's membership in the family's organization ended (removed, or left).
    MembershipEnded,
}

macro_rules! string_enum {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// The stable wire and storage name.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name),+ }
            }

            /// Parses the stable name back; `None` for anything else.
            #[must_use]
            pub fn parse(name: &str) -> Option<Self> {
                match name { $($name => Some(Self::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Self::parse(&name).ok_or_else(|| serde::de::Error::custom(format!("unknown {}: {name:?}", stringify!($ty))))
            }
        }
    };
}

string_enum!(Aal { Aal1 => "aal1", Aal2 => "aal2" });
string_enum!(AuthMethod { Password => "password", Passkey => "passkey", SocialOauth => "social_oauth" });
string_enum!(RevokeReason {
    Logout => "logout",
    LogoutOthers => "logout_others",
    LogoutGlobal => "logout_global",
    RefreshTokenReused => "refresh_token_reused",
    PasswordReset => "password_reset",
    PasswordChanged => "password_changed",
    MembershipEnded => "membership_ended",
});

/// The refresh token that is currently live in a family: its id and when it was issued.
///
/// Together with the family these determine the token's bytes, so a grace-window replay can hand back
/// the very same successor without storing the token itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefreshPointer {
    /// `jti` of the live refresh token.
    pub jti: Uuid,
    /// `iat` of the live refresh token.
    pub issued_at: OffsetDateTime,
}

/// The refresh token that was spent by the last rotation, kept to recognise a replay within the grace
/// window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spent {
    /// `jti` of the spent token.
    pub jti: Uuid,
    /// When it was spent.
    pub at: OffsetDateTime,
}

/// The durable record of one session family, as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FamilyRecord {
    /// Session family id (`sid`), the same across refreshes.
    pub sid: Uuid,
    /// The organization that owns the family (its actor serializes the family's rotations).
    pub org_id: Uuid,
    /// The user signed in.
    pub user_id: Uuid,
    /// Assurance level reached in this family.
    pub aal: Aal,
    /// How the user originally authenticated.
    pub auth_method: AuthMethod,
    /// When the user originally authenticated (`auth_time`).
    pub auth_time: OffsetDateTime,
    /// Absolute end of the family: no refresh after it, whatever happens.
    pub expires_at: OffsetDateTime,
    /// The live refresh token.
    pub current: RefreshPointer,
    /// The token the last rotation spent.
    pub previous: Option<Spent>,
    /// Set once the family is ended; never cleared.
    pub revoked: Option<RevokeReason>,
}

/// The user's public profile, as the token response shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserProfile {
    /// User id (`sub`).
    pub id: Uuid,
    /// The email as typed, for display and the `email` claim.
    pub email: String,
    /// Whether the email was verified.
    pub email_verified: bool,
    /// Optional display name.
    pub display_name: Option<String>,
    /// When the account was created.
    pub created_at: OffsetDateTime,
}

/// What an organization asks of the sessions it holds, read with the family so a refresh needs no
/// second read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRules {
    /// Only `aal2` sessions may refresh (the organization requires a second factor).
    pub mfa_required: bool,
    /// The sign-in methods whose sessions may refresh.
    pub auth_methods: Vec<AuthMethod>,
    /// The organization's access-token lifetime, when it sets one (the server's bound still applies).
    pub access_ttl: Option<Duration>,
}

impl Default for SessionRules {
    /// No second factor required, every method allowed, the server's lifetime.
    fn default() -> Self {
        Self { mfa_required: false, auth_methods: AuthMethod::ALL.to_vec(), access_ttl: None }
    }
}

/// Whether a family's subject lets it be refreshed, whatever the token presented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Nothing stands in the way.
    Allowed,
    /// The user or the organization is disabled.
    Disabled,
    /// The organization requires `aal2` and the family is at `aal1`.
    Aal2Required,
    /// The organization no longer allows the method the family signed in with.
    MethodNotAllowed,
}

/// The family's subject as it is right now, read with the family so a refresh needs no second read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    /// The user's profile.
    pub user: UserProfile,
    /// The user or the family's organization is disabled.
    pub disabled: bool,
    /// What the family's organization asks of its sessions.
    pub rules: SessionRules,
}

impl Subject {
    /// Whether `family` (as it would be after the operation) may be refreshed in this subject's
    /// organization.
    #[must_use]
    pub fn standing(&self, family: &FamilyRecord) -> Standing {
        if self.disabled {
            Standing::Disabled
        } else if !self.rules.auth_methods.contains(&family.auth_method) {
            Standing::MethodNotAllowed
        } else if self.rules.mfa_required && family.aal == Aal::Aal1 {
            Standing::Aal2Required
        } else {
            Standing::Allowed
        }
    }
}

/// What presenting a refresh token to a family must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The presented token is the live one: spend it and issue a successor.
    Rotate,
    /// The presented token was spent within the grace window: hand back the live successor, revoke nothing.
    Replay,
    /// A spent token came back after the grace window (or from further back): revoke the whole family.
    Reused,
    /// The family was already ended.
    Revoked,
    /// The family outlived its absolute lifetime.
    Expired,
    /// The subject's standing refuses any refresh (disabled, or the organization's rules).
    Refused(Standing),
}

/// Decides what presenting the refresh token `presented` at `now` does to `family`.
///
/// A token of the family that is neither live nor the just-spent one within `grace` can only be an
/// older, spent token (the store issued it under our key), so it counts as reuse.
#[must_use]
pub fn decide(
    family: &FamilyRecord,
    standing: Standing,
    presented: Uuid,
    now: OffsetDateTime,
    grace: Duration,
) -> Decision {
    if family.revoked.is_some() {
        return Decision::Revoked;
    }
    if now >= family.expires_at {
        return Decision::Expired;
    }
    if standing != Standing::Allowed {
        return Decision::Refused(standing);
    }
    if presented == family.current.jti {
        return Decision::Rotate;
    }
    match family.previous {
        Some(spent) if spent.jti == presented && now - spent.at <= grace => Decision::Replay,
        _ => Decision::Reused,
    }
}

impl FamilyRecord {
    /// A new family of `user_id` in `org_id`: it starts at `now` at `aal1` with a fresh live token, and ends
    /// `lifetime` later.
    #[must_use]
    pub fn start(
        user_id: Uuid,
        org_id: Uuid,
        auth_method: AuthMethod,
        now: OffsetDateTime,
        lifetime: Duration,
    ) -> Self {
        Self {
            sid: Uuid::new_v4(),
            org_id,
            user_id,
            aal: Aal::Aal1,
            auth_method,
            auth_time: now,
            expires_at: now + lifetime,
            current: RefreshPointer { jti: Uuid::new_v4(), issued_at: now },
            previous: None,
            revoked: None,
        }
    }

    /// The family after the live token is spent at `now` and `next` becomes live.
    #[must_use]
    pub fn rotated(&self, next: RefreshPointer, now: OffsetDateTime) -> Self {
        Self { current: next, previous: Some(Spent { jti: self.current.jti, at: now }), ..self.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GRACE: Duration = Duration::seconds(10);

    fn fresh(now: OffsetDateTime) -> FamilyRecord {
        FamilyRecord {
            sid: Uuid::from_u128(1),
            org_id: Uuid::from_u128(2),
            user_id: Uuid::from_u128(3),
            aal: Aal::Aal1,
            auth_method: AuthMethod::Password,
            auth_time: now,
            expires_at: now + Duration::days(30),
            current: RefreshPointer { jti: Uuid::from_u128(100), issued_at: now },
            previous: None,
            revoked: None,
        }
    }

    #[test]
    fn stable_names_round_trip() {
        for reason in [
            RevokeReason::Logout,
            RevokeReason::LogoutOthers,
            RevokeReason::LogoutGlobal,
            RevokeReason::RefreshTokenReused,
        ] {
            assert_eq!(RevokeReason::parse(reason.as_str()), Some(reason));
        }
        assert_eq!(Aal::parse("aal2"), Some(Aal::Aal2));
        assert_eq!(AuthMethod::parse("social_oauth"), Some(AuthMethod::SocialOauth));
        assert_eq!(AuthMethod::parse("Password"), None);
    }

    #[test]
    fn replay_is_allowed_up_to_the_end_of_the_grace_window_and_not_after() {
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let first = fresh(t0);
        let spent = first.current.jti;
        let next = RefreshPointer { jti: Uuid::from_u128(101), issued_at: t0 };
        let family = first.rotated(next, t0);
        assert_eq!(decide(&family, Standing::Allowed, spent, t0 + GRACE, GRACE), Decision::Replay);
        assert_eq!(
            decide(&family, Standing::Allowed, spent, t0 + GRACE + Duration::milliseconds(1), GRACE),
            Decision::Reused
        );
        assert_eq!(decide(&family, Standing::Allowed, spent, t0, Duration::ZERO), Decision::Replay);
        assert_eq!(decide(&family, Standing::Allowed, spent, t0 + Duration::SECOND, Duration::ZERO), Decision::Reused);
    }

    #[test]
    fn the_family_ends_at_its_absolute_lifetime() {
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let family = fresh(t0);
        let live = family.current.jti;
        assert_eq!(
            decide(&family, Standing::Allowed, live, family.expires_at - Duration::SECOND, GRACE),
            Decision::Rotate
        );
        assert_eq!(decide(&family, Standing::Allowed, live, family.expires_at, GRACE), Decision::Expired);
        assert_eq!(decide(&family, Standing::Disabled, live, t0, GRACE), Decision::Refused(Standing::Disabled));
    }

    #[derive(Clone, Debug)]
    enum Step {
        /// Present the token issued `back` rotations ago (0 = the live one), after `wait_ms`.
        Present {
            back: usize,
            wait_ms: i64,
        },
        Revoke,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            6 => (0usize..4, 0i64..15_000).prop_map(|(back, wait_ms)| Step::Present { back, wait_ms }),
            1 => Just(Step::Revoke),
        ]
    }

    proptest! {
        /// Any interleaving of rotate, replay and revoke keeps at most one live successor, a replay
        /// always names the live successor, and a revoked family never comes back.
        #[test]
        fn any_interleaving_keeps_one_successor_and_revocation_is_final(steps in prop::collection::vec(step(), 1..60)) {
            let mut now = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
            let mut family = fresh(now);
            let mut issued = vec![family.current.jti];
            let mut counter = 1000u128;
            for step in steps {
                let was_revoked = family.revoked.is_some();
                match step {
                    Step::Revoke => family.revoked = Some(RevokeReason::Logout),
                    Step::Present { back, wait_ms } => {
                        now += Duration::milliseconds(wait_ms);
                        let Some(&presented) = issued.iter().rev().nth(back) else { continue };
                        match decide(&family, Standing::Allowed, presented, now, GRACE) {
                            Decision::Rotate => {
                                prop_assert_eq!(presented, family.current.jti);
                                counter += 1;
                                let next = RefreshPointer { jti: Uuid::from_u128(counter), issued_at: now };
                                family = family.rotated(next, now);
                                issued.push(next.jti);
                            }
                            Decision::Replay => {
                                prop_assert_eq!(family.previous.map(|s| s.jti), Some(presented));
                                prop_assert_eq!(issued.last().copied(), Some(family.current.jti));
                            }
                            Decision::Reused => {
                                prop_assert_ne!(presented, family.current.jti);
                                family.revoked = Some(RevokeReason::RefreshTokenReused);
                            }
                            Decision::Revoked => prop_assert!(was_revoked),
                            Decision::Expired | Decision::Refused(_) => prop_assert!(false, "not reachable in this model"),
                        }
                    }
                }
                if was_revoked {
                    prop_assert!(family.revoked.is_some());
                    for &jti in &issued {
                        prop_assert_eq!(decide(&family, Standing::Allowed, jti, now, GRACE), Decision::Revoked);
                    }
                }
                let live = issued.iter().filter(|&&jti| decide(&family, Standing::Allowed, jti, now, GRACE) == Decision::Rotate).count();
                prop_assert!(live <= 1);
            }
        }
    }
}
