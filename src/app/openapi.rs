//! The OpenAPI 3.1 description of the API, served at `GET /openapi.json`, generated from the code so it
//! cannot drift.
//!
//! - Operations, request bodies and success responses come from each handler's `#[utoipa::path]` and
//!   the `ToSchema` of the very types the handlers deserialize and serialize; the routing table
//!   (`routes::route_table()`) lists the handlers, so a route cannot be added without its operation.
//! - Error responses come from the table too: each route names the `ApiError`s it can answer with, and
//!   their status, code and type are read from `ApiError::catalog()`, grouped by status.
//! - Every response carries `X-Request-Id`; `429` and `503` carry `Retry-After`.
//!
//! The document is built and serialized once, on first use.

use std::collections::{BTreeMap, BTreeSet};

use actix_web::web::Bytes;
use utoipa::openapi::Required;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::path::{HttpMethod, Operation, PathItem};
use utoipa::openapi::schema::{AdditionalProperties, SchemaType};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    AllOfBuilder, ContentBuilder, Object, ObjectBuilder, OpenApi as Document, Ref, RefOr, ResponseBuilder, Schema, Type,
};
use utoipa::{Modify, OpenApi};

use crate::error::ApiError;
use crate::http::credentials::{ACCESS_COOKIE, REFRESH_COOKIE};
use crate::http::error::{Envelope, ErrorBody};
use crate::routes;

/// What every document starts with: the description, the error envelope and the security schemes.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "IdentSphere",
        description = "Multi-tenant authentication: REST + JSON, RS256 JWTs verifiable with a public JWKS.\n\n\
            Every request body is JSON (`Content-Type: application/json`, at most 64 KiB, unknown fields \
            refused) and every response is JSON except `204` and `/metrics`. Every error, from every route \
            and layer, is the `ErrorEnvelope`; each error response below lists the codes it can carry. \
            A method a path does not take is `405 method_not_allowed` with `Allow`; an unknown path is \
            `404 not_found`. Every response carries `X-Request-Id`.\n\n\
            A state-changing request authenticated by a session cookie only is refused with \
            `403 csrf_rejected` when its `Origin` (or, without one, `Sec-Fetch-Site: cross-site`) is not \
            the public base URL's origin or an allowed one.",
    ),
    components(schemas(Envelope, ErrorBody)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "auth", description = "Sign-up, sign-in, refresh rotation, logout and the session."),
        (name = "mfa", description = "The second factor: TOTP, recovery codes, passkeys, step-up to `aal2`."),
        (name = "passkeys", description = "Passkeys (WebAuthn): registration, management, sign-in."),
        (name = "social", description = "Sign-in through a provider (Google, Microsoft, GitHub, OpenID Connect) and linked identities."),
        (name = "sso", description = "Enterprise SSO: organizations' own identity providers, their verified domains, discovery by address."),
        (name = "account", description = "Email verification, password reset and change."),
        (name = "organizations", description = "Organizations, members and roles."),
        (name = "discovery", description = "Public documents: keys, OpenID metadata, this description."),
        (name = "revocations", description = "The revocation feed, for resource servers that verify tokens locally."),
        (name = "operations", description = "Liveness, readiness and metrics."),
    ),
)]
struct Base;

/// The security schemes the operations name.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .description(Some("An access token (`typ: access`) of a token response."))
            .build();
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
        let platform = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("The platform API key (`IDENTSPHERE_PLATFORM_API_KEY`)."))
            .build();
        components.add_security_scheme("platform_api_key", SecurityScheme::Http(platform));
        let api_key = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "An API key: an organization's (`isk_…`, acting as an owner of it) or a platform key (`isp_…`, \
                 made by `identsphere admin create-key`, acting as an owner of every organization).",
            ))
            .build();
        components.add_security_scheme("api_key", SecurityScheme::Http(api_key));
        components.add_security_scheme(
            "access_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                ACCESS_COOKIE,
                "The access token, as the token response sets it (CSRF rule applies to unsafe methods).",
            ))),
        );
        components.add_security_scheme(
            "refresh_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                REFRESH_COOKIE,
                "The refresh token, as the token response sets it; sent to `/v1/auth` only (CSRF rule applies).",
            ))),
        );
    }
}

