//! Every query string of the API through its route's parser (the `web::Query` decoding and the cursor and
//! limit checks the handler relies on).
//!
//! Whatever the bytes, a parser must not panic, must refuse with `invalid_request` only, and its message
//! must be one of the parsers' own sentences, so it can never repeat what the client sent.

#![no_main]

use identsphere::error::ApiError;
use identsphere::fuzzing::QUERY_DECODERS;
use identsphere_fuzz::assert_refusal;
use libfuzzer_sys::fuzz_target;

/// What the parsers say (`routes::organizations::audit_query`, `routes::admin::user_query`,
/// `routes::revocations::feed_query`, `routes::oauth::query`); a new sentence goes here too.
const MESSAGES: [&str; 7] = [
    "redirect_uri is required; code, state, error, organization and code_challenge are text",
    "before must be the next of a previous page, limit 1 to 200",
    "limit must be from 1 to 200",
    "email and after must be text, limit from 1 to 200",
    "after must be a cursor and limit a number from 1 to 1000",
    "after must be the cursor of a previous page",
    "limit must be from 1 to 1000",
];

fuzz_target!(|bytes: &[u8]| {
    let raw = String::from_utf8_lossy(bytes);
    for (path, decode) in QUERY_DECODERS {
        if let Err(err) = decode(&raw) {
            assert_refusal(&err, &["invalid_request"]);
            if let ApiError::InvalidRequest { message, .. } = &err {
                assert!(MESSAGES.contains(&message.as_str()), "{path}: {message:?} is not a parser's sentence");
            }
        }
    }
});
