//! A doctor's appointment slot: held briefly while the patient pays, then booked.
//!
//! ```text
//! open ─hold─▶ held ─book─▶ booked
//! held ─hold_expired─▶ open        (the entity's own timer, at `until`)
//! held|booked ─cancel─▶ open
//! open ─block─▶ blocked ─unblock─▶ open
//! ```

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{EntityKind, TransitionError};
use crate::ids::UserId;

/// Where a slot is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum SlotStatus {
    /// Bookable.
    Open,
    /// Reserved for one patient until `until` (checkout in progress).
    Held {
        /// The patient holding it.
        patient: UserId,
        /// When the hold lapses.
        until: DateTime<Utc>,
    },
    /// Booked by a patient.
    Booked {
        /// The patient.
        patient: UserId,
    },
    /// Taken out of the calendar by the doctor.
    Blocked,
}

/// What can happen to a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum SlotEvent {
    /// Hold the slot for a patient until a time in the future.
    Hold {
        /// The patient.
        patient: UserId,
        /// Hold end.
        until: DateTime<Utc>,
    },
    /// Turn the patient's hold into a booking (payment succeeded).
    Book {
        /// The patient; must be the one holding the slot.
        patient: UserId,
    },
    /// The hold's time ran out (applied by the entity's timer).
    HoldExpired,
    /// The patient or the clinic released the hold or booking.
    Cancel,
    /// The doctor blocked the slot.
    Block,
    /// The doctor reopened it.
    Unblock,
}

impl SlotEvent {
    /// The event's snake_case name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Hold { .. } => "hold",
            Self::Book { .. } => "book",
            Self::HoldExpired => "hold_expired",
            Self::Cancel => "cancel",
            Self::Block => "block",
            Self::Unblock => "unblock",
        }
    }
}

impl SlotStatus {
    /// The state's snake_case name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Held { .. } => "held",
            Self::Booked { .. } => "booked",
            Self::Blocked => "blocked",
        }
    }

    /// The transition function; `at` is the time the event is applied.
    pub fn transition(&self, event: &SlotEvent, at: DateTime<Utc>) -> Result<Self, TransitionError> {
        use SlotEvent as E;
        use SlotStatus as S;
        let invalid = |reason| TransitionError::Invalid {
            kind: EntityKind::DoctorSlot,
            event: event.name(),
            reason,
        };
        let next = match (*self, *event) {
            (S::Open, E::Hold { patient, until }) => {
                if until <= at {
                    return Err(invalid("a hold must end in the future"));
                }
                S::Held { patient, until }
            }
            (
                S::Held {
                    patient: holder,
                    until,
                },
                E::Book { patient },
            ) => {
                if holder != patient {
                    return Err(invalid("the slot is held for another patient"));
                }
                if at >= until {
                    return Err(invalid("the hold has expired"));
                }
                S::Booked { patient }
            }
            (S::Held { until, .. }, E::HoldExpired) => {
                if at < until {
                    return Err(invalid("the hold has not expired yet"));
                }
                S::Open
            }
            (S::Held { .. } | S::Booked { .. }, E::Cancel) => S::Open,
            (S::Open, E::Block) => S::Blocked,
            (S::Blocked, E::Unblock) => S::Open,
            (state, event) => {
                return Err(TransitionError::Illegal {
                    kind: EntityKind::DoctorSlot,
                    state: state.name(),
                    event: event.name(),
                });
            }
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
    fn a_held_slot_is_booked_by_its_holder_only() {
        let held = SlotStatus::Open
            .transition(
                &SlotEvent::Hold {
                    patient: UserId(1),
                    until: t0() + TimeDelta::minutes(5),
                },
                t0(),
            )
            .unwrap();
        assert!(
            held.transition(&SlotEvent::Book { patient: UserId(2) }, t0())
                .is_err()
        );
        assert_eq!(
            held.transition(&SlotEvent::Book { patient: UserId(1) }, t0()),
            Ok(SlotStatus::Booked { patient: UserId(1) })
        );
    }

    #[test]
    fn a_hold_expires_only_once_its_time_has_passed() {
        let until = t0() + TimeDelta::minutes(5);
        let held = SlotStatus::Held {
            patient: UserId(1),
            until,
        };
        assert!(held.transition(&SlotEvent::HoldExpired, t0()).is_err());
        assert_eq!(
            held.transition(&SlotEvent::HoldExpired, until),
            Ok(SlotStatus::Open)
        );
        assert!(
            held.transition(&SlotEvent::Book { patient: UserId(1) }, until)
                .is_err()
        );
    }

    #[test]
    fn a_blocked_slot_cannot_be_held() {
        let hold = SlotEvent::Hold {
            patient: UserId(1),
            until: t0() + TimeDelta::minutes(5),
        };
        assert!(SlotStatus::Blocked.transition(&hold, t0()).is_err());
        assert_eq!(
            SlotStatus::Blocked.transition(&SlotEvent::Unblock, t0()),
            Ok(SlotStatus::Open)
        );
    }
}
