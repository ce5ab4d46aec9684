//! The server's keys: the RS256 signing key (published in JWKS) and the refresh-token MAC key.
//!
//! Keys are generated on first start, sealed with AES-256-GCM under the key-encryption key and stored;
//! every replica opens the same ones. Both kinds rotate on the same schedule and both are replaced by the
//! emergency rotation: a MAC key is never published, but a leaked one forges refresh tokens. The parsed
//! RSA key stays in memory: parsing it costs more than a signature. This module must never hand out
//! private material except to `tokens`.

use std::sync::Arc;

use actix_web::web::Bytes;
use anyhow::{Context as _, anyhow, bail};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair as _, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::config::KeyEncryptionKey;
use crate::model::{KeyAlgorithm, StoredKey};
use crate::store::KeyStore;

/// How long clients and caches may keep the JWKS (`Cache-Control: max-age`): a key is published at least
/// twice this long before it signs, and stays this long after its last token expires.
pub const JWKS_MAX_AGE: Duration = Duration::minutes(5);

/// When keys rotate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RotationSchedule {
    /// How long a key signs before the next one takes over; zero turns scheduled rotation off.
    pub interval: Duration,
    /// How long a new key is published before it signs: longer than any JWKS cache, and than any replica
    /// takes to load it.
    pub publish_ahead: Duration,
    /// How long a signing key stays published after it stops signing: its last tokens' lifetime plus the
    /// JWKS cache lifetime.
    pub keep_after: Duration,
    /// How long a MAC key stays after it stops MAC-ing: the lifetime of the refresh tokens it MACed last.
    pub mac_keep_after: Duration,
}

/// An RSA key signing access tokens.
pub struct SigningKey {
    /// Key id: the RFC 7638 thumbprint of the public key.
    pub kid: String,
    /// When it starts signing.
    pub activates_at: OffsetDateTime,
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

/// A secret MAC-ing refresh tokens.
pub struct MacKey {
    /// Key id.
    pub kid: String,
    /// When it starts MAC-ing.
    pub activates_at: OffsetDateTime,
    /// The secret.
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for MacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MacKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

/// The published keys, opened.
#[derive(Debug)]
pub struct KeyRing {
    /// RSA keys: the one signing, those about to, and those whose tokens may still be alive; newest first.
    pub signing: Vec<Arc<SigningKey>>,
    /// Refresh MAC keys, newest first.
    pub mac: Vec<Arc<MacKey>>,
    /// The JWKS document, serialized once; cheap to clone into responses.
    pub jwks: Bytes,
}

impl RotationSchedule {
    /// Rotation every `interval` (zero: never), for access tokens living `access_ttl` and refresh tokens
    /// `refresh_ttl`.
    #[must_use]
    pub fn new(interval: Duration, access_ttl: Duration, refresh_ttl: Duration) -> Self {
        Self {
            interval,
            publish_ahead: JWKS_MAX_AGE * 2,
            keep_after: access_ttl + JWKS_MAX_AGE,
            mac_keep_after: refresh_ttl,
        }
    }

