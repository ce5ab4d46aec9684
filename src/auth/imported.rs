//! Password hashes brought from other systems (user import, `docs/migration.md`): which formats are taken,
//! the bounds that keep one from costing more than a sign-in may, and how each is checked.
//!
//! Every primitive is a RustCrypto crate's (`bcrypt`, `scrypt`, `pbkdf2`, `sha-crypt`, `md-5`, `sha1`) or
//! aws-lc-rs's AES; what is ours is only the framing of formats those crates do not parse (Django's
//! `pbkdf2_sha256$…`, Firebase's scrypt variant, Django's legacy MD5/SHA-1). A hash is stored as given and
//! checked with its own scheme until the first sign-in that proves it, which replaces it with our Argon2id
//! (`PasswordHasher::verify` asks for the rehash).
//!
//! The bounds matter because the importer chooses the parameters: a bcrypt cost of 31 or an scrypt `N` of
//! 2^30 in one imported row would let anyone who knows its email occupy a hashing thread for hours, or
//! exhaust memory, with one login request.

use aws_lc_rs::cipher::{AES_256, EncryptingKey, EncryptionContext, UnboundCipherKey};
use aws_lc_rs::constant_time::verify_slices_are_equal;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use pbkdf2::sha2::Sha256;
use scrypt::password_hash::PasswordVerifier as _;

use super::keys::Sealer;

/// The highest bcrypt cost taken: 2^14 rounds is about a second of one core; systems in use run 10–12.
const BCRYPT_MAX_COST: u32 = 14;
/// The most PBKDF2 iterations taken (Django 5 uses 1,000,000 for SHA-256; Keycloak 210,000 for SHA-512).
const PBKDF2_MAX_ITERATIONS: u32 = 1_500_000;
/// The most SHA-crypt rounds taken (the format allows 999,999,999; systems use 5,000 to 656,000).
const SHA_CRYPT_MAX_ROUNDS: u32 = 1_000_000;
/// The most memory one scrypt or Argon2 check may take (`128 · r · N` bytes, or Argon2's `m` KiB): Django's
/// Argon2 default is 100 MiB.
const MAX_MEMORY_BYTES: u64 = 128 << 20;
/// The most scrypt passes over its memory (`p`): each costs a whole scrypt.
const SCRYPT_MAX_P: u32 = 4;
/// The most Argon2 passes (`t`) and lanes (`p`, computed one after another here): Django's default is 2 and 8.
const ARGON2_MAX_PASSES: u32 = 16;
const ARGON2_MAX_LANES: u32 = 8;
/// What the sealed Firebase signer key is bound to.
const FIREBASE_SEAL_OWNER: &str = "firebase-scrypt-signer-key";
const FIREBASE_PREFIX: &str = "$firebase-scrypt$";

/// Why an import refuses a line's hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not a format this server knows.
    Unknown,
    /// A known format that does not parse.
    Malformed,
    /// Unsalted or fast (MD5, SHA-1): taken only where the operator allows them.
    Weak,
    /// Parameters beyond what one sign-in may cost.
    TooCostly,
    /// A Firebase hash in a request without the project's parameters.
    NoFirebaseProject,
}

impl Refused {
    /// For the line's result, naming the fix.
    #[must_use]
    pub const fn message(self) -> &'static str {
        match self {
            Self::Unknown => {
                "password_hash is in no supported format (argon2, bcrypt, scrypt, pbkdf2, Django pbkdf2, SHA-crypt, \
                 Firebase scrypt)"
            }
            Self::Malformed => "password_hash does not parse in the format its prefix names",
            Self::Weak => {
                "password_hash is an unsalted or fast legacy hash (MD5, SHA-1): refused unless the server allows \
                 them (IDENTSPHERE_IMPORT_ALLOW_WEAK_HASHES)"
            }
            Self::TooCostly => "password_hash's parameters cost more than a sign-in may (docs/migration.md: bounds)",
            Self::NoFirebaseProject => {
                "a Firebase scrypt hash needs the project's parameters in the IdentSphere-Firebase-Scrypt header"
            }
        }
    }
}

/// A Firebase project's password-hash parameters (console: Authentication, Password hash parameters), given
/// once per import; the signer key is kept only sealed under the key-encryption key.
#[derive(Clone)]
pub struct FirebaseProject {
    signer_key: Vec<u8>,
    salt_separator: Vec<u8>,
    rounds: u32,
    mem_cost: u32,
}

