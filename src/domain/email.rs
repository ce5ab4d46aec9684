//! `Email`: a syntactically valid address, kept as typed and compared case-insensitively.

use crate::error::ApiError;

/// Longest address accepted (RFC 5321's path limit).
const MAX_LEN: usize = 254;

/// A validated email address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email {
    display: String,
    normalized: String,
}

impl Email {
    /// Validates `raw` (trimmed first).
    ///
    /// # Errors
    /// `ApiError::InvalidEmail` when it is empty, too long or not an address.
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let display = raw.trim();
        if display.is_empty() {
            return Err(ApiError::InvalidEmail("email must not be empty"));
        }
        if display.len() > MAX_LEN {
            return Err(ApiError::InvalidEmail("email is longer than 254 bytes"));
        }
        let options = email_address::Options {
            minimum_sub_domains: 2,
            allow_domain_literal: false,
            allow_display_text: false,
            allow_long_local_parts: false,
        };
        if email_address::EmailAddress::parse_with_options(display, options).is_err() {
            return Err(ApiError::InvalidEmail("email is not a valid address"));
        }
        Ok(Self { display: display.to_owned(), normalized: display.to_lowercase() })
    }

    /// The address as typed (trimmed), for display.
    #[must_use]
    pub fn as_typed(&self) -> &str {
        &self.display
    }

    /// The lower-cased address: the identity compared on sign-in.
    #[must_use]
    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    /// The part before the `@`, as typed.
    #[must_use]
    pub fn local_part(&self) -> &str {
        self.display.split('@').next().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_trimmed_kept_as_typed_and_compared_lower_cased() {
        let email = Email::parse("  Ada.Lovelace@Example.COM ").unwrap();
        assert_eq!(email.as_typed(), "Ada.Lovelace@Example.COM");
        assert_eq!(email.normalized(), "ada.lovelace@example.com");
        assert_eq!(email.local_part(), "Ada.Lovelace");
    }

    #[test]
    fn rejects_what_is_not_an_address() {
        for bad in ["a\u{0}b@example.com", "\"a\u{0}\"@example.com", "a@exa\u{0}mple.com", "a\u{7f}@example.com"] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        for bad in ["", "   ", "plain", "a@", "@b.c", "a b@c.d", "a@b", "Ada <a@b.c>", "a@[127.0.0.1]"] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long).is_err());
    }
}