    /// How long a key of `algorithm` stays after its successor takes over.
    const fn keep_after(&self, algorithm: KeyAlgorithm) -> Duration {
        match algorithm {
            KeyAlgorithm::Rs256 => self.keep_after,
            KeyAlgorithm::Hs256 => self.mac_keep_after,
        }
    }
}

impl KeyAlgorithm {
    /// The `key` label of the rotation metric.
    const fn metric_label(self) -> &'static str {
        match self {
            Self::Rs256 => "signing",
            Self::Hs256 => "refresh_mac",
        }
    }
}

impl KeyRing {
    /// Creates the first keys if there are none, creates the next signing key and the next MAC key when the
    /// schedule says each is due, and opens what is published at `now`. Returns the ring and the ids of the
    /// keys it rotated in. Every replica runs this; the store's generation numbers make one of them win
    /// each step.
    ///
    /// # Errors
    /// When the store fails, or a stored key cannot be opened (wrong key-encryption key).
    pub async fn maintain(
        store: &dyn KeyStore,
        kek: &KeyEncryptionKey,
        schedule: Option<&RotationSchedule>,
        now: OffsetDateTime,
    ) -> anyhow::Result<(Self, Vec<String>)> {
        let sealer = Sealer::new(kek)?;
        let mut stored = store.published_keys(now).await?;
        let mut created = Vec::new();
        for algorithm in [KeyAlgorithm::Rs256, KeyAlgorithm::Hs256] {
            if stored.iter().any(|k| k.algorithm == algorithm) {
                continue;
            }
            let key = generate(algorithm, &sealer, now, 1, now)?;
            if store.add_key(&key, None).await? {
                tracing::info!(kid = %key.kid, algorithm = algorithm.as_str(), "generated a new key");
            }
            // Either ours or the one a concurrent replica stored first.
            stored = store.published_keys(now).await?;
        }
        for algorithm in [KeyAlgorithm::Rs256, KeyAlgorithm::Hs256] {
            let newest = stored.iter().filter(|k| k.algorithm == algorithm).max_by_key(|k| k.generation);
            let (Some(schedule), Some(newest)) = (schedule.filter(|p| p.interval > Duration::ZERO), newest) else {
                continue;
            };
            if now + schedule.publish_ahead < newest.activates_at + schedule.interval {
                continue;
            }
            let activates_at = (newest.activates_at + schedule.interval).max(now + schedule.publish_ahead);
            let key = generate(algorithm, &sealer, now, newest.generation + 1, activates_at)?;
            if store.add_key(&key, Some(activates_at + schedule.keep_after(algorithm))).await? {
                tracing::info!(
                    kid = %key.kid,
                    algorithm = algorithm.as_str(),
                    activates_at = %activates_at,
                    "scheduled rotation: stored the next key"
                );
                let key_label = algorithm.metric_label();
                metrics::counter!("identsphere_keys_rotations_total", "kind" => "scheduled", "key" => key_label)
                    .increment(1);
                created.push(key.kid);
            }
            stored = store.published_keys(now).await?;
        }
        Ok((Self::open(&stored, kek)?, created))
    }

    /// Emergency rotation: a new signing key signs and a new MAC key MACs from `now`, and every other key
    /// is retired at once: the access tokens and the refresh tokens made with them stop verifying
    /// (`token_invalid`), their users sign in again. Returns the new signing key's id.
    ///
    /// # Errors
    /// When the store fails or the key-encryption key is wrong.
    pub async fn rotate_now(
        store: &dyn KeyStore,
        kek: &KeyEncryptionKey,
        now: OffsetDateTime,
    ) -> anyhow::Result<String> {
        let sealer = Sealer::new(kek)?;
        let stored = store.published_keys(now).await?;
        Self::open(&stored, kek)?;
        let mut signing = String::new();
        for algorithm in [KeyAlgorithm::Rs256, KeyAlgorithm::Hs256] {
            let generation =
                stored.iter().filter(|k| k.algorithm == algorithm).map(|k| k.generation).max().unwrap_or(0) + 1;
            let key = generate(algorithm, &sealer, now, generation, now)?;
            if !store.add_key(&key, Some(now)).await? {
                bail!("another rotation stored {} generation {generation} first; run it again", algorithm.as_str());
            }
            tracing::info!(kid = %key.kid, algorithm = algorithm.as_str(), "forced rotation: the old keys are retired");
            metrics::counter!("identsphere_keys_rotations_total", "kind" => "forced", "key" => algorithm.metric_label())
                .increment(1);
            if algorithm == KeyAlgorithm::Rs256 {
                signing = key.kid;
            }
        }
        Ok(signing)
    }

    /// The signing key at `now`: the newest one already active.
    #[must_use]
    pub fn signing_key(&self, now: OffsetDateTime) -> Option<&Arc<SigningKey>> {
        self.signing.iter().find(|k| k.activates_at <= now).or_else(|| self.signing.last())
    }

    /// The refresh MAC key at `now`.
    #[must_use]
    pub fn mac_key(&self, now: OffsetDateTime) -> Option<&Arc<MacKey>> {
        self.mac.iter().find(|k| k.activates_at <= now).or_else(|| self.mac.last())
    }