impl std::fmt::Debug for FirebaseProject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirebaseProject")
            .field("rounds", &self.rounds)
            .field("mem_cost", &self.mem_cost)
            .finish_non_exhaustive()
    }
}

impl FirebaseProject {
    /// `signer_key=<base64>, salt_separator=<base64>, rounds=<n>, mem_cost=<n>`, as the Firebase CLI's
    /// `auth:import` takes them (`--hash-key`, `--salt-separator`, `--rounds`, `--mem-cost`).
    ///
    /// # Errors
    /// What is missing or wrong, for the caller to show.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let (mut key, mut separator, mut rounds, mut mem_cost) = (None, None, None, None);
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part.split_once('=').ok_or_else(|| format!("`{part}` is not name=value"))?;
            let bytes = || B64.decode(value.trim()).map_err(|_| format!("{name} is not base64"));
            let number = || value.trim().parse::<u32>().map_err(|_| format!("{name} is not a whole number"));
            match name.trim() {
                "signer_key" => key = Some(bytes()?),
                "salt_separator" => separator = Some(bytes()?),
                "rounds" => rounds = Some(number()?),
                "mem_cost" => mem_cost = Some(number()?),
                other => return Err(format!("unknown parameter `{other}`")),
            }
        }
        let missing = |name: &str| format!("{name} is missing (signer_key, salt_separator, rounds, mem_cost)");
        let project = Self {
            signer_key: key.filter(|k| !k.is_empty()).ok_or_else(|| missing("signer_key"))?,
            salt_separator: separator.unwrap_or_default(),
            rounds: rounds.ok_or_else(|| missing("rounds"))?,
            mem_cost: mem_cost.ok_or_else(|| missing("mem_cost"))?,
        };
        if !(1..=16).contains(&project.rounds)
            || !(1..=20).contains(&project.mem_cost)
            || scrypt_memory(project.mem_cost, project.rounds) > MAX_MEMORY_BYTES
        {
            return Err("rounds and mem_cost cost more than a sign-in may (Firebase uses 8 and 14)".to_owned());
        }
        Ok(project)
    }

    /// The parameters as every imported Firebase hash of this import stores them, the signer key sealed.
    ///
    /// # Errors
    /// When sealing fails (no randomness).
    pub fn sealed(&self, sealer: &Sealer) -> anyhow::Result<SealedFirebaseProject> {
        let sealed = sealer.seal(FIREBASE_SEAL_OWNER, &self.signer_key)?;
        Ok(SealedFirebaseProject(format!(
            "r={},m={},s={},k={}",
            self.rounds,
            self.mem_cost,
            B64URL.encode(&self.salt_separator),
            B64URL.encode(sealed)
        )))
    }
}

/// A Firebase project's parameters with the signer key sealed, as stored in each of its hashes.
#[derive(Clone, Debug)]
pub struct SealedFirebaseProject(String);

/// What an import may take beyond the strong formats.
#[derive(Clone, Debug, Default)]
pub struct ImportRules {
    /// MD5 and SHA-1 (`IDENTSPHERE_IMPORT_ALLOW_WEAK_HASHES`).
    pub allow_weak: bool,
    /// The Firebase project of this import's Firebase hashes.
    pub firebase: Option<SealedFirebaseProject>,
}

/// A line's `password_hash` checked for import: the string to store (as given, but for Firebase's, which
/// gains its project's parameters, and Django's Argon2, whose prefix goes).
///
/// # Errors
/// Why it is refused.
pub fn admit(given: &str, rules: &ImportRules) -> Result<String, Refused> {
    let given = given.trim();
    if let Some(argon2) = given.strip_prefix("argon2").filter(|rest| is_argon2(rest)) {
        return admit(argon2, rules);
    }
    match Format::of(given) {
        Some(Format::Firebase) => {
            let project = rules.firebase.as_ref().ok_or(Refused::NoFirebaseProject)?;
            let rest = &given[FIREBASE_PREFIX.len()..];
            let (salt, hash) = rest.split_once('$').ok_or(Refused::Malformed)?;
            if B64.decode(salt).is_err() || B64.decode(hash).map_or(true, |h| h.is_empty()) {
                return Err(Refused::Malformed);
            }
            Ok(format!("{FIREBASE_PREFIX}{}${salt}${hash}", project.0))
        }
        Some(format) if format.weak() && !rules.allow_weak => Err(Refused::Weak),
        Some(format) => format.bounded(given).map(|()| given.to_owned()),
        None => Err(Refused::Unknown),
    }
}

