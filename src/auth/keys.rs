//! The server's keys: the RS256 signing key (published in JWKS) and the refresh-token MAC key.
//!
//! Keys are generated on first start, sealed with AES-256-GCM under the key-encryption key and stored;
//! every replica opens the same ones. The parsed RSA key stays in memory: parsing it costs more than a
//! signature. This module must never hand out private material except to `tokens`.

use std::sync::Arc;

use actix_web::web::Bytes;
use anyhow::{Context as _, anyhow, bail};
use async_trait::async_trait;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair as _, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use identsphere_actors::StoreError;
use serde_json::json;
use time::OffsetDateTime;

use crate::config::KeyEncryptionKey;

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
    /// When it was generated.
    pub created_at: OffsetDateTime,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey").field("kid", &self.kid).field("algorithm", &self.algorithm).finish_non_exhaustive()
    }
}

/// Where keys are kept.
#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// The keys in use (not retired), newest first.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn active_keys(&self) -> Result<Vec<StoredKey>, StoreError>;

    /// Stores a new active key; `false` if another replica stored one for that algorithm first.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn insert_key(&self, key: &StoredKey) -> Result<bool, StoreError>;
}

/// The RSA key signing access tokens.
pub struct SigningKey {
    /// Key id: the RFC 7638 thumbprint of the public key.
    pub kid: String,
    /// The parsed key pair, kept to sign without re-parsing.
    pub pair: RsaKeyPair,
    /// Public modulus, big-endian.
    pub n: Vec<u8>,
    /// Public exponent, big-endian.
    pub e: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

/// The secret MAC-ing refresh tokens.
pub struct MacKey {
    /// Key id.
    pub kid: String,
    /// The secret.
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for MacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MacKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

/// The keys in use, opened.
#[derive(Debug)]
pub struct KeyRing {
    /// RSA signing keys, newest (the one signing) first.
    pub signing: Vec<Arc<SigningKey>>,
    /// Refresh MAC keys, newest first.
    pub mac: Vec<Arc<MacKey>>,
    /// The JWKS document, serialized once; cheap to clone into responses.
    pub jwks: Bytes,
}

impl KeyRing {
    /// Opens the stored keys, generating and storing the missing ones first.
    ///
    /// # Errors
    /// When the store fails, or a stored key cannot be opened (wrong key-encryption key).
    pub async fn load_or_create(
        store: &dyn KeyStore,
        kek: &KeyEncryptionKey,
        now: OffsetDateTime,
    ) -> anyhow::Result<Self> {
        let sealer = Sealer::new(kek)?;
        let mut stored = store.active_keys().await?;
        for algorithm in [KeyAlgorithm::Rs256, KeyAlgorithm::Hs256] {
            if stored.iter().any(|k| k.algorithm == algorithm) {
                continue;
            }
            let key = generate(algorithm, &sealer, now)?;
            if store.insert_key(&key).await? {
                tracing::info!(kid = %key.kid, algorithm = algorithm.as_str(), "generated a new key");
            }
            // Either ours or the one a concurrent replica stored first.
            stored = store.active_keys().await?;
        }
        Self::open(&stored, kek)
    }

