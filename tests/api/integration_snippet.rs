use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::Value;

/// The claims of `token` when IdentSphere at `base` issued it as an access token, or why not. Fetch the
/// key set once and keep it in a real service (refetch on an unknown `kid`).
pub async fn verify(base: &str, token: &str) -> Result<Value, Box<dyn std::error::Error>> {
    let jwks: JwkSet = reqwest::get(format!("{base}/.well-known/jwks.json")).await?.json().await?;
    let kid = decode_header(token)?.kid.ok_or("no kid")?;
    let key = DecodingKey::from_jwk(jwks.find(&kid).ok_or("unknown kid")?)?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[base]);
    let claims = decode::<Value>(token, &key, &validation)?.claims;
    if claims["typ"] != "access" {
        return Err("not an access token".into());
    }
    Ok(claims)
}