/// An imported hash as the export gives it back: what `admit` takes again (Firebase's without the project's
/// parameters, which the importer gives once, as the first time).
#[must_use]
pub fn exported(stored: &str) -> String {
    match stored.strip_prefix(FIREBASE_PREFIX).and_then(|rest| rest.split_once('$')) {
        Some((_, salt_and_hash)) => format!("{FIREBASE_PREFIX}{salt_and_hash}"),
        None => stored.to_owned(),
    }
}

/// Whether `stored` is one of ours to check with Argon2 (rather than an imported format).
#[must_use]
pub fn is_argon2(stored: &str) -> bool {
    stored.starts_with("$argon2")
}

/// Checks `password` against an imported, non-Argon2 hash; an unparsable one never matches.
#[must_use]
pub fn verify(stored: &str, password: &[u8], sealer: &Sealer) -> bool {
    // Refuse at sign-in what the import would refuse: a hash written to the database by other means gets the
    // same bounds.
    let Some(format) = Format::of(stored) else { return false };
    if format != Format::Firebase && format.bounded(stored).is_err() {
        return false;
    }
    match format {
        Format::Bcrypt => bcrypt::verify(password, stored).unwrap_or(false),
        Format::Scrypt => scrypt::phc::PasswordHash::new(stored)
            .is_ok_and(|h| scrypt::Scrypt::new().verify_password(password, &h).is_ok()),
        Format::Pbkdf2 => pbkdf2::phc::PasswordHash::new(stored)
            .is_ok_and(|h| pbkdf2::Pbkdf2::default().verify_password(password, &h).is_ok()),
        Format::ShaCrypt => sha_crypt::ShaCrypt::default().verify_password(password, stored).is_ok(),
        Format::Django => verify_django(stored, password).unwrap_or(false),
        Format::Firebase => verify_firebase(stored, password, sealer).unwrap_or(false),
        Format::Md5 | Format::Sha1 => verify_weak(stored, password).unwrap_or(false),
        Format::Argon2 => false,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Argon2,
    Bcrypt,
    Scrypt,
    Pbkdf2,
    Django,
    ShaCrypt,
    Firebase,
    Md5,
    Sha1,
}

impl Format {
    fn of(hash: &str) -> Option<Self> {
        let hex = |len: usize| hash.len() == len && hash.bytes().all(|b| b.is_ascii_hexdigit());
        Some(match hash {
            _ if is_argon2(hash) => Self::Argon2,
            _ if ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p)) => Self::Bcrypt,
            _ if hash.starts_with("$scrypt$") => Self::Scrypt,
            _ if hash.starts_with("$pbkdf2-sha256$") || hash.starts_with("$pbkdf2-sha512$") => Self::Pbkdf2,
            _ if hash.starts_with("pbkdf2_sha256$") || hash.starts_with("pbkdf2_sha1$") => Self::Django,
            _ if hash.starts_with("$5$") || hash.starts_with("$6$") => Self::ShaCrypt,
            _ if hash.starts_with(FIREBASE_PREFIX) => Self::Firebase,
            _ if hash.starts_with("md5$") || hex(32) => Self::Md5,
            _ if hash.starts_with("sha1$") || hex(40) => Self::Sha1,
            _ => return None,
        })
    }

    const fn weak(self) -> bool {
        matches!(self, Self::Md5 | Self::Sha1)
    }

    /// Parses `hash` far enough to check its cost against the bounds.
    fn bounded(self, hash: &str) -> Result<(), Refused> {
        let within = |ok: bool| if ok { Ok(()) } else { Err(Refused::TooCostly) };
        match self {
            Self::Argon2 => {
                let parsed = argon2::PasswordHash::new(hash).map_err(|_| Refused::Malformed)?;
                let params = argon2::Params::try_from(&parsed).map_err(|_| Refused::Malformed)?;
                argon2::Algorithm::try_from(parsed.algorithm).map_err(|_| Refused::Malformed)?;
                if parsed.salt.is_none() || parsed.hash.is_none() {
                    return Err(Refused::Malformed);
                }
                within(
                    u64::from(params.m_cost()) * 1024 <= MAX_MEMORY_BYTES
                        && params.t_cost() <= ARGON2_MAX_PASSES
                        && params.p_cost() <= ARGON2_MAX_LANES,
                )
            }
            Self::Bcrypt => {
                let parts: bcrypt::HashParts = hash.parse().map_err(|_| Refused::Malformed)?;
                within(parts.get_cost() <= BCRYPT_MAX_COST)
            }
            Self::Scrypt => {
                let parsed = scrypt::phc::PasswordHash::new(hash).map_err(|_| Refused::Malformed)?;
                let params = scrypt::Params::try_from(&parsed).map_err(|_| Refused::Malformed)?;
                if parsed.salt.is_none() || parsed.hash.is_none() {
                    return Err(Refused::Malformed);
                }
                within(
                    params.p() <= SCRYPT_MAX_P
                        && scrypt_memory(u32::from(params.log_n()), params.r()) <= MAX_MEMORY_BYTES,
                )
            }
            Self::Pbkdf2 => {
                let parsed = pbkdf2::phc::PasswordHash::new(hash).map_err(|_| Refused::Malformed)?;
                let params = pbkdf2::Params::try_from(&parsed).map_err(|_| Refused::Malformed)?;
                if parsed.salt.is_none() || parsed.hash.is_none() {
                    return Err(Refused::Malformed);
                }
                within(params.rounds() <= PBKDF2_MAX_ITERATIONS)
            }
            Self::Django => {
                let (_, iterations, _, _) = django_fields(hash).ok_or(Refused::Malformed)?;
                within(iterations <= PBKDF2_MAX_ITERATIONS)
            }
            Self::ShaCrypt => {
                let fields: Vec<&str> = hash.split('$').collect();
                let rounds = match fields.as_slice() {
                    ["", _, params, _salt, _hash] => {
                        params.strip_prefix("rounds=").and_then(|r| r.parse::<u32>().ok()).ok_or(Refused::Malformed)?
                    }
                    ["", _, _salt, _hash] => sha_crypt::Params::RECOMMENDED_ROUNDS,
                    _ => return Err(Refused::Malformed),
                };
                if sha_crypt::PasswordHashRef::new(hash).is_err() || rounds < sha_crypt::Params::ROUNDS_MIN {
                    return Err(Refused::Malformed);
                }
                within(rounds <= SHA_CRYPT_MAX_ROUNDS)
            }
            Self::Firebase => Err(Refused::Malformed),
            Self::Md5 | Self::Sha1 => weak_fields(hash).map(|_| ()).ok_or(Refused::Malformed),
        }
    }
}

