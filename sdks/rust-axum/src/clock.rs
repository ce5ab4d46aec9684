//! The one place the SDK reads the wall clock: `exp` and revocation expiry are compared with it.

/// Now, in Unix seconds.
pub(crate) fn unix_now() -> i64 {
    #[expect(clippy::disallowed_methods, reason = "the SDK's one clock read")]
    let now = std::time::SystemTime::now();
    now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
