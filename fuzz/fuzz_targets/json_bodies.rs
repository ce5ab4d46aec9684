//! Every JSON request body of the API through `http::json::parse`, the strict decoder the extractors use.
//!
//! Whatever the bytes, each decoder must not panic, must refuse with `invalid_request` only, must accept
//! only a JSON object, and its message must not repeat a value the client sent (it may be a password):
//! it is one of the decoder's sentences, naming only fields.

#![no_main]

use identsphere::error::ApiError;
use identsphere::fuzzing::BODY_DECODERS;
use identsphere_fuzz::assert_refusal;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Every string in `value`: its object keys in `keys`, the rest in `values`.
fn strings<'a>(value: &'a Value, keys: &mut Vec<&'a str>, values: &mut Vec<&'a str>) {
    match value {
        Value::String(s) => values.push(s),
        Value::Array(items) => items.iter().for_each(|item| strings(item, keys, values)),
        Value::Object(map) => {
            for (key, item) in map {
                keys.push(key);
                strings(item, keys, values);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Whether `path` is made of the document's keys, array indices and separators only.
fn is_path(path: &str, keys: &[&str]) -> bool {
    let mut keys = keys.to_vec();
    keys.sort_by_key(|key| std::cmp::Reverse(key.len()));
    let rest = keys.iter().filter(|key| !key.is_empty()).fold(path.to_owned(), |rest, key| rest.replace(key, ""));
    rest.chars().all(|c| c.is_ascii_digit() || "[].?".contains(c))
}

/// Panics unless `message` is one of the decoder's sentences, naming nothing but fields: a field name,
/// a path of the document's keys, or the opening words of serde's message (which stop before any value).
fn assert_names_only_fields(body: &[u8], message: &str) {
    const FIXED: [&str; 2] = ["the request body is not valid JSON", "the request body must be a JSON object"];
    const SERDE: [&str; 5] = ["duplicate field", "invalid type", "invalid value", "invalid length", "unknown variant"];
    if FIXED.contains(&message) {
        return;
    }
    // Serde stops at the first fault: a body that is no JSON document may still get a field named. Its
    // keys are then unknown here, and only the shape of the message is checked.
    let document = serde_json::from_slice::<Value>(body);
    let (mut keys, mut values) = (Vec::new(), Vec::new());
    if let Ok(document) = &document {
        strings(document, &mut keys, &mut values);
    }
    let is_key = |field: &str| document.is_err() || keys.contains(&field);
    let quoted = |prefix: &str| message.strip_prefix(prefix).and_then(|rest| rest.strip_suffix('`'));
    let fine = if let Some(field) = quoted("unknown field `") {
        is_key(field)
    } else if let Some(field) = quoted("missing field `") {
        field.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    } else if let Some(words) = message.strip_prefix("the request body is not acceptable: ") {
        // Only what follows the decoder's words could echo a value: a value that happens to be part of those
        // words ("uplicate f" in "duplicate field") is not an echo (found by this target).
        SERDE.iter().find(|opening| words.starts_with(**opening)).is_some_and(|opening| {
            let rest = &words[opening.len()..];
            !values.iter().any(|value| value.len() >= 4 && rest.contains(*value))
        })
    } else if let Some(path) = message.strip_prefix('`').and_then(|m| m.strip_suffix("` has the wrong type or value")) {
        document.is_err() || is_path(path, &keys)
    } else {
        false
    };
    assert!(fine, "the message {message:?} is not made of field names and the decoder's words");
}

fuzz_target!(|body: &[u8]| {
    let object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    for (name, decode) in BODY_DECODERS {
        match decode(body) {
            Ok(()) => assert!(object, "{name} accepted a body that is not an object"),
            Err(err) => {
                assert_refusal(&err, &["invalid_request"]);
                if let ApiError::InvalidRequest { message, .. } = &err {
                    assert_names_only_fields(body, message);
                }
            }
        }
    }
});
