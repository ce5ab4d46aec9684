//! Strict JSON: a request body, or a line of an import, parsed into its type with the field at fault named.
//!
//! Parse errors name the offending field (`param`) but never echo the value the client sent: it may be
//! a password.

use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Parses `body` strictly, naming the field at fault.
///
/// # Errors
/// `ApiError::InvalidRequest` for malformed JSON, a wrong type, a missing or an unknown field.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let invalid = |message: String, param: Option<String>| ApiError::InvalidRequest { message, param };
    let malformed = || invalid("the request body is not valid JSON".to_owned(), None);
    // Serde would also read a struct from an array; the API takes objects only.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(invalid("the request body must be a JSON object".to_owned(), None));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            return malformed();
        }
        let text = inner.to_string();
        // The path of an unknown field already ends with the field.
        if let Some(field) = unknown_field(&text) {
            let param = if path == "." { field.to_owned() } else { path };
            return invalid(format!("unknown field `{field}`"), Some(param));
        }
        let quoted = text.split('`').nth(1).map(str::to_owned);
        let nested = |field: &str| if path == "." { field.to_owned() } else { format!("{path}.{field}") };
        match quoted {
            Some(field) if text.starts_with("missing field") => {
                invalid(format!("missing field `{field}`"), Some(nested(&field)))
            }
            _ if path == "." => invalid(format!("the request body is not acceptable: {}", first_words(&text)), None),
            _ => invalid(format!("`{path}` has the wrong type or value"), Some(path)),
        }
    })?;
    deserializer.end().map_err(|_| malformed())?;
    Ok(value)
}

/// The client's key in serde's "unknown field `KEY`, expected …": the key as sent, backquotes and all. It
/// ends at the last "`, expected", since what follows names our fields.
fn unknown_field(text: &str) -> Option<&str> {
    let rest = text.strip_prefix("unknown field `")?;
    let end = rest.rfind("`, expected ").or_else(|| rest.rfind("`, there are no fields"))?;
    Some(&rest[..end])
}

/// Serde's message up to the first backquote or colon: the part that never quotes the client's value.
fn first_words(text: &str) -> &str {
    text.split(['`', ':']).next().unwrap_or_default().trim()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "only parsed")]
    struct Login {
        email: String,
        password: String,
        organization: Option<String>,
    }

    fn err(body: &str) -> (String, Option<String>) {
        match parse_json::<Login>(body.as_bytes()).unwrap_err() {
            ApiError::InvalidRequest { message, param } => (message, param),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn names_the_field_at_fault_without_echoing_values() {
        assert_eq!(err(r#"{"email":"a@b.c","password":"x","admin":true}"#).1.as_deref(), Some("admin"));
        assert_eq!(err(r#"{"email":"a@b.c"}"#).1.as_deref(), Some("password"));
        let (message, param) = err(r#"{"email":"a@b.c","password":123456789}"#);
        assert_eq!(param.as_deref(), Some("password"));
        assert!(!message.contains("123456789"), "{message}");
        assert_eq!(err(r#"{"email": "a@b.c", "#).1, None);
        assert_eq!(err(r#"[1, 2]"#).0, "the request body must be a JSON object");
        let (message, param) = err(r#"{"email":"a","email":"b","password":"c"}"#);
        assert_eq!((message.as_str(), param), ("the request body is not acceptable: duplicate field", None));
        assert_eq!(err(r#"{"email":"a","password":"b"} trailing"#).1, None);
        assert!(parse_json::<Login>(br#"{"email":"a","password":"b","organization":null}"#).is_ok());
    }

    #[test]
    fn an_unknown_field_is_named_whole_even_with_backquotes() {
        // Found by the `json_bodies` fuzz target: the name stopped at the key's first backquote, so the
        // message named a field the body did not have.
        let (message, param) = err(r#"{"email":"a","password":"b","nown `pas3x, expected `email`":"wn `nown "}"#);
        assert_eq!(message, "unknown field `nown `pas3x, expected `email``");
        assert_eq!(param.as_deref(), Some("nown `pas3x, expected `email`"));
    }
}
