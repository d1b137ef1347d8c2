//! The [`Clock`] port: wall-clock time for transition timestamps, deadlines and staleness.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

/// Where "now" comes from. Timers themselves run on tokio time; a clock that follows tokio time
/// ([`TokioClock`]) makes paused-time tests see timestamps and timers advance together.
pub trait Clock: Send + Sync {
    /// The current instant in UTC.
    fn now(&self) -> DateTime<Utc>;
}

impl<T: Clock + ?Sized> Clock for Arc<T> {
    fn now(&self) -> DateTime<Utc> {
        (**self).now()
    }
}

/// The operating system's clock; what the server uses.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that starts at a given wall time and then advances with tokio's clock, so it stands still
/// under `tokio::time::pause()` and jumps with `tokio::time::advance`.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    /// Wall time at `origin`.
    start: DateTime<Utc>,
    /// The tokio instant that corresponds to `start`.
    origin: tokio::time::Instant,
}

impl TokioClock {
    /// A clock reading `start` now. Create it inside the runtime whose time it should follow.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            start,
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = tokio::time::Instant::now().saturating_duration_since(self.origin);
        TimeDelta::from_std(elapsed)
            .ok()
            .and_then(|delta| self.start.checked_add_signed(delta))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}
