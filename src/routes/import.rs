//! User import and export (`/v1/organizations/{org}/users/import`, `…/export`): NDJSON both ways, streamed
//! (`docs/migration.md`).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::app::AppState;
use crate::auth::imported::FirebaseProject;
use crate::error::ApiError;
use crate::http::json::has_media_type;
use crate::routes::common::*;
use crate::routes::errors;
use crate::service::{Caller, MAX_IMPORT_BYTES};

/// The header that carries a Firebase project's password-hash parameters, once per import.
pub const FIREBASE_HEADER: &str = "IdentSphere-Firebase-Scrypt";
const NDJSON: &str = "application/x-ndjson";

/// The errors of `import_users` before its stream starts (each line has its own afterwards).
pub(crate) fn import_errors() -> Vec<ApiError> {
    let mut all = errors::organization();
    all.extend([
        ApiError::InsufficientRole,
        ApiError::CsrfRejected,
        ApiError::InvalidRequest { message: String::new(), param: None },
        ApiError::PayloadTooLarge { limit: 0 },
        ApiError::UnsupportedMediaType,
    ]);
    all
}

/// The errors of `export_users`.
pub(crate) fn export_errors() -> Vec<ApiError> {
    let mut all = errors::organization();
    all.push(ApiError::InsufficientRole);
    all
}

/// `POST /v1/organizations/{org}/users/import` — requires `admin` (`owner` to import owners) or a key.
#[utoipa::path(
    post,
    path = "/v1/organizations/{org}/users/import",
    tag = "admin",
    summary = "Import users with their password hashes",
    description = "The body is NDJSON (`application/x-ndjson`), one user a line: `email`, `email_verified`, and \
                   optionally `display_name`, `role` (`member` by default; `owner` only by a signed-in owner), \
                   `password_hash` (Argon2, bcrypt, scrypt, PBKDF2, Django PBKDF2, SHA-crypt, Firebase scrypt: \
                   checked at sign-in and replaced by Argon2id on the first success), `created_at`, `external_id`, \
                   `totp_secret` (base32). The answer is NDJSON too, streamed while the body is read, one result a \
                   line: `{\"line\", \"status\": \"created\"|\"exists\"|\"invalid\", \"user_id\"?, \"error\"?}`; a \
                   final `failed` result means nothing from that line on was imported (send the rest again: \
                   an import never creates anything twice). At most 100,000 lines and 64 MiB per request. A \
                   Firebase project's parameters go once in the `IdentSphere-Firebase-Scrypt` header: \
                   `signer_key=…, salt_separator=…, rounds=8, mem_cost=14`.",
    params(
        ("org" = String, Path, description = "Organization id or slug"),
        ("IdentSphere-Firebase-Scrypt" = Option<String>, Header, description = "A Firebase project's hash parameters"),
    ),
    request_body(content = String, content_type = "application/x-ndjson", description = "One user a line."),
    security(("bearer" = []), ("access_cookie" = []), ("api_key" = [])),
    responses((status = 200, description = "One result a line.", content_type = "application/x-ndjson", body = String)),
)]
pub(crate) async fn import_users(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    // Who may import comes first: nothing about the body is looked at for anyone else.
    let job = state.service.import_job(&caller, &path_org(&path)?).await?;
    if !has_media_type(&req, NDJSON) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let length = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if length.is_some_and(|length| length > MAX_IMPORT_BYTES) {
        return Err(ApiError::PayloadTooLarge { limit: usize::try_from(MAX_IMPORT_BYTES).unwrap_or(usize::MAX) });
    }
    let job = match req.headers().get(FIREBASE_HEADER) {
        None => job,
        Some(value) => {
            let project = value.to_str().map_err(|e| e.to_string()).and_then(FirebaseProject::parse);
            job.with_firebase(&project.map_err(|problem| ApiError::invalid_field(FIREBASE_HEADER, problem))?)?
        }
    };
    Ok(HttpResponse::Ok().content_type(NDJSON).streaming(job.run(body)))
}

/// `GET /v1/organizations/{org}/users/export` — requires `owner` at `aal2`, or a platform key.
#[utoipa::path(
    get,
    path = "/v1/organizations/{org}/users/export",
    tag = "admin",
    summary = "Export the organization's users with their password hashes",
    description = "NDJSON in the import's format, one member a line, streamed: what this route writes, the import \
                   reads (here or in any system that reads PHC strings). Hashes are our Argon2id, or an imported \
                   hash not used since; TOTP secrets are included. A signed-in owner at `aal2`, or a platform \
                   key; audited (`users.exported`).",
    params(("org" = String, Path, description = "Organization id or slug")),
    security(("bearer" = []), ("access_cookie" = []), ("api_key" = [])),
    responses((status = 200, description = "One member a line.", content_type = "application/x-ndjson", body = String)),
)]
pub(crate) async fn export_users(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let lines = state.service.export_users(&caller, &path_org(&path)?).await?;
    Ok(HttpResponse::Ok().content_type(NDJSON).insert_header((header::CACHE_CONTROL, "no-store")).streaming(lines))
}
