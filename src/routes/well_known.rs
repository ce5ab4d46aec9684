//! Public discovery documents: the JWKS and the OpenID configuration. No authentication.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::auth::keys::JWKS_MAX_AGE;
use crate::error::ApiError;
use crate::startup::AppState;

fn cached(body: impl actix_web::body::MessageBody + 'static) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, format!("public, max-age={}", JWKS_MAX_AGE.whole_seconds())))
        .insert_header((CONTENT_TYPE, "application/json"))
        .body(body)
}

/// `GET /.well-known/jwks.json` — public. The RSA public keys that verify our tokens.
pub async fn get_jwks(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(cached(state.service.tokens().jwks()?))
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
