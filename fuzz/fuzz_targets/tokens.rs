//! `Tokens::verify_access`, `verify_refresh` and `verify_mfa` on anything a client can send.
//!
//! Each input is tried twice: as a token string itself, and as the choices that forge a token from one the
//! ring really signed (header and payload JSON rewritten: `alg`, `kid`, `typ` and claims swapped, segments
//! replaced; the signature kept, dropped, taken from another token or made with what an attacker has: a key
//! of their own, or the public key as an HMAC secret). Whatever it is, verification must not panic, must
//! refuse with `token_invalid` or `token_expired` only, and must accept nothing but a token the ring signed,
//! of the type asked for, before its `exp`.

#![no_main]

use std::sync::{Arc, LazyLock};

use actix_web::web::Bytes;
use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD as B64URL};
use identsphere::auth::keys::{KeyRing, MacKey, SigningKey};
use identsphere::auth::tokens::{Claims, TokenType, Tokens};
use identsphere::error::ApiError;
use identsphere_actors::{AuthMethod, FamilyRecord, UserProfile};
use identsphere_fuzz::assert_refusal;
use libfuzzer_sys::arbitrary::{self, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

const ISSUER: &str = "https://auth.example.com";
const RSA_KID: &str = "fuzz-rsa";
const MAC_KID: &str = "rt-fuzz";
/// When the tokens were minted: verification happens around it.
const MINTED_AT: i64 = 1_800_000_000;

/// The ring's tokens, what they carry, and what an attacker holds.
struct World {
    tokens: Tokens,
    /// Every token the ring signed, with its type and claims.
    minted: Vec<(TokenType, String, Claims)>,
    /// An RSA key that is not in the ring.
    foreign: RsaKeyPair,
    /// Public material an attacker may try as an HMAC secret (alg confusion).
    public_secrets: Vec<Vec<u8>>,
}

#[expect(clippy::expect_used, reason = "setup: a target that cannot build its key ring has nothing to fuzz")]
fn world() -> World {
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key");
    let public = pair.public_key();
    let n = public.modulus().big_endian_without_leading_zero().to_vec();
    let e = public.exponent().big_endian_without_leading_zero().to_vec();
    let mut secret = vec![0u8; 32];
    SystemRandom::new().fill(&mut secret).expect("randomness");
    let minted_at = OffsetDateTime::from_unix_timestamp(MINTED_AT).expect("a valid instant");
    let jwks = json!({"keys": [{"kty": "RSA", "kid": RSA_KID, "alg": "RS256", "use": "sig",
                                 "n": B64URL.encode(&n), "e": B64URL.encode(&e)}]});
    let public_secrets = vec![
        n.clone(),
        pair.public_key().as_ref().to_vec(),
        jwks.to_string().into_bytes(),
        B64URL.encode(&n).into_bytes(),
        RSA_KID.as_bytes().to_vec(),
        Vec::new(),
    ];
    let signing = SigningKey { kid: RSA_KID.to_owned(), activates_at: minted_at, pair, n, e };
    let mac = MacKey { kid: MAC_KID.to_owned(), activates_at: minted_at, secret };
    let ring = KeyRing { signing: vec![Arc::new(signing)], mac: vec![Arc::new(mac)], jwks: Bytes::new() };
    let tokens = Tokens::new(ring, ISSUER.to_owned(), Duration::minutes(15)).expect("tokens");
    let family =
        FamilyRecord::start(Uuid::new_v4(), Uuid::new_v4(), AuthMethod::Password, minted_at, Duration::days(30));
    let user = UserProfile {
        id: family.user_id,
        email: "ada@example.com".to_owned(),
        email_verified: true,
        display_name: None,
        created_at: minted_at,
    };
    let signed = [
        (TokenType::Access, tokens.issue_access(&family, &user, None, minted_at).expect("access token").token),
        (TokenType::Mfa, tokens.issue_mfa(&family, &user, minted_at).expect("mfa token")),
        (TokenType::Refresh, tokens.issue_refresh(&family, &user).expect("refresh token")),
    ];
    let minted = signed
        .into_iter()
        .map(|(typ, token)| {
            let claims = verify(&tokens, typ, &token, minted_at).expect("a minted token verifies");
            (typ, token, claims)
        })
        .collect();
    let foreign = RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key");
    World { tokens, minted, foreign, public_secrets }
}

static WORLD: LazyLock<World> = LazyLock::new(world);

/// The verification a route does for a token of type `typ`.
fn verify(tokens: &Tokens, typ: TokenType, token: &str, now: OffsetDateTime) -> Result<Claims, ApiError> {
    match typ {
        TokenType::Access => tokens.verify_access(token, now),
        TokenType::Refresh => tokens.verify_refresh(token, now),
        TokenType::Mfa => tokens.verify_mfa(token, now),
    }
}

/// Verifies `token` as every type at `now` and checks the verdicts.
fn check(world: &World, token: &str, now: OffsetDateTime) {
    for typ in [TokenType::Access, TokenType::Refresh, TokenType::Mfa] {
        let minted = world.minted.iter().find(|(t, signed, _)| *t == typ && signed == token);
        match verify(&world.tokens, typ, token, now) {
            Ok(claims) => {
                let Some((_, _, expected)) = minted else {
                    panic!("accepted as {typ:?} a token the ring did not sign: {token:?} -> {claims:?}");
                };
                assert_eq!(&claims, expected, "the claims of a minted token changed");
                assert!(now.unix_timestamp() < claims.exp, "accepted after exp");
            }
            Err(ApiError::TokenExpired) => {
                let Some((_, _, expected)) = minted else {
                    panic!("token_expired, so signature checked, for a token the ring did not sign: {token:?}");
                };
                assert!(now.unix_timestamp() >= expected.exp, "refused as expired before exp");
            }
            Err(err) => {
                assert!(minted.is_none(), "refused a minted {typ:?} token before its exp: {err:?}");
                assert_refusal(&err, &["token_invalid"]);
            }
        }
    }
}

/// A JSON value an attacker might put in a claim or header field.
fn value(u: &mut Unstructured<'_>, likely: &[Value]) -> arbitrary::Result<Value> {
    Ok(match u.int_in_range(0..=5)? {
        0 | 1 => u.choose(likely)?.clone(),
        2 => Value::String(u.arbitrary()?),
        3 => json!(u.arbitrary::<i64>()?),
        4 => json!(u.arbitrary::<f64>()?),
        _ => [Value::Null, json!(true), json!([]), json!({})][u.choose_index(4)?].clone(),
    })
}

/// Rewrites some fields of a header or payload object.
fn mangle(
    u: &mut Unstructured<'_>,
    object: &mut Map<String, Value>,
    fields: &[(&str, &[Value])],
) -> arbitrary::Result<()> {
    for _ in 0..u.int_in_range(0..=4)? {
        let (name, likely) = u.choose(fields)?;
        if u.ratio(1, 5)? {
            object.remove(*name);
        } else {
            object.insert((*name).to_owned(), value(u, likely)?);
        }
    }
    if u.ratio(1, 8)? {
        object.insert(u.arbitrary()?, value(u, &[])?);
    }
    Ok(())
}

/// A segment: the original, the mangled JSON in some base64 dialect, or raw bytes.
fn segment(u: &mut Unstructured<'_>, original: &str, fields: &[(&str, &[Value])]) -> arbitrary::Result<String> {
    let Ok(Value::Object(mut object)) =
        B64URL.decode(original).map_err(drop).and_then(|b| serde_json::from_slice::<Value>(&b).map_err(drop))
    else {
        return Ok(original.to_owned());
    };
    Ok(match u.int_in_range(0..=7)? {
        0..=2 => original.to_owned(),
        3..=5 => {
            mangle(u, &mut object, fields)?;
            let json = Value::Object(object).to_string();
            match u.int_in_range(0..=9)? {
                0 => URL_SAFE.encode(json),
                1 => STANDARD.encode(json),
                _ => B64URL.encode(json),
            }
        }
        6 => B64URL.encode(u.arbitrary::<&[u8]>()?),
        _ => u.arbitrary()?,
    })
}

/// A token forged from a minted one by the choices in `u`.
fn forge(world: &World, u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    let (_, token, _) = u.choose(&world.minted)?;
    let mut parts = token.split('.');
    let (header, payload, signature) = (parts.next(), parts.next(), parts.next());
    let (Some(header), Some(payload), Some(signature)) = (header, payload, signature) else {
        return Ok(token.clone());
    };
    let algs = ["RS256", "HS256", "none", "None", "RS512", "PS256", "ES256", "EdDSA", ""].map(Value::from);
    let kids = [RSA_KID, MAC_KID, "", "../../dev/null", "fuzz-rsa "].map(Value::from);
    let typs = ["JWT", "jwt", "at+jwt", "JWS", ""].map(Value::from);
    let jwk = json!({"kty": "RSA", "kid": RSA_KID, "n": B64URL.encode(world.foreign.public_key().modulus()
        .big_endian_without_leading_zero()), "e": "AQAB"});
    let header_fields: [(&str, &[Value]); 6] = [
        ("alg", &algs),
        ("kid", &kids),
        ("typ", &typs),
        ("jwk", &[jwk]),
        ("jku", &[Value::from("https://evil.example/jwks.json")]),
        ("crit", &[json!(["b64"])]),
    ];
    let token_types = ["access", "refresh", "mfa", "Access", "id"].map(Value::from);
    let issuers = [ISSUER, "https://auth.example.com/", "https://evil.example", ""].map(Value::from);
    let times = [MINTED_AT - 1, MINTED_AT, MINTED_AT + 900, MINTED_AT + 86_400 * 365, i64::MAX, 0].map(Value::from);
    let ids = [Uuid::nil().to_string(), Uuid::max().to_string(), "not-a-uuid".to_owned()].map(Value::from);
    let aals = ["aal1", "aal2", "aal3"].map(Value::from);
    let payload_fields: [(&str, &[Value]); 10] = [
        ("typ", &token_types),
        ("iss", &issuers),
        ("exp", &times),
        ("iat", &times),
        ("auth_time", &times),
        ("sub", &ids),
        ("org", &ids),
        ("sid", &ids),
        ("jti", &ids),
        ("aal", &aals),
    ];
    let header = segment(u, header, &header_fields)?;
    let payload = segment(u, payload, &payload_fields)?;
    let message = format!("{header}.{payload}");
    let signature = match u.int_in_range(0..=7)? {
        0..=2 => signature.to_owned(),
        3 => String::new(),
        4 => {
            let (_, other, _) = u.choose(&world.minted)?;
            other.rsplit('.').next().unwrap_or_default().to_owned()
        }
        5 => {
            let mut sig = vec![0u8; world.foreign.public_modulus_len()];
            let signed = world.foreign.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message.as_bytes(), &mut sig);
            if signed.is_err() {
                return Ok(message);
            }
            B64URL.encode(sig)
        }
        6 => {
            let secret = u.choose(&world.public_secrets)?;
            let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), message.as_bytes());
            B64URL.encode(tag)
        }
        _ => u.arbitrary()?,
    };
    let mut forged = format!("{message}.{signature}");
    if u.ratio(1, 10)? {
        forged.push_str(u.arbitrary()?);
    }
    Ok(forged)
}

fuzz_target!(|data: &[u8]| {
    let world = &*WORLD;
    let mut u = Unstructured::new(data);
    // Around the minting instant: before, during and after the tokens' lives.
    let offset = u.int_in_range(-86_400..=86_400 * 60).unwrap_or(0);
    let now = OffsetDateTime::from_unix_timestamp(MINTED_AT + offset).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    check(world, &String::from_utf8_lossy(data), now);
    if let Ok(forged) = forge(world, &mut u) {
        check(world, &forged, now);
    }
});
