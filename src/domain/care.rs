//! The home-care booking's state machine: one transition function decides every move.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a home-care booking is. Stored as its snake_case name in `service_bookings.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BookingStatus {
    /// A partner is assigned and holds a place in their window for the visit.
    Confirmed,
    /// The partner is on the way.
    EnRoute,
    /// The visit has started at the customer's address.
    InProgress,
    Completed,
    Cancelled,
}

/// A move the state machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a home-care booking cannot go from {} to {}", from.as_str(), to.as_str())]
pub struct IllegalMove {
    pub from: BookingStatus,
    pub to: BookingStatus,
}

impl BookingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmed => "confirmed",
            Self::EnRoute => "en_route",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "confirmed" => Self::Confirmed,
            "en_route" => Self::EnRoute,
            "in_progress" => Self::InProgress,
            "completed" => Self::Completed,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }

    /// The one transition function: the partner's steps forward one at a time, and cancellation before
    /// the visit starts.
    pub fn transition(self, to: Self) -> Result<Self, IllegalMove> {
        use BookingStatus::*;
        let legal = matches!(
            (self, to),
            (Confirmed, EnRoute)
                | (EnRoute, InProgress)
                | (InProgress, Completed)
                | (Confirmed | EnRoute, Cancelled)
        );
        if legal {
            Ok(to)
        } else {
            Err(IllegalMove { from: self, to })
        }
    }

    /// Whether the booking still holds a place in its partner's window.
    pub fn holds_capacity(self) -> bool {
        matches!(self, Self::Confirmed | Self::EnRoute | Self::InProgress)
    }
}

#[cfg(test)]
mod tests {
    use super::BookingStatus::{self, *};

    #[test]
    fn the_partner_steps_forward_one_at_a_time_and_cancelling_stops_at_the_door() {
        assert_eq!(Confirmed.transition(EnRoute), Ok(EnRoute));
        assert_eq!(EnRoute.transition(InProgress), Ok(InProgress));
        assert_eq!(InProgress.transition(Completed), Ok(Completed));
        assert!(Confirmed.transition(InProgress).is_err());
        assert!(Confirmed.transition(Completed).is_err());
        assert!(InProgress.transition(Cancelled).is_err());
        assert!(Completed.transition(Cancelled).is_err());
        assert!(Cancelled.transition(Confirmed).is_err());
        for status in [Confirmed, EnRoute, InProgress, Completed, Cancelled] {
            assert_eq!(BookingStatus::parse(status.as_str()), Some(status));
        }
    }
}