/// Bytes one scrypt check takes: `128 · r · 2^log_n`.
fn scrypt_memory(log_n: u32, r: u32) -> u64 {
    1u64.checked_shl(log_n).map_or(u64::MAX, |n| n.saturating_mul(128).saturating_mul(u64::from(r)))
}

/// Django's `pbkdf2_sha256$<iterations>$<salt>$<base64 hash>` (and `pbkdf2_sha1`): whether SHA-256,
/// the iterations, the salt (used as its text's bytes, as Django does) and the hash.
fn django_fields(hash: &str) -> Option<(bool, u32, &str, Vec<u8>)> {
    let mut fields = hash.split('$');
    let sha256 = match fields.next()? {
        "pbkdf2_sha256" => true,
        "pbkdf2_sha1" => false,
        _ => return None,
    };
    let iterations = fields.next()?.parse().ok().filter(|i| *i > 0)?;
    let salt = fields.next()?;
    let expected = B64.decode(fields.next()?).ok().filter(|e| !e.is_empty() && e.len() <= 64)?;
    fields.next().is_none().then_some((sha256, iterations, salt, expected))
}

fn verify_django(stored: &str, password: &[u8]) -> Option<bool> {
    let (sha256, iterations, salt, expected) = django_fields(stored)?;
    let mut computed = vec![0; expected.len()];
    if sha256 {
        pbkdf2::pbkdf2_hmac::<Sha256>(password, salt.as_bytes(), iterations, &mut computed);
    } else {
        pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password, salt.as_bytes(), iterations, &mut computed);
    }
    Some(verify_slices_are_equal(&computed, &expected).is_ok())
}

