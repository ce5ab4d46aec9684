//! Minting and verifying tokens, strictly.
//!
//! Access tokens are RS256 JWTs signed with the parsed key kept in memory (one RSA signature, no key
//! parsing). Refresh tokens are HS256 JWTs under a server secret: only IdentSphere verifies them, and a
//! MAC is deterministic, so the same family state always yields the same refresh token — which is how a
//! grace-window replay returns the very same successor. Verification pins `alg`, requires a known
//! `kid`, header `typ: JWT`, our `iss`, the right claim `typ`, and checks `exp` against the injected
//! clock.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use identsphere_actors::{Aal, AuthMethod, FamilyRecord, UserProfile};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::auth::keys::KeyRing;
use crate::error::ApiError;

/// Longest token accepted: anything larger is not ours and is refused before any parsing.
const MAX_TOKEN_LEN: usize = 8 * 1024;
/// How long an mfa token lets the second factor complete a sign-in (`docs/api.md`: 5 minutes).
pub const MFA_TOKEN_TTL: Duration = Duration::minutes(5);

/// The claim `typ`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    /// Accepted as a credential on resource routes.
    Access,
    /// Exchanged at `/v1/auth/refresh`; opaque to clients.
    Refresh,
    /// Completes a sign-in with a second factor.
    Mfa,
}

/// The claims of every IdentSphere token (`docs/api.md` "Tokens").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: Uuid,
    /// Organization of the session.
    pub org: Uuid,
    /// Issuer: the public base URL.
    pub iss: String,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Token type.
    pub typ: TokenType,
    /// The user's email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Unique token id, for denylisting.
    pub jti: Uuid,
    /// Session family id.
    pub sid: Uuid,
    /// Assurance level.
    pub aal: Aal,
    /// When the user originally authenticated.
    pub auth_time: i64,
    /// How the user originally authenticated.
    pub auth_method: AuthMethod,
}

/// An access token and when it expires.
#[derive(Clone, Debug)]
pub struct AccessToken {
    /// The JWT.
    pub token: String,
    /// Its lifetime from now, in seconds (`expires_in`).
    pub expires_in: i64,
}

/// The published keys in the form signing and verifying need, rebuilt whenever the ring changes.
struct Loaded {
    ring: KeyRing,
    /// `base64url(header) + "."` of each signing key, in the ring's order.
    prefixes: Vec<String>,
    rsa_decoding: Vec<(String, DecodingKey)>,
    /// Each MAC key's encoding and decoding form, in the ring's order.
    mac: Vec<(EncodingKey, DecodingKey)>,
}

impl Loaded {
    fn new(ring: KeyRing) -> anyhow::Result<Self> {
        if ring.signing.is_empty() || ring.mac.is_empty() {
            anyhow::bail!("the key ring needs a signing key and a MAC key");
        }
        let prefixes = ring
            .signing
            .iter()
            .map(|k| {
                let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": k.kid});
                Ok(format!("{}.", B64URL.encode(serde_json::to_vec(&header)?)))
            })
            .collect::<anyhow::Result<_>>()?;
        let rsa_decoding =
            ring.signing.iter().map(|k| (k.kid.clone(), DecodingKey::from_rsa_raw_components(&k.n, &k.e))).collect();
        let mac = ring
            .mac
            .iter()
            .map(|k| (EncodingKey::from_secret(&k.secret), DecodingKey::from_secret(&k.secret)))
            .collect();
        Ok(Self { ring, prefixes, rsa_decoding, mac })
    }
}

/// Mints and verifies tokens with the published keys. Cheap to clone; every clone sees key changes.
#[derive(Clone)]
pub struct Tokens {
    loaded: Arc<RwLock<Arc<Loaded>>>,
    issuer: String,
    access_ttl: Duration,
    rsa_validation: Validation,
    mac_validation: Validation,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens").field("issuer", &self.issuer).finish_non_exhaustive()
    }
}

fn validation(algorithm: Algorithm, issuer: &str) -> Validation {
    let mut v = Validation::new(algorithm);
    // `exp` is checked against our clock after the signature (see `verify`).
    v.validate_exp = false;
    v.leeway = 0;
    v.required_spec_claims = ["exp", "iss", "sub"].into_iter().map(String::from).collect();
    v.iss = Some(HashSet::from([issuer.to_owned()]));
    v.validate_aud = false;
    v
}

