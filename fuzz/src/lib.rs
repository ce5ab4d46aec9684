//! What the fuzz targets share: the check that a refusal is a client error in the envelope.
//!
//! Each target in `fuzz_targets/` feeds one family of parsers and panics (a libFuzzer crash) when one of
//! them panics itself or answers anything but a documented refusal.

use actix_web::ResponseError as _;
use actix_web::body::MessageBody as _;
use identsphere::error::ApiError;

/// Asserts that `err` is one of the refusals named by `codes`: a 4xx answered with the error envelope
/// carrying that code, never a 500.
pub fn assert_refusal(err: &ApiError, codes: &[&str]) {
    let (code, status, _) = err.catalog();
    assert!(codes.contains(&code), "{code} is not among the expected refusals {codes:?}: {err:?}");
    assert!(status.is_client_error(), "{code} answers {status}");
    let Ok(body) = err.error_response().into_body().try_into_bytes() else {
        panic!("the {code} envelope is not a complete body");
    };
    let envelope: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(e) => panic!("the {code} envelope is not JSON: {e}"),
    };
    let error = &envelope["error"];
    assert_eq!(error["code"], code, "{envelope}");
    assert!(error["message"].is_string() && error["type"].is_string(), "{envelope}");
}
