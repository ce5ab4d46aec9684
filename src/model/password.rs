//! `Password`: a password that passed the policy of `docs/api.md` (8 characters to 256 bytes, not common).
//!
//! The common-password list is the `passwords` frequency list of zxcvbn 4.5.0 (MIT, © 2016 Daniel
//! Wolf), reduced to the 11,611 entries of 8 characters or more: shorter ones fail on length anyway.

use std::collections::HashSet;
use std::sync::LazyLock;

use crate::error::ApiError;

const MIN_CHARS: usize = 8;
const MAX_BYTES: usize = 256;

static COMMON: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| include_str!("../auth/common-passwords.txt").lines().collect());

/// A password that passed the policy. Its `Debug` never shows it.
#[derive(Clone)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

impl Password {
    /// Checks `raw`, sent as `password`, against the policy.
    ///
    /// # Errors
    /// `ApiError::WeakPassword` saying which rule failed.
    pub fn parse(raw: String) -> Result<Self, ApiError> {
        Self::parse_field(raw, "password")
    }

    /// Checks `raw`, sent as the field `param`, against the policy.
    ///
    /// # Errors
    /// `ApiError::WeakPassword` saying which rule failed, naming `param`.
    pub fn parse_field(raw: String, param: &'static str) -> Result<Self, ApiError> {
        let weak = |message| Err(ApiError::WeakPassword { message, param });
        if raw.chars().count() < MIN_CHARS {
            return weak("password must be at least 8 characters");
        }
        if raw.len() > MAX_BYTES {
            return weak("password must be at most 256 bytes");
        }
        if COMMON.contains(raw.to_lowercase().as_str()) {
            return weak("password is too common");
        }
        Ok(Self(raw))
    }

    /// The password itself, for hashing.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enforces_length_in_characters_and_bytes() {
        assert!(Password::parse("short7!".into()).is_err());
        assert!(Password::parse("ÿÿÿÿÿÿÿÿ".into()).is_ok(), "8 characters, 16 bytes");
        assert!(Password::parse("x".repeat(256)).is_ok());
        assert!(Password::parse("x".repeat(257)).is_err());
    }

    #[test]
    fn refuses_common_passwords_whatever_their_case() {
        for common in ["password", "PASSWORD", "12345678", "iloveyou1", "Qwertyuiop"] {
            assert!(Password::parse(common.into()).is_err(), "{common}");
        }
        assert!(Password::parse("correct horse battery staple".into()).is_ok());
        assert!(COMMON.len() > 10_000);
    }

    #[test]
    fn debug_hides_the_password() {
        let p = Password::parse("tr0ub4dor&3-zebra".into()).unwrap();
        assert_eq!(format!("{p:?}"), "Password(..)");
    }
}