/// The document, built from the code.
#[must_use]
pub fn document() -> Document {
    let mut document = Base::openapi();
    document.merge(routes::Operations::openapi());
    merge_flattened(&mut document);
    close_objects(&mut document);
    add_headers(&mut document);
    for endpoint in routes::route_table() {
        if let Some(operation) = operation_mut(&mut document, endpoint.path, endpoint.method) {
            add_error_responses(operation, &endpoint.errors());
        }
    }
    for operation in operations_mut(&mut document) {
        optional_bodies_are_objects(operation);
        for response in operation.responses.responses.values_mut() {
            if let RefOr::T(response) = response {
                response.headers.insert(REQUEST_ID.to_owned(), header_ref(REQUEST_ID));
            }
        }
    }
    document
}

/// The document as JSON: made once when the application is built, served from its state.
///
/// # Errors
/// If it does not serialize (it always does).
pub fn json() -> anyhow::Result<Bytes> {
    Ok(Bytes::from(document().to_json()?))
}

/// The operation of `method` on `path`, if the document has it.
fn operation_mut<'a>(document: &'a mut Document, path: &str, method: &str) -> Option<&'a mut Operation> {
    let item: &mut PathItem = document.paths.paths.get_mut(path)?;
    let method = match method {
        "GET" => HttpMethod::Get,
        "POST" => HttpMethod::Post,
        "PUT" => HttpMethod::Put,
        "PATCH" => HttpMethod::Patch,
        "DELETE" => HttpMethod::Delete,
        _ => return None,
    };
    match method {
        HttpMethod::Get => item.get.as_mut(),
        HttpMethod::Post => item.post.as_mut(),
        HttpMethod::Put => item.put.as_mut(),
        HttpMethod::Patch => item.patch.as_mut(),
        HttpMethod::Delete => item.delete.as_mut(),
        _ => None,
    }
}

/// Codes and types of `errors`, by HTTP status.
fn by_status(errors: &[ApiError]) -> BTreeMap<u16, (BTreeSet<&'static str>, BTreeSet<&'static str>)> {
    let mut statuses: BTreeMap<u16, (BTreeSet<_>, BTreeSet<_>)> = BTreeMap::new();
    for error in errors {
        let (code, status, kind) = error.catalog();
        let (codes, kinds) = statuses.entry(status.as_u16()).or_default();
        codes.insert(code);
        kinds.insert(kind);
    }
    statuses
}

/// A string schema of exactly `values`.
fn enum_of(values: &BTreeSet<&'static str>) -> Object {
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(values.iter().copied())).build()
}

/// `#[serde(flatten)]` is described as `allOf` of the flattened component and an object of the other
/// fields: once the components are closed (below) no value could match both, so each such composition
/// becomes the one object it serializes as, with the properties and required fields of its parts.
fn merge_flattened(document: &mut Document) {
    let Some(components) = document.components.as_mut() else { return };
    let named = components.schemas.clone();
    for schema in components.schemas.values_mut() {
        let RefOr::T(Schema::AllOf(all_of)) = schema else { continue };
        let parts: Option<Vec<Object>> = all_of
            .items
            .iter()
            .map(|item| match item {
                RefOr::T(Schema::Object(object)) => Some(object.clone()),
                RefOr::Ref(reference) => match named.get(reference.ref_location.rsplit('/').next()?) {
                    Some(RefOr::T(Schema::Object(object))) => Some(object.clone()),
                    _ => None,
                },
                RefOr::T(_) => None,
            })
            .collect();
        let Some(parts) = parts else { continue };
        let mut merged = ObjectBuilder::new().schema_type(Type::Object).build();
        for part in parts {
            merged.properties.extend(part.properties);
            merged.required.extend(part.required);
        }
        merged.description.clone_from(&all_of.description);
        *schema = RefOr::T(Schema::Object(merged));
    }
}

