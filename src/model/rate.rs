//! A rate limit: `count` events per `period`.

/// A rate: at most `count` events per `period`, in a burst or spread out (GCRA). Stored and shown as
/// `{"count": 5, "period": 60}` (seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "RateSeconds", into = "RateSeconds")]
pub struct Rate {
    /// Events allowed per period.
    pub count: u32,
    /// The period.
    pub period: time::Duration,
}

/// The stored form of a [`Rate`].
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RateSeconds {
    count: u32,
    period: u32,
}

impl TryFrom<RateSeconds> for Rate {
    type Error = &'static str;

    fn try_from(rate: RateSeconds) -> Result<Self, Self::Error> {
        if rate.count == 0 || rate.period == 0 {
            return Err("a rate needs a count and a period of at least 1");
        }
        Ok(Self { count: rate.count, period: time::Duration::seconds(i64::from(rate.period)) })
    }
}

impl From<Rate> for RateSeconds {
    fn from(rate: Rate) -> Self {
        Self { count: rate.count, period: u32::try_from(rate.period.whole_seconds()).unwrap_or(u32::MAX) }
    }
}

impl Rate {
    /// The spacing of events at the sustained rate (the GCRA emission interval), in milliseconds.
    #[must_use]
    pub fn emission_ms(&self) -> i64 {
        i64::try_from(self.period.whole_milliseconds()).unwrap_or(i64::MAX) / i64::from(self.count.max(1))
    }

    /// How far ahead of now the theoretical arrival time may run: a full burst, in milliseconds.
    #[must_use]
    pub fn tolerance_ms(&self) -> i64 {
        i64::try_from(self.period.whole_milliseconds()).unwrap_or(i64::MAX) - self.emission_ms()
    }
}
