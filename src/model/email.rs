//! `Email`: a syntactically valid address, kept as typed and compared case-insensitively.
//!
//! Case is folded for ASCII letters only. Unicode case mapping joins characters that are different
//! mailboxes everywhere (`\u{212A}` KELVIN SIGN lower-cases to `k`, so `\u{212A}en@corp.com` would squat
//! `ken@corp.com`); two addresses that differ beyond ASCII case stay two accounts. Characters that are
//! invisible when shown (zero-width, bidirectional controls, soft hyphen) are refused: an address that
//! looks like another is no address a person typed.

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
        if display.chars().any(invisible) {
            return Err(ApiError::InvalidEmail("email contains an invisible character"));
        }
        Ok(Self { display: display.to_owned(), normalized: normalize(display) })
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

/// The form addresses (and searches among them) are compared in: ASCII letters lower-cased, nothing else
/// changed.
#[must_use]
pub fn normalize(text: &str) -> String {
    text.to_ascii_lowercase()
}

/// Format characters that render as nothing (or reorder what is shown): zero-width spaces and joiners,
/// bidirectional marks and overrides, word joiners and invisible operators, the byte-order mark, the
/// soft hyphen and the Mongolian vowel separator.
fn invisible(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
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
    fn unicode_case_mapping_never_joins_two_mailboxes() {
        let ken = Email::parse("Ken@Corp.com").unwrap();
        assert_eq!(Email::parse("KEN@CORP.COM").unwrap().normalized(), ken.normalized());
        // The Kelvin sign lower-cases to `k` under Unicode rules: here it stays itself, another account.
        let kelvin = Email::parse("\u{212A}en@corp.com").unwrap();
        assert_eq!(kelvin.normalized(), "\u{212A}en@corp.com");
        assert_ne!(kelvin.normalized(), ken.normalized());
        assert_eq!(Email::parse("Émile@Example.com").unwrap().normalized(), "Émile@example.com");
        // From the `domain` fuzz target: a Cyrillic capital keeps its case in the compared form.
        let cyrillic = Email::parse("ünïc\u{04B6}\u{FFFD}é@BÜcher.exampxle").unwrap();
        assert_eq!(cyrillic.normalized(), "ünïc\u{04B6}\u{FFFD}é@bÜcher.exampxle");
    }

    #[test]
    fn invisible_characters_are_refused() {
        let look_alikes =
            ["ken\u{200B}@corp.com", "ke\u{00AD}n@corp.com", "\u{202E}nek@corp.com", "ken@co\u{2060}rp.com"];
        for look_alike in look_alikes {
            assert!(Email::parse(look_alike).is_err(), "{look_alike:?}");
        }
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
