//! Display texts: the names people and organizations are shown by.

use crate::error::ApiError;

/// Longest display name kept, in characters.
pub const MAX_DISPLAY_NAME: usize = 100;

/// A display text (a user's or an organization's name): trimmed, at most `MAX_DISPLAY_NAME` characters
/// without control characters; blank is none. (The OpenAPI description spells the same rule as a pattern,
/// `DISPLAY_NAME_PATTERN` in `routes::common`; a test there holds them together.)
///
/// # Errors
/// `InvalidRequest` naming `field`.
pub fn display_text(field: &'static str, text: Option<String>) -> Result<Option<String>, ApiError> {
    match text.map(|n| n.trim().to_owned()) {
        Some(name) if name.chars().count() > MAX_DISPLAY_NAME || name.chars().any(char::is_control) => {
            Err(ApiError::invalid_field(
                field,
                format!("{field} must be at most 100 characters, without control characters"),
            ))
        }
        Some(name) if name.is_empty() => Ok(None),
        other => Ok(other),
    }
}
