//! The domain newtypes on any string a client can put in a field: `Email`, `Password`, `OrgRef`, and an
//! imported password hash with a Firebase project's parameters (user import).
//!
//! None may panic; each refuses with its own code only, and what it accepts keeps its rules (an email is
//! trimmed, at most 254 bytes, has a local part, holds no zero-width or bidirectional character and folds
//! only ASCII case; a password has 8 characters and at most 256 bytes; a slug is 1 to 63 of `a-z`, `0-9`,
//! `-`); an imported hash is stored as given (but for Django's `argon2` prefix) or refused.

#![no_main]

use identsphere::auth::imported::{self, FirebaseProject, ImportRules};
use identsphere::model::{Email, OrgRef, Password};
use identsphere_fuzz::assert_refusal;
use libfuzzer_sys::fuzz_target;
use uuid::Uuid;

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    match Email::parse(&raw) {
        Ok(email) => {
            let typed = email.as_typed();
            assert_eq!(typed, raw.trim());
            assert!(!typed.is_empty() && typed.len() <= 254, "{typed:?}");
            assert!(!email.local_part().is_empty() && typed.contains('@'), "{typed:?}");
            // Only ASCII letters fold: a Unicode case mapping could join two mailboxes (K and the Kelvin sign).
            assert_eq!(email.normalized(), typed.to_ascii_lowercase());
            assert!(
                !typed.chars().any(|c| matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}')),
                "{typed:?}"
            );
        }
        Err(err) => assert_refusal(&err, &["invalid_email"]),
    }
    match Password::parse(raw.clone().into_owned()) {
        Ok(password) => {
            let kept = password.expose();
            assert_eq!(kept, raw);
            assert!(kept.chars().count() >= 8 && kept.len() <= 256);
        }
        Err(err) => assert_refusal(&err, &["weak_password"]),
    }
    match OrgRef::parse(&raw) {
        Some(OrgRef::Id(id)) => assert_eq!(Uuid::parse_str(raw.trim()).ok(), Some(id)),
        Some(OrgRef::Slug(slug)) => {
            assert!((1..=63).contains(&slug.len()), "{slug:?}");
            assert!(slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'), "{slug:?}");
            assert_eq!(slug, raw.trim().to_ascii_lowercase());
        }
        None => {}
    }
    let rules = ImportRules { allow_weak: true, firebase: None };
    if let Ok(stored) = imported::admit(&raw, &rules) {
        let given = raw.trim();
        assert!(stored == given || given.strip_prefix("argon2") == Some(stored.as_str()), "{given:?} -> {stored:?}");
    }
    // Refused with a reason or taken; never a panic.
    let _ = FirebaseProject::parse(&raw);
});
