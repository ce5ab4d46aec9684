//! A signing or MAC key as stored: sealed, with its schedule.

use time::OffsetDateTime;

/// What a stored key is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// RSA key signing access and mfa tokens.
    Rs256,
    /// Secret MAC-ing refresh tokens (only IdentSphere verifies them).
    Hs256,
}

impl KeyAlgorithm {
    /// The stored name, which is also the JWT `alg`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Hs256 => "HS256",
        }
    }

    /// Parses the stored name.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Rs256, Self::Hs256].into_iter().find(|a| a.as_str() == name)
    }
}

/// A key as stored: sealed under the key-encryption key, with its id as associated data.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// Key id (JWT `kid`).
    pub kid: String,
    /// What it is for.
    pub algorithm: KeyAlgorithm,
    /// `nonce || ciphertext || tag`.
    pub sealed: Vec<u8>,
    /// When it was generated (and published).
    pub created_at: OffsetDateTime,
    /// When it starts signing.
    pub activates_at: OffsetDateTime,
    /// When it leaves the JWKS; `None` while it is the newest of its algorithm.
    pub retires_at: Option<OffsetDateTime>,
    /// Its number among the keys of its algorithm, from 1.
    pub generation: i64,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey").field("kid", &self.kid).field("algorithm", &self.algorithm).finish_non_exhaustive()
    }
}