    /// Opens stored keys with the key-encryption key.
    ///
    /// # Errors
    /// When a key does not open (another key-encryption key) or a kind of key is missing.
    pub fn open(stored: &[StoredKey], kek: &KeyEncryptionKey) -> anyhow::Result<Self> {
        let sealer = Sealer::new(kek)?;
        let mut ring = Self { signing: Vec::new(), mac: Vec::new(), jwks: Bytes::new() };
        for key in stored {
            let secret = sealer.open_key(key).with_context(|| {
                format!("opening key {}: is IDENTSPHERE_KEY_ENCRYPTION_KEY the one the keys were sealed with?", key.kid)
            })?;
            match key.algorithm {
                KeyAlgorithm::Rs256 => ring.signing.push(Arc::new(open_rsa(key, &secret)?)),
                KeyAlgorithm::Hs256 => {
                    ring.mac.push(Arc::new(MacKey { kid: key.kid.clone(), activates_at: key.activates_at, secret }));
                }
            }
        }
        ring.signing.sort_by_key(|k| std::cmp::Reverse(k.activates_at));
        ring.mac.sort_by_key(|k| std::cmp::Reverse(k.activates_at));
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

fn generate(
    algorithm: KeyAlgorithm,
    sealer: &Sealer,
    now: OffsetDateTime,
    generation: i64,
    activates_at: OffsetDateTime,
) -> anyhow::Result<StoredKey> {
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
    Ok(StoredKey { kid, algorithm, sealed, created_at: now, activates_at, retires_at: None, generation })
}

fn open_rsa(key: &StoredKey, pkcs8: &[u8]) -> anyhow::Result<SigningKey> {
    let pair = RsaKeyPair::from_pkcs8(pkcs8).map_err(|e| anyhow!("RSA key {} rejected: {e}", key.kid))?;
    let (n, e) = public_components(&pair);
    Ok(SigningKey { kid: key.kid.clone(), activates_at: key.activates_at, pair, n, e })
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

/// AES-256-GCM under the key-encryption key, binding each ciphertext to what it belongs to (a key id,
/// a user id) so a sealed secret moved to another row does not open.
#[derive(Clone)]
pub struct Sealer {
    key: Arc<LessSafeKey>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer").finish_non_exhaustive()
    }
}

impl Sealer {
    /// A sealer under `kek`.
    ///
    /// # Errors
    /// When the key is refused.
    pub fn new(kek: &KeyEncryptionKey) -> anyhow::Result<Self> {
        let key = UnboundKey::new(&AES_256_GCM, &kek.0).map_err(|_| anyhow!("key-encryption key rejected"))?;
        Ok(Self { key: Arc::new(LessSafeKey::new(key)) })
    }

    /// `nonce || ciphertext || tag` of `secret`, bound to `owner`.
    ///
    /// # Errors
    /// When randomness or sealing fails.
    pub fn seal(&self, owner: &str, secret: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).map_err(|_| anyhow!("no randomness"))?;
        let mut in_out = secret.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(owner.as_bytes()), &mut in_out)
            .map_err(|_| anyhow!("sealing a secret of {owner} failed"))?;
        Ok([nonce.as_slice(), &in_out].concat())
    }

    /// The secret sealed for `owner`.
    ///
    /// # Errors
    /// When it was sealed under another key or for another owner, or was altered.
    pub fn open(&self, owner: &str, sealed: &[u8]) -> anyhow::Result<Vec<u8>> {
        let (nonce, sealed) = sealed.split_at_checked(NONCE_LEN).ok_or_else(|| anyhow!("sealed secret too short"))?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| anyhow!("bad nonce"))?;
        let mut in_out = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(owner.as_bytes()), &mut in_out)
            .map_err(|_| anyhow!("authentication failed"))?;
        Ok(plain.to_vec())
    }

    fn open_key(&self, key: &StoredKey) -> anyhow::Result<Vec<u8>> {
        self.open(&key.kid, &key.sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_their_kek_and_kid() {
        let sealer = Sealer::new(&KeyEncryptionKey([7; 32])).unwrap();
        let now = OffsetDateTime::UNIX_EPOCH;
        let key = generate(KeyAlgorithm::Hs256, &sealer, now, 1, now).unwrap();
        let secret = sealer.open_key(&key).unwrap();
        assert_eq!(secret.len(), 32);
        assert!(!key.sealed.windows(32).any(|w| w == secret.as_slice()), "stored in the clear");

        let other = Sealer::new(&KeyEncryptionKey([8; 32])).unwrap();
        assert!(other.open_key(&key).is_err());
        let moved = StoredKey { kid: "rt-other".into(), ..key };
        assert!(sealer.open_key(&moved).is_err());
    }

    #[test]
    fn rsa_keys_round_trip_and_their_kid_is_the_jwk_thumbprint() {
        let sealer = Sealer::new(&KeyEncryptionKey([1; 32])).unwrap();
        let key =
            generate(KeyAlgorithm::Rs256, &sealer, OffsetDateTime::UNIX_EPOCH, 1, OffsetDateTime::UNIX_EPOCH).unwrap();
        let opened = open_rsa(&key, &sealer.open_key(&key).unwrap()).unwrap();
        assert_eq!(opened.e, vec![1, 0, 1]);
        assert_eq!(opened.n.len(), 256);
        assert_eq!(thumbprint(&opened.n, &opened.e), key.kid);
        assert_eq!(key.kid.len(), 43);
    }
}
