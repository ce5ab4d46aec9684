//! Every query string of the API through its route's parser (the `web::Query` decoding and the cursor and
//! limit checks the handler relies on).
//!
//! Whatever the bytes, a parser must not panic, must refuse with `invalid_request` only, and its message
//! must not repeat a value the client sent.

#![no_main]

use identsphere::error::ApiError;
use identsphere::fuzzing::QUERY_DECODERS;
use identsphere_fuzz::assert_refusal;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let raw = String::from_utf8_lossy(bytes);
    for (path, decode) in QUERY_DECODERS {
        if let Err(err) = decode(&raw) {
            assert_refusal(&err, &["invalid_request"]);
            if let ApiError::InvalidRequest { message, .. } = &err {
                for value in raw.split('&').filter_map(|pair| pair.split_once('=').map(|(_, v)| v)) {
                    let echoed = value.len() >= 4 && message.contains(value);
                    assert!(!echoed, "{path}: the message {message:?} repeats the value {value:?}");
                }
            }
        }
    }
});
