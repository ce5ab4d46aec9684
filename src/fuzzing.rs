//! What the fuzz targets in `fuzz/` need and the crate keeps private: the request body types are
//! `pub(crate)` to their routes, so their decoders are listed here. Built only with the `fuzzing`
//! feature; not an API.

use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::http::json::parse;
use crate::routes::{account, auth, mfa, organizations};

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
    ("CreateBody", decode::<organizations::CreateBody>),
    ("UpdateBody", decode::<organizations::UpdateBody>),
    ("RoleBody", decode::<organizations::RoleBody>),
    ("InviteBody", decode::<organizations::InviteBody>),
    ("AcceptBody", decode::<organizations::AcceptBody>),
];
