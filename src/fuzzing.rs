//! What the fuzz targets in `fuzz/` need and the crate keeps private: the request body types are
//! `pub(crate)` to their routes, so their decoders are listed here (hidden from the docs; not an API).
//! The test below fails when a request body of the OpenAPI document has no decoder here, so a new body
//! is fuzzed from the day it exists.

use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::http::json::parse;
use crate::routes::{
    account, admin, audit, auth, invitations, members, mfa, oauth, organizations, passkeys, revocations, sso,
};

/// Decodes a body as one route's body type with [`parse`], keeping only the verdict.
pub type Decoder = fn(&[u8]) -> Result<(), ApiError>;

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<(), ApiError> {
    parse::<T>(body).map(drop)
}

/// Every JSON request body of the API, by type name.
pub const BODY_DECODERS: &[(&str, Decoder)] = &[
    ("RegisterBody", decode::<auth::RegisterBody>),
    ("LoginBody", decode::<auth::LoginBody>),
    ("RefreshBody", decode::<auth::RefreshBody>),
    ("LogoutBody", decode::<auth::LogoutBody>),
    ("LinkBody", decode::<account::LinkBody>),
    ("ForgotBody", decode::<account::ForgotBody>),
    ("ResetBody", decode::<account::ResetBody>),
    ("ChangeBody", decode::<account::ChangeBody>),
    ("EnrollBody", decode::<mfa::EnrollBody>),
    ("CodeBody", decode::<mfa::CodeBody>),
    ("VerifyBody", decode::<mfa::VerifyBody>),
    ("ReauthenticationBody", decode::<mfa::ReauthenticationBody>),
    ("CreateBody", decode::<organizations::CreateBody>),
    ("UpdateBody", decode::<organizations::UpdateBody>),
    ("RoleBody", decode::<members::RoleBody>),
    ("InviteBody", decode::<invitations::InviteBody>),
    ("AcceptBody", decode::<invitations::AcceptBody>),
    ("KeyBody", decode::<admin::KeyBody>),
    ("NewUserBody", decode::<admin::NewUserBody>),
    ("UserUpdateBody", decode::<admin::UserUpdateBody>),
    ("RegistrationOptionsBody", decode::<passkeys::RegistrationOptionsBody>),
    ("RegistrationBody", decode::<passkeys::RegistrationBody>),
    ("RenameBody", decode::<passkeys::RenameBody>),
    ("DeleteBody", decode::<passkeys::DeleteBody>),
    ("AuthenticationOptionsBody", decode::<passkeys::AuthenticationOptionsBody>),
    ("AuthenticationBody", decode::<passkeys::AuthenticationBody>),
    ("CodeExchangeBody", decode::<oauth::CodeExchangeBody>),
    ("IdentityLinkBody", decode::<oauth::IdentityLinkBody>),
    ("UnlinkBody", decode::<oauth::UnlinkBody>),
    ("ConnectionBody", decode::<sso::ConnectionBody>),
    ("ConnectionUpdateBody", decode::<sso::ConnectionUpdateBody>),
    ("DomainBody", decode::<sso::DomainBody>),
    ("DiscoverBody", decode::<sso::DiscoverBody>),
];

/// Parses a query string as one route's query, keeping only the verdict.
pub type QueryDecoder = fn(&str) -> Result<(), ApiError>;

/// Every query of the API, by the path of its route.
pub const QUERY_DECODERS: &[(&str, QueryDecoder)] = &[
    ("/v1/organizations/{org}/audit-log", |raw| audit::audit_query(raw).map(drop)),
    ("/v1/organizations/{org}/users", |raw| admin::user_query(raw).map(drop)),
    ("/v1/revocations", |raw| revocations::feed_query(raw).map(drop)),
    ("/v1/auth/oauth/{provider}/authorize", |raw| oauth::query::<oauth::AuthorizeQuery>(raw).map(drop)),
    ("/v1/auth/oauth/{provider}/callback", |raw| oauth::query::<oauth::CallbackQuery>(raw).map(drop)),
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::{BODY_DECODERS, QUERY_DECODERS};

    /// Every operation of the API description, with its path.
    fn operations() -> Vec<(String, Value)> {
        let document = serde_json::to_value(crate::app::openapi::document()).unwrap_or_default();
        let paths = document["paths"].as_object().cloned().unwrap_or_default();
        paths
            .into_iter()
            .flat_map(|(path, item)| {
                let operations: Vec<Value> = item.as_object().into_iter().flat_map(|i| i.values().cloned()).collect();
                operations.into_iter().map(move |operation| (path.clone(), operation))
            })
            .collect()
    }

    /// The schema names of every request body in the API description.
    fn documented_bodies() -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for (_, operation) in operations() {
            let schema = &operation["requestBody"]["content"]["application/json"]["schema"];
            if let Some(reference) = schema["$ref"].as_str() {
                names.insert(reference.rsplit('/').next().unwrap_or_default().to_owned());
            }
        }
        names
    }

    #[test]
    fn every_documented_query_has_a_decoder_to_fuzz() {
        let listed: BTreeSet<&str> = QUERY_DECODERS.iter().map(|(path, _)| *path).collect();
        let documented: BTreeSet<String> = operations()
            .into_iter()
            .filter(|(_, operation)| {
                operation["parameters"].as_array().is_some_and(|ps| ps.iter().any(|p| p["in"] == "query"))
            })
            .map(|(path, _)| path)
            .collect();
        assert_eq!(listed, documented.iter().map(String::as_str).collect(), "QUERY_DECODERS and the document differ");
    }

    #[test]
    fn every_documented_request_body_has_a_decoder_to_fuzz() {
        let listed: BTreeSet<String> = BODY_DECODERS.iter().map(|(name, _)| (*name).to_owned()).collect();
        let documented = documented_bodies();
        assert!(documented.len() >= 15, "the document's bodies were not found: {documented:?}");
        assert_eq!(listed, documented, "BODY_DECODERS and the documented request bodies differ");
    }
}
