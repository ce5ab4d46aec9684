//! Public discovery documents: the JWKS and the OpenID configuration. No authentication.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::startup::AppState;

/// How long clients and caches may keep the discovery documents: a key must be published at least
/// this long before it signs anything.
pub const JWKS_MAX_AGE_SECS: u32 = 300;

fn cached(body: impl actix_web::body::MessageBody + 'static) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, format!("public, max-age={JWKS_MAX_AGE_SECS}")))
        .insert_header((CONTENT_TYPE, "application/json"))
        .body(body)
}

/// `GET /.well-known/jwks.json` — public. The RSA public keys that verify our tokens.
pub async fn get_jwks(state: web::Data<AppState>) -> HttpResponse {
    cached(state.service.tokens().jwks())
}

/// `GET /.well-known/openid-configuration` — public. Issuer and where its keys are.
pub async fn get_openid_configuration(state: web::Data<AppState>) -> HttpResponse {
    let issuer = state.service.tokens().issuer();
    let document = json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "id_token_signing_alg_values_supported": ["RS256"],
        "claims_supported": ["sub", "org", "iss", "exp", "iat", "typ", "email", "jti", "sid", "aal",
                             "auth_time", "auth_method"],
    });
    cached(document.to_string())
}