    /// Opens stored keys with the key-encryption key.
    ///
    /// # Errors
    /// When a key does not open (another key-encryption key) or a kind of key is missing.
    pub fn open(stored: &[StoredKey], kek: &KeyEncryptionKey) -> anyhow::Result<Self> {
        let sealer = Sealer::new(kek)?;
        let mut ring = Self { signing: Vec::new(), mac: Vec::new(), jwks: Bytes::new() };
        for key in stored {
            let secret = sealer.open(key).with_context(|| {
                format!("opening key {}: is IDENTSPHERE_KEY_ENCRYPTION_KEY the one the keys were sealed with?", key.kid)
            })?;
            match key.algorithm {
                KeyAlgorithm::Rs256 => ring.signing.push(Arc::new(open_rsa(&key.kid, &secret)?)),
                KeyAlgorithm::Hs256 => ring.mac.push(Arc::new(MacKey { kid: key.kid.clone(), secret })),
            }
        }
        if ring.signing.is_empty() || ring.mac.is_empty() {
            bail!("the key store holds no usable keys");
        }
        let keys: Vec<_> = ring
            .signing
            .iter()
            .map(|k| {
                json!({"kty": "RSA", "kid": k.kid, "use": "sig", "alg": "RS256",
                       "n": B64URL.encode(&k.n), "e": B64URL.encode(&k.e)})
            })
            .collect();
        ring.jwks = serde_json::to_vec(&json!({ "keys": keys }))?.into();
        Ok(ring)
    }
}

fn generate(algorithm: KeyAlgorithm, sealer: &Sealer, now: OffsetDateTime) -> anyhow::Result<StoredKey> {
    let (kid, secret) = match algorithm {
        KeyAlgorithm::Rs256 => {
            let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| anyhow!("RSA key generation failed"))?;
            let der = pair.as_der().map_err(|_| anyhow!("RSA key encoding failed"))?;
            let (n, e) = public_components(&pair);
            (thumbprint(&n, &e), der.as_ref().to_vec())
        }
        KeyAlgorithm::Hs256 => {
            let mut secret = vec![0u8; 32];
            let mut id = [0u8; 12];
            SystemRandom::new().fill(&mut secret).map_err(|_| anyhow!("no randomness"))?;
            SystemRandom::new().fill(&mut id).map_err(|_| anyhow!("no randomness"))?;
            (format!("rt-{}", B64URL.encode(id)), secret)
        }
    };
    let sealed = sealer.seal(&kid, &secret)?;
    Ok(StoredKey { kid, algorithm, sealed, created_at: now })
}

fn open_rsa(kid: &str, pkcs8: &[u8]) -> anyhow::Result<SigningKey> {
    let pair = RsaKeyPair::from_pkcs8(pkcs8).map_err(|e| anyhow!("RSA key {kid} rejected: {e}"))?;
    let (n, e) = public_components(&pair);
    Ok(SigningKey { kid: kid.to_owned(), pair, n, e })
}

fn public_components(pair: &RsaKeyPair) -> (Vec<u8>, Vec<u8>) {
    let public = pair.public_key();
    (
        public.modulus().big_endian_without_leading_zero().to_vec(),
        public.exponent().big_endian_without_leading_zero().to_vec(),
    )
}

/// RFC 7638 JWK thumbprint (SHA-256, base64url): a key id any party can recompute.
fn thumbprint(n: &[u8], e: &[u8]) -> String {
    let canonical = format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, B64URL.encode(e), B64URL.encode(n));
    B64URL.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes()))
}

/// AES-256-GCM under the key-encryption key, binding each ciphertext to its key id.
struct Sealer {
    key: LessSafeKey,
}

impl Sealer {
    fn new(kek: &KeyEncryptionKey) -> anyhow::Result<Self> {
        let key = UnboundKey::new(&AES_256_GCM, &kek.0).map_err(|_| anyhow!("key-encryption key rejected"))?;
        Ok(Self { key: LessSafeKey::new(key) })
    }

    fn seal(&self, kid: &str, secret: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).map_err(|_| anyhow!("no randomness"))?;
        let mut in_out = secret.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(kid.as_bytes()), &mut in_out)
            .map_err(|_| anyhow!("sealing key {kid} failed"))?;
        Ok([nonce.as_slice(), &in_out].concat())
    }

    fn open(&self, key: &StoredKey) -> anyhow::Result<Vec<u8>> {
        let (nonce, sealed) = key.sealed.split_at_checked(NONCE_LEN).ok_or_else(|| anyhow!("sealed key too short"))?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| anyhow!("bad nonce"))?;
        let mut in_out = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(key.kid.as_bytes()), &mut in_out)
            .map_err(|_| anyhow!("authentication failed"))?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_their_kek_and_kid() {
        let sealer = Sealer::new(&KeyEncryptionKey([7; 32])).unwrap();
        let now = OffsetDateTime::UNIX_EPOCH;
        let key = generate(KeyAlgorithm::Hs256, &sealer, now).unwrap();
        let secret = sealer.open(&key).unwrap();
        assert_eq!(secret.len(), 32);
        assert!(!key.sealed.windows(32).any(|w| w == secret.as_slice()), "stored in the clear");

        let other = Sealer::new(&KeyEncryptionKey([8; 32])).unwrap();
        assert!(other.open(&key).is_err());
        let moved = StoredKey { kid: "rt-other".into(), ..key };
        assert!(sealer.open(&moved).is_err());
    }

    #[test]
    fn rsa_keys_round_trip_and_their_kid_is_the_jwk_thumbprint() {
        let sealer = Sealer::new(&KeyEncryptionKey([1; 32])).unwrap();
        let key = generate(KeyAlgorithm::Rs256, &sealer, OffsetDateTime::UNIX_EPOCH).unwrap();
        let opened = open_rsa(&key.kid, &sealer.open(&key).unwrap()).unwrap();
        assert_eq!(opened.e, vec![1, 0, 1]);
        assert_eq!(opened.n.len(), 256);
        assert_eq!(thumbprint(&opened.n, &opened.e), key.kid);
        assert_eq!(key.kid.len(), 43);
    }
}