/// Closes every object of the components (the handlers write exactly the fields of their types; the
/// request bodies refuse unknown ones) and limits the envelope's `code` and `type` to the catalog.
fn close_objects(document: &mut Document) {
    let Some(components) = document.components.as_mut() else { return };
    let every = by_status(&ApiError::every_kind());
    let codes = every.values().flat_map(|(codes, _)| codes.iter().copied()).collect();
    let kinds = every.values().flat_map(|(_, kinds)| kinds.iter().copied()).collect();
    for (name, schema) in &mut components.schemas {
        let RefOr::T(Schema::Object(object)) = schema else { continue };
        if !object.properties.is_empty() {
            object.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
        }
        if name == ERROR {
            object.properties.insert("code".to_owned(), RefOr::T(Schema::Object(enum_of(&codes))));
            object.properties.insert("type".to_owned(), RefOr::T(Schema::Object(enum_of(&kinds))));
        }
    }
}

/// The component names of the envelope and its `error` object (`crate::error`).
const ENVELOPE: &str = "ErrorEnvelope";
const ERROR: &str = "Error";

/// One response per error status `errors` can have: the envelope, its codes and types listed.
fn add_error_responses(operation: &mut Operation, errors: &[ApiError]) {
    for (status, (codes, kinds)) in by_status(errors) {
        let narrowed = ObjectBuilder::new().schema_type(Type::Object).property(
            "error",
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .property("code", enum_of(&codes))
                .property("type", enum_of(&kinds)),
        );
        let schema = AllOfBuilder::new().item(Ref::from_schema_name(ENVELOPE)).item(narrowed);
        let listed: Vec<String> = codes.iter().map(|code| format!("`{code}`")).collect();
        let mut response = ResponseBuilder::new()
            .description(format!("The error envelope; `code` is one of {}.", listed.join(", ")))
            .content("application/json", ContentBuilder::new().schema(Some(schema)).build())
            .build();
        if status == 429 || status == 503 {
            response.headers.insert(RETRY_AFTER.to_owned(), header_ref(RETRY_AFTER));
        }
        operation.responses.responses.insert(status.to_string(), RefOr::T(response));
    }
}

const REQUEST_ID: &str = "X-Request-Id";
const RETRY_AFTER: &str = "Retry-After";

/// The headers responses share, as components.
fn add_headers(document: &mut Document) {
    // utoipa's `Header` has no field for `required`: it goes in as an extension, which serializes flat.
    let required = || Some(Extensions::from_iter([("required", true)]));
    let request_id = HeaderBuilder::new()
        .schema(Some(ObjectBuilder::new().schema_type(Type::String).min_length(Some(1)).max_length(Some(128))))
        .description(Some("The request's id: the client's, if it sent a plain one of at most 128 characters."))
        .extensions(required())
        .build();
    let retry_after = HeaderBuilder::new()
        .schema(Some(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0))))
        .description(Some("Seconds to wait before trying again."))
        .extensions(required())
        .build();
    let components = document.components.get_or_insert_with(Default::default);
    components.headers.insert(REQUEST_ID.to_owned(), RefOr::T(request_id));
    components.headers.insert(RETRY_AFTER.to_owned(), RefOr::T(retry_after));
}

fn header_ref(name: &str) -> RefOr<Header> {
    RefOr::Ref(Ref::new(format!("#/components/headers/{name}")))
}

/// Every operation of the document.
fn operations_mut(document: &mut Document) -> impl Iterator<Item = &mut Operation> {
    document.paths.paths.values_mut().flat_map(|item| {
        [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete].into_iter().flatten()
    })
}

