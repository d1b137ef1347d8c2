//! The pharmacy order lifecycle, with its last-mile delivery by a rider.
//!
//! ```text
//! pending ─confirm─▶ confirmed ─pack─▶ packed ─ship─▶ shipped ─hand_to_rider─▶ out_for_delivery ─deliver─▶ delivered
//!                                        │ offer_rider ⇄ rider_offer_lapsed (the delivery's offer cascade)
//!                                        └─assign_rider─▶ packed, rider assigned ─ship─▶ shipped
//! cancel: from pending, confirmed, packed (never once shipped)
//! ```
//!
//! While the delivery is offered or assigned the order's stored status stays `packed`; the offer lives
//! in the store's offer rows and the rider in the order row. Once a rider is assigned, a lapse or a new
//! offer is refused, so an offer that lapsed on one node cannot undo an acceptance made on another.

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
    /// Packed and waiting for pickup, no rider yet.
    Packed,
    /// Packed, and the delivery is offered to this rider (stored as `packed` plus an open offer).
    RiderOffered(UnitId),
    /// Packed, and a rider accepted the delivery (stored as `packed` with its rider).
    RiderAssigned(UnitId),
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
    /// The delivery is offered to a rider (the cascade's step; the order stays packed).
    OfferRider(UnitId),
    /// The rider's offer lapsed unanswered.
    RiderOfferLapsed,
    /// A rider accepted the delivery.
    AssignRider(UnitId),
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
            Self::OfferRider(_) => "offer_rider",
            Self::RiderOfferLapsed => "rider_offer_lapsed",
            Self::AssignRider(_) => "assign_rider",
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
            Self::Packed | Self::RiderOffered(_) | Self::RiderAssigned(_) => "packed",
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
            (S::Packed | S::RiderOffered(_) | S::RiderAssigned(_), E::Ship) => S::Shipped,
            (S::Packed | S::RiderOffered(_), E::OfferRider(rider)) => S::RiderOffered(rider),
            (S::RiderOffered(_), E::RiderOfferLapsed) => S::Packed,
            (S::Packed | S::RiderOffered(_), E::AssignRider(rider)) => S::RiderAssigned(rider),
            (S::Shipped, E::HandToRider(rider)) => S::OutForDelivery(rider),
            (S::OutForDelivery(_), E::Deliver) => S::Delivered,
            (S::Pending | S::Confirmed | S::Packed | S::RiderOffered(_) | S::RiderAssigned(_), E::Cancel) => {
                S::Cancelled
            }
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
    fn a_delivery_is_offered_while_packed_and_an_assigned_order_takes_no_more_offers() {
        let offered = OrderStatus::Packed
            .transition(&OrderEvent::OfferRider(UnitId(4)))
            .unwrap();
        assert_eq!(offered, OrderStatus::RiderOffered(UnitId(4)));
        assert_eq!(offered.name(), "packed");
        assert_eq!(
            offered.transition(&OrderEvent::RiderOfferLapsed),
            Ok(OrderStatus::Packed)
        );
        let assigned = offered.transition(&OrderEvent::AssignRider(UnitId(4))).unwrap();
        assert_eq!(assigned, OrderStatus::RiderAssigned(UnitId(4)));
        assert_eq!(assigned.name(), "packed");
        assert!(assigned.transition(&OrderEvent::OfferRider(UnitId(5))).is_err());
        assert!(assigned.transition(&OrderEvent::RiderOfferLapsed).is_err());
        assert_eq!(assigned.transition(&OrderEvent::Ship), Ok(OrderStatus::Shipped));
    }

    #[test]
    fn an_order_cannot_be_packed_before_it_is_confirmed() {
        assert!(OrderStatus::Pending.transition(&OrderEvent::Pack).is_err());
    }
}
