//! A blood request: units reserved by banks and pledged by donors until it is met, expires or is called off.
//!
//! ```text
//! open ─reserve|pledge─▶ partially_reserved ─reserve (reserved ≥ needed)─▶ fulfilled
//! open|partially_reserved ─expire (at ≥ expires_at)─▶ expired
//! open|partially_reserved ─cancel─▶ cancelled
//! ```

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{EntityKind, TransitionError};

/// Where a blood request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BloodStatus {
    /// Nothing reserved or pledged yet.
    Open,
    /// Some units reserved or pledged, fewer reserved than needed.
    PartiallyReserved,
    /// Enough units reserved (terminal).
    Fulfilled,
    /// The deadline passed first (terminal).
    Expired,
    /// Called off (terminal).
    Cancelled,
}

impl BloodStatus {
    /// The state's snake_case name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::PartiallyReserved => "partially_reserved",
            Self::Fulfilled => "fulfilled",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
        }
    }

    /// Whether no further event is accepted.
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Fulfilled | Self::Expired | Self::Cancelled)
    }
}

/// A blood request's state: the status plus the counts that decide it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BloodRequest {
    /// Where the request is.
    pub status: BloodStatus,
    /// Units needed.
    pub units_needed: u32,
    /// Units reserved by blood banks.
    pub reserved: u32,
    /// Units pledged by donors (not yet drawn).
    pub pledged: u32,
    /// When the request lapses.
    pub expires_at: DateTime<Utc>,
}

/// What can happen to a blood request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", content = "units", rename_all = "snake_case")]
pub enum BloodEvent {
    /// A bank reserved units.
    Reserve(u32),
    /// A donor pledged units.
    Pledge(u32),
    /// The deadline passed (applied by the entity's timer).
    Expire,
    /// The requester called it off.
    Cancel,
}

impl BloodEvent {
    /// The event's snake_case name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Reserve(_) => "reserve",
            Self::Pledge(_) => "pledge",
            Self::Expire => "expire",
            Self::Cancel => "cancel",
        }
    }
}

impl BloodRequest {
    /// A new open request.
    pub fn new(units_needed: u32, expires_at: DateTime<Utc>) -> Self {
        Self {
            status: BloodStatus::Open,
            units_needed,
            reserved: 0,
            pledged: 0,
            expires_at,
        }
    }

    /// The transition function; `at` is the time the event is applied.
    pub fn transition(&self, event: &BloodEvent, at: DateTime<Utc>) -> Result<Self, TransitionError> {
        let invalid = |reason| TransitionError::Invalid {
            kind: EntityKind::BloodRequest,
            event: event.name(),
            reason,
        };
        if self.status.is_final() {
            return Err(TransitionError::Illegal {
                kind: EntityKind::BloodRequest,
                state: self.status.name(),
                event: event.name(),
            });
        }
        let mut next = *self;
        match *event {
            BloodEvent::Reserve(0) | BloodEvent::Pledge(0) => return Err(invalid("at least one unit")),
            BloodEvent::Reserve(units) => next.reserved = next.reserved.saturating_add(units),
            BloodEvent::Pledge(units) => next.pledged = next.pledged.saturating_add(units),
            BloodEvent::Expire => {
                if at < self.expires_at {
                    return Err(invalid("the deadline has not passed yet"));
                }
                next.status = BloodStatus::Expired;
                return Ok(next);
            }
            BloodEvent::Cancel => {
                next.status = BloodStatus::Cancelled;
                return Ok(next);
            }
        }
        next.status = if next.reserved >= next.units_needed {
            BloodStatus::Fulfilled
        } else {
            BloodStatus::PartiallyReserved
        };
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    #[test]
    fn reserved_units_fulfil_a_request_and_pledges_alone_do_not() {
        let r = BloodRequest::new(3, t0() + TimeDelta::hours(6));
        let r = r.transition(&BloodEvent::Pledge(5), t0()).unwrap();
        assert_eq!(r.status, BloodStatus::PartiallyReserved);
        let r = r.transition(&BloodEvent::Reserve(2), t0()).unwrap();
        assert_eq!(r.status, BloodStatus::PartiallyReserved);
        let r = r.transition(&BloodEvent::Reserve(1), t0()).unwrap();
        assert_eq!((r.status, r.reserved, r.pledged), (BloodStatus::Fulfilled, 3, 5));
        assert!(r.transition(&BloodEvent::Cancel, t0()).is_err());
    }

    #[test]
    fn a_request_expires_only_after_its_deadline() {
        let r = BloodRequest::new(2, t0() + TimeDelta::hours(1));
        assert!(r.transition(&BloodEvent::Expire, t0()).is_err());
        let r = r
            .transition(&BloodEvent::Expire, t0() + TimeDelta::hours(1))
            .unwrap();
        assert_eq!(r.status, BloodStatus::Expired);
    }

    #[test]
    fn reserving_zero_units_is_refused() {
        let r = BloodRequest::new(2, t0() + TimeDelta::hours(1));
        assert!(matches!(
            r.transition(&BloodEvent::Reserve(0), t0()),
            Err(TransitionError::Invalid { .. })
        ));
    }
}