/// An optional body (`Option<T>` in `#[utoipa::path]`) is "no body or a `T`": the extractors refuse a
/// JSON `null` (`http::json`), so its schema is `T` and the body simply not `required`.
fn optional_bodies_are_objects(operation: &mut Operation) {
    let Some(RefOr::T(body)) = operation.request_body.as_mut() else { return };
    if body.required == Some(Required::True) {
        return;
    }
    for content in body.content.values_mut() {
        let RefOr::T(content) = content else { continue };
        let Some(RefOr::T(Schema::OneOf(one_of))) = &content.schema else { continue };
        let is_null = |item: &RefOr<Schema>| matches!(item, RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null));
        let rest: Vec<_> = one_of.items.iter().filter(|item| !is_null(item)).cloned().collect();
        if let [only] = rest.as_slice() {
            content.schema = Some(only.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::*;

    /// The position of a variant in `ApiError::every_kind()`: a new variant fails to compile here until it
    /// is given the next position, and `every_kind_lists_each_variant_once` until it is listed.
    fn ordinal(error: &ApiError) -> usize {
        match error {
            ApiError::InvalidRequest { .. } => 0,
            ApiError::InvalidEmail(_) => 1,
            ApiError::WeakPassword { .. } => 2,
            ApiError::EmailTaken => 3,
            ApiError::InvalidCredentials => 4,
            ApiError::TokenMissing => 5,
            ApiError::TokenInvalid => 6,
            ApiError::TokenExpired => 7,
            ApiError::TokenRevoked => 8,
            ApiError::RefreshTokenReused => 9,
            ApiError::MfaInvalidCode => 10,
            ApiError::InsufficientAal => 11,
            ApiError::ReauthenticationRequired => 12,
            ApiError::WrongOrganization => 13,
            ApiError::MfaAlreadyEnrolled => 14,
            ApiError::MfaNotEnrolled => 15,
            ApiError::PasskeyInvalid => 16,
            ApiError::CeremonyExpired => 17,
            ApiError::PasskeyExists => 18,
            ApiError::PasskeyNotFound => 19,
            ApiError::LastSignInMethod => 20,
            ApiError::PasskeysUnavailable => 21,
            ApiError::RedirectUriNotAllowed => 22,
            ApiError::OAuthStateInvalid => 23,
            ApiError::OAuthCodeInvalid => 24,
            ApiError::OAuthProviderError => 25,
            ApiError::OAuthEmailUnverified => 26,
            ApiError::ProviderNotFound => 27,
            ApiError::IdentityNotFound => 28,
            ApiError::IdentityTaken => 29,
            ApiError::OAuthProviderUnavailable => 30,
            ApiError::SsoRequired => 31,
            ApiError::ConnectionNotFound => 32,
            ApiError::DomainTaken => 33,
            ApiError::LinkInvalid => 34,
            ApiError::NotAMember => 35,
            ApiError::InsufficientRole => 36,
            ApiError::SlugTaken => 37,
            ApiError::LastOwner => 38,
            ApiError::MemberNotFound => 39,
            ApiError::SessionNotFound => 40,
            ApiError::InvitationInvalid => 41,
            ApiError::InvitationEmailMismatch => 42,
            ApiError::InvitationNotFound => 43,
            ApiError::ApiKeyNotFound => 44,
            ApiError::AccountDisabled => 45,
            ApiError::AuthMethodNotAllowed => 46,
            ApiError::SignupNotAllowed => 47,
            ApiError::CsrfRejected => 48,
            ApiError::OrganizationNotFound => 49,
            ApiError::NotFound => 50,
            ApiError::MethodNotAllowed { .. } => 51,
            ApiError::PayloadTooLarge { .. } => 52,
            ApiError::UnsupportedMediaType => 53,
            ApiError::RateLimited { .. } => 54,
            ApiError::ServiceUnavailable(_) => 55,
            ApiError::Internal(_) => 56,
        }
    }
    const VARIANTS: usize = 57;

    #[test]
    fn a_flattened_response_is_one_closed_object_with_the_fields_of_its_parts() {
        let doc = json();
        for (name, own, flattened) in
            [("ConfirmResponse", "recovery_codes", "access_token"), ("OrganizationUser", "disabled", "email")]
        {
            let schema = &doc["components"]["schemas"][name];
            assert_eq!(schema["additionalProperties"], false, "{name}: {schema}");
            let required = schema["required"].as_array().unwrap();
            for field in [own, flattened] {
                assert!(schema["properties"][field].is_object(), "{name} lacks {field}: {schema}");
                assert!(required.contains(&Value::from(field)), "{name} does not require {field}");
            }
        }
    }

    #[test]
    fn every_kind_lists_each_variant_once() {
        let ordinals: Vec<usize> = ApiError::every_kind().iter().map(ordinal).collect();
        assert_eq!(ordinals, (0..VARIANTS).collect::<Vec<_>>());
        let codes: BTreeSet<_> = ApiError::every_kind().iter().map(|e| e.catalog().0).collect();
        assert_eq!(codes.len(), VARIANTS, "each variant has a code of its own");
    }

    fn json() -> Value {
        serde_json::to_value(document()).unwrap()
    }

    fn operations(doc: &Value) -> BTreeSet<(String, String)> {
        let mut found = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                found.insert((path.clone(), method.to_ascii_uppercase()));
            }
        }
        found
    }

    #[test]
    fn the_document_is_openapi_3_1_and_describes_exactly_the_routing_table() {
        let doc = json();
        assert_eq!(doc["openapi"], "3.1.0");
        let table: BTreeSet<_> =
            routes::route_table().iter().map(|e| (e.path.to_owned(), e.method.to_owned())).collect();
        assert_eq!(operations(&doc), table);
    }

    #[test]
    fn each_operation_lists_the_errors_of_its_route_by_status() {
        let doc = json();
        for endpoint in routes::route_table() {
            let operation = &doc["paths"][endpoint.path][endpoint.method.to_ascii_lowercase()];
            let responses = operation["responses"].as_object().unwrap();
            // A redirect is the success of the browser routes (a provider sign-in).
            let success = |s: &String| s.starts_with('2') || s == "302";
            assert!(responses.keys().any(success), "{endpoint:?} has a success response");
            let documented: BTreeSet<&str> =
                responses.keys().filter(|s| s.as_str() >= "400").map(String::as_str).collect();
            let errors = endpoint.errors();
            let expected = by_status(&errors);
            let expected_statuses: Vec<String> = expected.keys().map(u16::to_string).collect();
            assert_eq!(documented, expected_statuses.iter().map(String::as_str).collect(), "{endpoint:?}");
            assert!(expected.contains_key(&500), "{endpoint:?}: any route can fail with a bug");
            for (status, (codes, kinds)) in expected {
                let schema = &responses[&status.to_string()]["content"]["application/json"]["schema"];
                assert_eq!(schema["allOf"][0]["$ref"], "#/components/schemas/ErrorEnvelope");
                let error = &schema["allOf"][1]["properties"]["error"]["properties"];
                let listed = |field: &str| -> BTreeSet<&str> {
                    error[field]["enum"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect()
                };
                assert_eq!(listed("code"), codes, "{endpoint:?} {status}");
                assert_eq!(listed("type"), kinds, "{endpoint:?} {status}");
            }
        }
    }

    /// Every `$ref` points at something the document has.
    #[test]
    fn every_reference_resolves() {
        fn walk<'a>(value: &'a Value, refs: &mut Vec<&'a str>) {
            match value {
                Value::Object(map) => {
                    if let Some(Value::String(target)) = map.get("$ref") {
                        refs.push(target);
                    }
                    map.values().for_each(|v| walk(v, refs));
                }
                Value::Array(items) => items.iter().for_each(|v| walk(v, refs)),
                _ => {}
            }
        }
        let doc = json();
        let mut refs = Vec::new();
        walk(&doc, &mut refs);
        assert!(!refs.is_empty());
        for target in refs {
            let pointer = target.strip_prefix('#').unwrap();
            assert!(doc.pointer(pointer).is_some(), "{target} does not resolve");
        }
    }

    #[test]
    fn the_served_json_is_the_document() {
        let served: Value = serde_json::from_slice(&super::json().unwrap()).unwrap();
        assert_eq!(served, json());
    }
}