/// Firebase's scrypt: the scrypt key of the password (salt followed by the project's separator; `N` =
/// 2^mem_cost, `r` = rounds, `p` = 1) encrypts the project's signer key with AES-256-CTR under a zero IV,
/// and that is the hash (github.com/firebase/scrypt).
fn verify_firebase(stored: &str, password: &[u8], sealer: &Sealer) -> Option<bool> {
    let mut fields = stored.strip_prefix(FIREBASE_PREFIX)?.split('$');
    let (params, salt, expected) = (fields.next()?, fields.next()?, B64.decode(fields.next()?).ok()?);
    let (mut rounds, mut mem_cost, mut separator, mut sealed_key) = (None, None, None, None);
    for part in params.split(',') {
        match part.split_once('=')? {
            ("r", value) => rounds = value.parse::<u32>().ok(),
            ("m", value) => mem_cost = value.parse::<u8>().ok(),
            ("s", value) => separator = B64URL.decode(value).ok(),
            ("k", value) => sealed_key = B64URL.decode(value).ok(),
            _ => return None,
        }
    }
    let signer_key = sealer.open(FIREBASE_SEAL_OWNER, &sealed_key?).ok()?;
    let scrypt_params = scrypt::Params::new(mem_cost?, rounds?, 1).ok()?;
    let mut salted = B64.decode(salt).ok()?;
    salted.extend_from_slice(&separator?);
    let mut derived = [0u8; 32];
    scrypt::scrypt(password, &salted, &scrypt_params, &mut derived).ok()?;
    let key = EncryptingKey::ctr(UnboundCipherKey::new(&AES_256, &derived).ok()?).ok()?;
    let mut computed = signer_key;
    key.less_safe_encrypt(&mut computed, EncryptionContext::Iv128([0u8; 16].into())).ok()?;
    Some(verify_slices_are_equal(&computed, &expected).is_ok())
}

/// Django's `md5$<salt>$<hex>` and `sha1$<salt>$<hex>` (the salt may be empty), or a bare hex MD5 or SHA-1:
/// whether MD5, the salt, and the digest.
fn weak_fields(hash: &str) -> Option<(bool, &str, Vec<u8>)> {
    let (md5, salt, hex) = match hash.split('$').collect::<Vec<_>>().as_slice() {
        ["md5", salt, hex] => (true, *salt, *hex),
        ["sha1", salt, hex] => (false, *salt, *hex),
        [hex] => (hex.len() == 32, "", *hex),
        _ => return None,
    };
    let digest = (0..hex.len())
        .step_by(2)
        .map(|i| hex.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()))
        .collect::<Option<Vec<u8>>>()?;
    (digest.len() == if md5 { 16 } else { 20 }).then_some((md5, salt, digest))
}

