//! Public discovery documents: the JWKS, the OpenID configuration and the OpenAPI description. No
//! authentication.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::app::AppState;
use crate::auth::keys::JWKS_MAX_AGE;
use crate::error::ApiError;
use crate::routes::common::*;
use crate::routes::errors;

fn cached(body: impl actix_web::body::MessageBody + 'static) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, format!("public, max-age={}", JWKS_MAX_AGE.whole_seconds())))
        .insert_header((CONTENT_TYPE, "application/json"))
        .body(body)
}

/// The claims our tokens carry (`docs/api.md`).
const CLAIMS: [&str; 12] =
    ["sub", "org", "iss", "exp", "iat", "typ", "email", "jti", "sid", "aal", "auth_time", "auth_method"];

// Documentation only: the key ring serializes the JWKS once per key change (`auth::keys`).
/// The public keys that verify our access tokens.
#[derive(Debug, utoipa::ToSchema)]
#[schema(as = Jwks)]
#[expect(dead_code, reason = "describes the JSON the key ring writes")]
pub(crate) struct JwksDoc {
    keys: Vec<JwkDoc>,
}

/// One RSA public key: never a private part.
#[derive(Debug, utoipa::ToSchema)]
#[schema(as = Jwk)]
#[expect(dead_code, reason = "describes the JSON the key ring writes")]
pub(crate) struct JwkDoc {
    #[schema(schema_with = rsa_schema)]
    kty: String,
    /// Key id, the `kid` of the tokens it verifies.
    kid: String,
    #[schema(rename = "use", schema_with = sig_schema)]
    use_: String,
    #[schema(schema_with = rs256_schema)]
    alg: String,
    /// Modulus, base64url without padding.
    n: String,
    /// Public exponent, base64url without padding.
    e: String,
}

fn rsa_schema() -> utoipa::openapi::Object {
    string_enum(["RSA"])
}

fn sig_schema() -> utoipa::openapi::Object {
    string_enum(["sig"])
}

fn rs256_schema() -> utoipa::openapi::Object {
    string_enum(["RS256"])
}

/// OpenID Provider metadata: where the keys are and what the tokens carry.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct OpenIdConfiguration {
    /// The configured public base URL: the `iss` of every token.
    issuer: String,
    jwks_uri: String,
    #[schema(value_type = Vec<String>)]
    id_token_signing_alg_values_supported: [&'static str; 1],
    #[schema(value_type = Vec<String>)]
    claims_supported: [&'static str; 12],
}

/// The errors of the discovery documents: only a bug.
pub(crate) fn discovery_errors() -> Vec<ApiError> {
    vec![errors::bug()]
}

/// `GET /.well-known/jwks.json` — public. The RSA public keys that verify our tokens.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "discovery",
    summary = "The JSON Web Key Set",
    description = "The RSA public keys that verify access tokens, including the next key before it signs.",
    responses((status = 200, description = "The public keys.", body = JwksDoc,
               headers(("Cache-Control" = String, description = "`public, max-age=…`")))),
)]
pub async fn get_jwks(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(cached(state.service.tokens().jwks()?))
}

/// `GET /.well-known/openid-configuration` — public. Issuer and where its keys are.
#[utoipa::path(
    get,
    path = "/.well-known/openid-configuration",
    tag = "discovery",
    summary = "OpenID Provider metadata",
    responses((status = 200, description = "The issuer and where its keys are.", body = OpenIdConfiguration,
               headers(("Cache-Control" = String, description = "`public, max-age=…`")))),
)]
pub async fn get_openid_configuration(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let issuer = state.service.tokens().issuer();
    let document = OpenIdConfiguration {
        issuer: issuer.to_owned(),
        jwks_uri: format!("{issuer}/.well-known/jwks.json"),
        id_token_signing_alg_values_supported: ["RS256"],
        claims_supported: CLAIMS,
    };
    let body = serde_json::to_vec(&document).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(cached(body))
}

/// `GET /openapi.json` — public. This API's OpenAPI 3.1 description, generated once from the code.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "discovery",
    summary = "The OpenAPI 3.1 description of this API",
    responses((status = 200, description = "This document.", content_type = "application/json",
               body = Object)),
)]
pub async fn get_openapi(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().insert_header((CONTENT_TYPE, "application/json")).body(state.openapi.clone())
}
