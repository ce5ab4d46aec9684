//! The one place that reads the system clock.
//!
//! Everything else takes `now` as a parameter, so tests can move time (expire a token, pass the grace
//! window) without sleeping. A `Clock::manual` is shared by a test and the server it drives.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use time::{Duration, OffsetDateTime};

/// Wall-clock time source: the system clock, or one a test moves by hand.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// Offset added to the system time, in milliseconds; `None` for the plain system clock.
    offset_ms: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system clock.
    #[must_use]
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock that follows the system clock but can be moved forward with [`Clock::advance`].
    #[must_use]
    pub fn manual() -> Self {
        Self { offset_ms: Some(Arc::new(AtomicI64::new(0))) }
    }

    /// The system clock shifted by `offset`: a replica whose clock is skewed (fault testing).
    #[must_use]
    pub fn shifted(offset: Duration) -> Self {
        if offset.is_zero() {
            return Self::system();
        }
        let clock = Self::manual();
        clock.advance(offset);
        clock
    }

    /// The current time, truncated to whole milliseconds so it round-trips through every store.
    #[must_use]
    pub fn now(&self) -> OffsetDateTime {
        #[expect(clippy::disallowed_methods, reason = "this is the clock module")]
        let system = OffsetDateTime::now_utc();
        let offset = self.offset_ms.as_ref().map_or(0, |o| o.load(Ordering::Relaxed));
        let now = system + Duration::milliseconds(offset);
        now.replace_nanosecond(u32::from(now.millisecond()) * 1_000_000).unwrap_or(now)
    }

    /// Moves a manual clock (forward, or back by a negative `by`); the system clock cannot be moved and
    /// ignores this.
    pub fn advance(&self, by: Duration) {
        if let Some(offset) = &self.offset_ms {
            offset.fetch_add(i64::try_from(by.whole_milliseconds()).unwrap_or(i64::MAX), Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shifted_clock_runs_ahead_or_behind_the_system_clock_by_its_offset() {
        let (behind, system) = (Clock::shifted(Duration::seconds(-3)), Clock::system());
        let gap = system.now() - behind.now();
        assert!((Duration::milliseconds(2_990)..=Duration::milliseconds(3_100)).contains(&gap), "{gap}");
        assert!(Clock::shifted(Duration::ZERO).offset_ms.is_none(), "no offset is the plain system clock");
    }
}