fn verify_weak(stored: &str, password: &[u8]) -> Option<bool> {
    use sha1::Digest as _;
    let (md5, salt, expected) = weak_fields(stored)?;
    let computed: Vec<u8> = if md5 {
        md5::Md5::new().chain_update(salt).chain_update(password).finalize().to_vec()
    } else {
        sha1::Sha1::new().chain_update(salt).chain_update(password).finalize().to_vec()
    };
    Some(verify_slices_are_equal(&computed, &expected).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KeyEncryptionKey;

    const PASSWORD: &[u8] = b"correct horse battery staple";

    fn sealer() -> Sealer {
        Sealer::new(&KeyEncryptionKey([3; 32])).unwrap()
    }

    fn strict() -> ImportRules {
        ImportRules::default()
    }

    /// Admitted as given, the right password verifies and a wrong one does not.
    #[track_caller]
    fn round_trip(given: &str, rules: &ImportRules, password: &[u8]) {
        let stored = admit(given, rules).unwrap_or_else(|e| panic!("{given}: {e:?}"));
        assert!(verify(&stored, password, &sealer()), "{given}: the right password is refused");
        let mut wrong = password.to_vec();
        wrong[0] ^= 1;
        assert!(!verify(&stored, &wrong, &sealer()), "{given}: a wrong password verifies");
        assert!(!verify(&stored, b"", &sealer()), "{given}: the empty password verifies");
    }

    /// Each vector was made by another implementation (Python's `bcrypt`, `hashlib`, `crypt` and
    /// `argon2-cffi`; Firebase's published example), so the check is against the format, not against
    /// the crate that verifies it.
    #[test]
    fn every_format_verifies_hashes_made_elsewhere() {
        for hash in [
            "$2b$10$f.DCfkN/fm4wQAIdaIscEuErpOHNoNjVznRXiDJRpQrSmEE.pI0fW",
            "$2a$04$rV/DcJp7fK117W1/YUnVeOdhpLoNSDCrRUvPURbwiHHxtLiF3q2q6",
            "$pbkdf2-sha256$i=10000,l=32$PFVVpd0mA3GmbygjGJFCkA$+fjpg7wZlytisERNWorxB2GAaSZVrOQzqoCHDHbTX+8",
            "$pbkdf2-sha512$i=5000,l=64$PFVVpd0mA3GmbygjGJFCkA$Vo9MLJvcZS5AzZ2Qwe8ofidJiJN7orNUCxLFVcKjSMr4Bcm9GvUsJu/p6T5sEUvqSMO4rajML0+0BO2KoW1nVA",
            "pbkdf2_sha256$600000$x7k2PqZ9aBc1$vjZrB4daeezO2CBhSkytBQQjICn/Gb7Yfg2iGxakbGE=",
            "pbkdf2_sha1$20000$x7k2PqZ9aBc1$fRQ/YfuiHjhLpcNRg4tUKHRlXtc=",
            "$6$rounds=10000$saltsaltsalt$sKNe61LkPtaP4L73hny8BmoICx/sc6/7yzGXrSpKz1UuHF6Nf2.quBtGV62QJYMqhwlCAvUxpiDRLn/9QKXrf/",
            "$5$saltsalt$3hGFMknrJ4ZpFPe7XZe397oIMEp7sbvqrcsX/ONJ3i.",
            "$scrypt$ln=14,r=8,p=1$PFVVpd0mA3GmbygjGJFCkA$d+Na589iEaJNwwrv/laQdSf+C7txGAqhB1mEXDKqqOQ",
        ] {
            round_trip(hash, &strict(), PASSWORD);
        }
        // Django's Argon2 (its default costs: 100 MiB, 2 passes, 8 lanes) loses its `argon2` prefix and is
        // checked as ours are.
        let django_argon2 =
            "argon2$argon2id$v=19$m=102400,t=2,p=8$9DrxFAKXe/588fw3SkXbDA$LOZsKXWbnBa2wCAVoFoxTxI/kDlpltJagRUkZpSgiIU";
        assert_eq!(admit(django_argon2, &strict()).unwrap(), django_argon2["argon2".len()..]);
        // passlib's scrypt example, at the memory bound (64 MiB).
        round_trip(
            "$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E",
            &strict(),
            b"password",
        );
    }

    #[test]
    fn firebase_hashes_need_the_projects_parameters_and_keep_its_key_sealed() {
        let signer_key = "jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA==";
        let project =
            FirebaseProject::parse(&format!("signer_key={signer_key}, salt_separator=Bw==, rounds=8, mem_cost=14"))
                .unwrap();
        let given = "$firebase-scrypt$42xEC+ixf3L2lw==$lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ==";
        assert_eq!(admit(given, &strict()), Err(Refused::NoFirebaseProject));
        let rules = ImportRules { firebase: Some(project.sealed(&sealer()).unwrap()), ..strict() };
        round_trip(given, &rules, b"user1password");
        let stored = admit(given, &rules).unwrap();
        assert!(!stored.contains(signer_key) && !stored.contains(&B64URL.encode(B64.decode(signer_key).unwrap())));
        assert_eq!(exported(&stored), given, "the export gives back what was imported");
        let other_kek = Sealer::new(&KeyEncryptionKey([4; 32])).unwrap();
        assert!(!verify(&stored, b"user1password", &other_kek), "the key opens only under its KEK");

        for (bad, why) in [
            ("salt_separator=Bw==, rounds=8, mem_cost=14", "signer_key is missing"),
            ("signer_key=***, salt_separator=Bw==, rounds=8, mem_cost=14", "signer_key is not base64"),
            ("signer_key=AAAA, rounds=8, mem_cost=30", "cost more"),
            ("signer_key=AAAA, rounds=8, mem_cost=14, pepper=1", "unknown parameter"),
        ] {
            let err = FirebaseProject::parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn weak_formats_only_where_allowed() {
        let weak = [
            ("md5$seasalt$9aa4b8addefd43dbf9340b7540e4e49a", PASSWORD),
            ("abf7aad6438836dbe526aa231abde2d0eef74d42", PASSWORD),
            ("9cc2ae8a1ba7a93da39b46fc1019c481", PASSWORD),
        ];
        let allowed = ImportRules { allow_weak: true, ..strict() };
        for (hash, password) in weak {
            assert_eq!(admit(hash, &strict()), Err(Refused::Weak), "{hash}");
            round_trip(hash, &allowed, password);
        }
    }

    #[test]
    fn unknown_malformed_and_costly_hashes_are_refused() {
        for (hash, refused) in [
            ("", Refused::Unknown),
            ("hunter2", Refused::Unknown),
            ("$1$saltsalt$qjXMvbEw8oaL.CzflDugX/", Refused::Unknown),
            ("{SSHA}abc", Refused::Unknown),
            ("$2b$10$short", Refused::Malformed),
            ("$2b$15$KVp5MzQZbNRsfqB3WiTe7uP4Ln38R9eve98zt0rwZj2kzyHDZnvea", Refused::TooCostly),
            (
                "$scrypt$ln=24,r=8,p=1$PFVVpd0mA3GmbygjGJFCkA$d+Na589iEaJNwwrv/laQdSf+C7txGAqhB1mEXDKqqOQ",
                Refused::TooCostly,
            ),
            (
                "$scrypt$ln=14,r=8,p=16$PFVVpd0mA3GmbygjGJFCkA$d+Na589iEaJNwwrv/laQdSf+C7txGAqhB1mEXDKqqOQ",
                Refused::TooCostly,
            ),
            (
                "$pbkdf2-sha256$i=99000000,l=32$PFVVpd0mA3GmbygjGJFCkA$+fjpg7wZlytisERNWorxB2GAaSZVrOQzqoCHDHbTX+8",
                Refused::TooCostly,
            ),
            ("pbkdf2_sha256$99000000$x7k2PqZ9aBc1$vjZrB4daeezO2CBhSkytBQQjICn/Gb7Yfg2iGxakbGE=", Refused::TooCostly),
            ("pbkdf2_sha256$many$x7k2PqZ9aBc1$vjZrB4daeezO2CBhSkytBQQjICn/Gb7Yfg2iGxakbGE=", Refused::Malformed),
            (
                "$6$rounds=999999999$saltsaltsalt$sKNe61LkPtaP4L73hny8BmoICx/sc6/7yzGXrSpKz1UuHF6Nf2.quBtGV62QJYMqhwlCAvUxpiDRLn/9QKXrf/",
                Refused::TooCostly,
            ),
            (
                "$argon2id$v=19$m=1048576,t=2,p=1$9DrxFAKXe/588fw3SkXbDA$LOZsKXWbnBa2wCAVoFoxTxI/kDlpltJagRUkZpSgiIU",
                Refused::TooCostly,
            ),
            ("$argon2id$v=19$m=19456,t=2,p=1", Refused::Malformed),
            ("md5$salt$nothex", Refused::Weak),
        ] {
            assert_eq!(admit(hash, &strict()), Err(refused), "{hash}");
            assert!(!verify(hash, PASSWORD, &sealer()), "{hash} verifies at sign-in");
        }
        let allowed = ImportRules { allow_weak: true, ..strict() };
        assert_eq!(admit("md5$salt$nothex", &allowed), Err(Refused::Malformed));
        // A Firebase hash in its stored form is the server's own: an import gives the exchange form.
        let rules = ImportRules {
            firebase: Some(
                FirebaseProject::parse("signer_key=AAAA, rounds=8, mem_cost=14").unwrap().sealed(&sealer()).unwrap(),
            ),
            ..strict()
        };
        assert_eq!(admit("$firebase-scrypt$r=8,m=14,s=,k=AAAA$c2FsdA==$aGFzaA==", &rules), Err(Refused::Malformed));
    }
}