impl Tokens {
    /// Tokens signed with `ring`, issued as `issuer`, access tokens living `access_ttl`.
    ///
    /// # Errors
    /// When the ring has no signing or MAC key.
    pub fn new(ring: KeyRing, issuer: String, access_ttl: Duration) -> anyhow::Result<Self> {
        Ok(Self {
            loaded: Arc::new(RwLock::new(Arc::new(Loaded::new(ring)?))),
            rsa_validation: validation(Algorithm::RS256, &issuer),
            mac_validation: validation(Algorithm::HS256, &issuer),
            issuer,
            access_ttl,
        })
    }

    /// Starts using `ring` (keys published or retired since the last one).
    ///
    /// # Errors
    /// When the ring has no signing or MAC key; the keys in use stay then.
    pub fn replace_keys(&self, ring: KeyRing) -> anyhow::Result<()> {
        let loaded = Arc::new(Loaded::new(ring)?);
        *self.loaded.write().map_err(|_| anyhow::anyhow!("key lock poisoned"))? = loaded;
        Ok(())
    }

    fn loaded(&self) -> Result<Arc<Loaded>, ApiError> {
        self.loaded.read().map(|l| Arc::clone(&l)).map_err(|_| internal("key lock poisoned"))
    }

    /// The issuer (`iss`).
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The JWKS document.
    ///
    /// # Errors
    /// `ApiError::Internal` if the key lock is poisoned.
    pub fn jwks(&self) -> Result<actix_web::web::Bytes, ApiError> {
        Ok(self.loaded()?.ring.jwks.clone())
    }

    /// A new access token for `family`, signed by the key active at `now`, living the server's lifetime or
    /// the organization's (`org_ttl`) if shorter, and never outliving the family.
    ///
    /// # Errors
    /// `ApiError::Internal` if signing fails.
    pub fn issue_access(
        &self,
        family: &FamilyRecord,
        user: &UserProfile,
        org_ttl: Option<Duration>,
        now: OffsetDateTime,
    ) -> Result<AccessToken, ApiError> {
        let ttl = org_ttl.map_or(self.access_ttl, |ttl| ttl.min(self.access_ttl));
        let exp = (now + ttl).min(family.expires_at);
        let claims = claims(family, user, &self.issuer, TokenType::Access, Uuid::new_v4(), now, exp);
        Ok(AccessToken { token: self.sign_rs256(&claims, now)?, expires_in: (exp - now).whole_seconds() })
    }

    /// An mfa token: proof that `user` passed the first factor, for the family `family` will become
    /// when a second factor completes the sign-in within `MFA_TOKEN_TTL`.
    ///
    /// # Errors
    /// `ApiError::Internal` if signing fails.
    pub fn issue_mfa(
        &self,
        family: &FamilyRecord,
        user: &UserProfile,
        now: OffsetDateTime,
    ) -> Result<String, ApiError> {
        let claims = claims(family, user, &self.issuer, TokenType::Mfa, Uuid::new_v4(), now, now + MFA_TOKEN_TTL);
        self.sign_rs256(&claims, now)
    }

