//! The pharmacy order lifecycle, with its last-mile delivery by a rider.
//!
//! ```text
//! pending ─confirm─▶ confirmed ─pack─▶ packed ─ship─▶ shipped ─hand_to_rider─▶ out_for_delivery ─deliver─▶ delivered
//! cancel: from pending, confirmed, packed (never once shipped)
//! ```

use serde::{Deserialize, Serialize};

use super::{EntityKind, TransitionError};
use crate::ids::UnitId;

/// Where an order is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", content = "rider", rename_all = "snake_case")]
pub enum OrderStatus {
    /// Placed, awaiting payment or pharmacist confirmation.
    Pending,
    /// Accepted by the pharmacy.
    Confirmed,
    /// Packed and waiting for pickup.
    Packed,
    /// Left the pharmacy (courier or store counter).
    Shipped,
    /// With a rider on the way to the customer.
    OutForDelivery(UnitId),
    /// Received by the customer (terminal).
    Delivered,
    /// Called off before shipping (terminal).
    Cancelled,
}

/// What can happen to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", content = "rider", rename_all = "snake_case")]
pub enum OrderEvent {
    /// The pharmacy accepted it.
    Confirm,
    /// Packed.
    Pack,
    /// Left the pharmacy.
    Ship,
    /// A rider picked it up.
    HandToRider(UnitId),
    /// The customer received it.
    Deliver,
    /// The customer or staff called it off.
    Cancel,
}

impl OrderEvent {
    /// The event's snake_case name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Confirm => "confirm",
            Self::Pack => "pack",
            Self::Ship => "ship",
            Self::HandToRider(_) => "hand_to_rider",
            Self::Deliver => "deliver",
            Self::Cancel => "cancel",
        }
    }
}

impl OrderStatus {
    /// The state's snake_case name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Confirmed => "confirmed",
            Self::Packed => "packed",
            Self::Shipped => "shipped",
            Self::OutForDelivery(_) => "out_for_delivery",
            Self::Delivered => "delivered",
            Self::Cancelled => "cancelled",
        }
    }

    /// The transition function.
    pub fn transition(&self, event: &OrderEvent) -> Result<Self, TransitionError> {
        use OrderEvent as E;
        use OrderStatus as S;
        let next = match (*self, *event) {
            (S::Pending, E::Confirm) => S::Confirmed,
            (S::Confirmed, E::Pack) => S::Packed,
            (S::Packed, E::Ship) => S::Shipped,
            (S::Shipped, E::HandToRider(rider)) => S::OutForDelivery(rider),
            (S::OutForDelivery(_), E::Deliver) => S::Delivered,
            (S::Pending | S::Confirmed | S::Packed, E::Cancel) => S::Cancelled,
            (state, event) => {
                return Err(TransitionError::Illegal {
                    kind: EntityKind::Order,
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
    use super::*;

    #[test]
    fn an_order_is_delivered_through_every_step() {
        let steps = [
            OrderEvent::Confirm,
            OrderEvent::Pack,
            OrderEvent::Ship,
            OrderEvent::HandToRider(UnitId(3)),
            OrderEvent::Deliver,
        ];
        let end = steps
            .iter()
            .try_fold(OrderStatus::Pending, |s, e| s.transition(e))
            .unwrap();
        assert_eq!(end, OrderStatus::Delivered);
    }

    #[test]
    fn a_shipped_order_cannot_be_cancelled() {
        assert!(OrderStatus::Shipped.transition(&OrderEvent::Cancel).is_err());
        assert_eq!(
            OrderStatus::Packed.transition(&OrderEvent::Cancel),
            Ok(OrderStatus::Cancelled)
        );
    }

    #[test]
    fn an_order_cannot_be_packed_before_it_is_confirmed() {
        assert!(OrderStatus::Pending.transition(&OrderEvent::Pack).is_err());
    }
}