    /// `claims` as an RS256 JWT under the key active at `now`.
    fn sign_rs256(&self, claims: &Claims, now: OffsetDateTime) -> Result<String, ApiError> {
        let loaded = self.loaded()?;
        let signing = loaded.ring.signing_key(now).ok_or_else(|| internal("no signing key"))?;
        let index = loaded.ring.signing.iter().position(|k| Arc::ptr_eq(k, signing)).unwrap_or(0);
        let prefix = loaded.prefixes.get(index).ok_or_else(|| internal("no header for the signing key"))?;
        let payload = serde_json::to_vec(&claims).map_err(|e| ApiError::Internal(e.into()))?;
        let mut token = String::with_capacity(prefix.len() + payload.len() * 4 / 3 + 350);
        token.push_str(prefix);
        B64URL.encode_string(&payload, &mut token);
        let mut signature = vec![0u8; signing.pair.public_modulus_len()];
        signing
            .pair
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), token.as_bytes(), &mut signature)
            .map_err(|_| internal("RSA signing failed"))?;
        token.push('.');
        B64URL.encode_string(&signature, &mut token);
        Ok(token)
    }

    /// The refresh token for the family's live refresh pointer: the same state always gives the same
    /// token.
    ///
    /// # Errors
    /// `ApiError::Internal` if encoding fails.
    pub fn issue_refresh(&self, family: &FamilyRecord, user: &UserProfile) -> Result<String, ApiError> {
        let loaded = self.loaded()?;
        // The key active when the pointer was issued: a replay re-derives the very same token.
        let mac = loaded.ring.mac_key(family.current.issued_at).ok_or_else(|| internal("no MAC key"))?;
        let index = loaded.ring.mac.iter().position(|k| Arc::ptr_eq(k, mac)).unwrap_or(0);
        let (key, _) = loaded.mac.get(index).ok_or_else(|| internal("no MAC key"))?;
        let kid = &mac.kid;
        let claims = claims(
            family,
            user,
            &self.issuer,
            TokenType::Refresh,
            family.current.jti,
            family.current.issued_at,
            family.expires_at,
        );
        let header = Header { typ: Some("JWT".to_owned()), kid: Some(kid.clone()), ..Header::new(Algorithm::HS256) };
        jsonwebtoken::encode(&header, &claims, key).map_err(|e| ApiError::Internal(e.into()))
    }

    /// Verifies an access token.
    ///
    /// # Errors
    /// `TokenInvalid` for anything but a well-formed, correctly signed access token of ours;
    /// `TokenExpired` once `exp` has passed.
    pub fn verify_access(&self, token: &str, now: OffsetDateTime) -> Result<Claims, ApiError> {
        self.verify(token, TokenType::Access, now)
    }

    /// Verifies an mfa token (as an access token, with `typ: mfa`).
    ///
    /// # Errors
    /// As [`Tokens::verify_access`].
    pub fn verify_mfa(&self, token: &str, now: OffsetDateTime) -> Result<Claims, ApiError> {
        self.verify(token, TokenType::Mfa, now)
    }

    /// Verifies a refresh token (MAC, `iss`, `typ: refresh`, `exp`).
    ///
    /// # Errors
    /// As [`Tokens::verify_access`].
    pub fn verify_refresh(&self, token: &str, now: OffsetDateTime) -> Result<Claims, ApiError> {
        self.verify(token, TokenType::Refresh, now)
    }

    fn verify(&self, token: &str, expected: TokenType, now: OffsetDateTime) -> Result<Claims, ApiError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(ApiError::TokenInvalid);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| ApiError::TokenInvalid)?;
        if header.typ.as_deref() != Some("JWT") {
            return Err(ApiError::TokenInvalid);
        }
        let kid = header.kid.as_deref().ok_or(ApiError::TokenInvalid)?;
        let loaded = self.loaded()?;
        let (key, validation) = match (expected, header.alg) {
            (TokenType::Refresh, Algorithm::HS256) => {
                let index = loaded.ring.mac.iter().position(|k| k.kid == kid).ok_or(ApiError::TokenInvalid)?;
                let (_, key) = loaded.mac.get(index).ok_or(ApiError::TokenInvalid)?;
                (key, &self.mac_validation)
            }
            (TokenType::Access | TokenType::Mfa, Algorithm::RS256) => {
                let (_, key) = loaded.rsa_decoding.iter().find(|(k, _)| k == kid).ok_or(ApiError::TokenInvalid)?;
                (key, &self.rsa_validation)
            }
            _ => return Err(ApiError::TokenInvalid),
        };
        let claims = jsonwebtoken::decode::<Claims>(token, key, validation).map_err(|_| ApiError::TokenInvalid)?.claims;
        if claims.typ != expected {
            return Err(ApiError::TokenInvalid);
        }
        if now.unix_timestamp() >= claims.exp {
            return Err(ApiError::TokenExpired);
        }
        Ok(claims)
    }
}

fn internal(what: &'static str) -> ApiError {
    ApiError::Internal(anyhow::anyhow!(what))
}

fn claims(
    family: &FamilyRecord,
    user: &UserProfile,
    issuer: &str,
    typ: TokenType,
    jti: Uuid,
    iat: OffsetDateTime,
    exp: OffsetDateTime,
) -> Claims {
    Claims {
        sub: family.user_id,
        org: family.org_id,
        iss: issuer.to_owned(),
        exp: exp.unix_timestamp(),
        iat: iat.unix_timestamp(),
        typ,
        email: Some(user.email.clone()),
        jti,
        sid: family.sid,
        aal: family.aal,
        auth_time: family.auth_time.unix_timestamp(),
        auth_method: family.auth_method,
    }
}
