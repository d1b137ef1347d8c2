//! The ambulance request lifecycle, from the call to the hand-over at the hospital.
//!
//! ```text
//! requested ─offer─▶ offered ─assign─▶ assigned ─depart─▶ en_route ─arrive─▶ on_scene
//!    ▲   │             │ (offer again)                                          │ start_transport
//!    └───┴─offer_lapsed┘                                                        ▼
//! closed ◀─close─ handed_over ◀─hand_over─ at_destination ◀─reach_destination─ transporting
//! requested|offered|no_unit_available|escalated ─queue─▶ queued ─offer─▶ offered (the engine keeps working it)
//! requested|offered|queued ─no_unit─▶ no_unit_available ─escalate─▶ escalated ─assign─▶ assigned
//! queued|no_unit_available|escalated ─offer─▶ offered (re-dispatched when supply changes)
//! assigned|en_route ─preempt─▶ queued (its unit taken for a more urgent call; keeps its call time)
//! cancel: from requested, offered, queued, assigned, en_route, no_unit_available, escalated
//! ```

use serde::{Deserialize, Serialize};

use super::{EntityKind, TransitionError};
use crate::ids::UnitId;

/// Where an ambulance request is. Unit-bearing states name the unit, so "assigned without a unit"
/// cannot be represented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", content = "unit", rename_all = "snake_case")]
pub enum AmbulanceStatus {
    /// Waiting for the dispatcher to find a unit.
    Requested,
    /// Offered to one unit's crew, awaiting their answer.
    Offered(UnitId),
    /// No feasible unit can take it now: waiting in the dispatcher's priority queue, re-dispatched on
    /// every change of supply.
    Queued,
    /// A unit was claimed for the request.
    Assigned(UnitId),
    /// The unit is driving to the patient.
    EnRoute(UnitId),
    /// The crew is with the patient.
    OnScene(UnitId),
    /// Carrying the patient to a hospital.
    Transporting(UnitId),
    /// Arrived at the hospital.
    AtDestination(UnitId),
    /// The patient was handed over to hospital staff.
    HandedOver(UnitId),
    /// Finished (terminal).
    Closed,
    /// Called off (terminal).
    Cancelled,
    /// Nobody could be found, even after widening the search.
    NoUnitAvailable,
    /// A human dispatcher took over.
    Escalated,
}

/// What can happen to an ambulance request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", content = "unit", rename_all = "snake_case")]
pub enum AmbulanceEvent {
    /// Offer the job to a unit (also replaces a declined or lapsed offer).
    Offer(UnitId),
    /// The current offer was declined or timed out, and no replacement is ready yet.
    OfferLapsed,
    /// Nobody feasible is free now: the call waits in the queue.
    Queue,
    /// The unit was taken for a more urgent call before reaching the patient: back to the queue.
    Preempt,
    /// The unit was claimed in the store.
    Assign(UnitId),
    /// The crew set off.
    Depart,
    /// The crew reached the patient.
    Arrive,
    /// The patient is loaded.
    StartTransport,
    /// The unit reached the hospital.
    ReachDestination,
    /// Hospital staff took over.
    HandOver,
    /// Paperwork done.
    Close,
    /// Caller or dispatcher called it off.
    Cancel,
    /// The search found nobody.
    NoUnit,
    /// Hand the request to a human dispatcher.
    Escalate,
}

impl AmbulanceEvent {
    /// The event's snake_case name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Offer(_) => "offer",
            Self::OfferLapsed => "offer_lapsed",
            Self::Queue => "queue",
            Self::Preempt => "preempt",
            Self::Assign(_) => "assign",
            Self::Depart => "depart",
            Self::Arrive => "arrive",
            Self::StartTransport => "start_transport",
            Self::ReachDestination => "reach_destination",
            Self::HandOver => "hand_over",
            Self::Close => "close",
            Self::Cancel => "cancel",
            Self::NoUnit => "no_unit",
            Self::Escalate => "escalate",
        }
    }
}

impl AmbulanceStatus {
    /// The state's snake_case name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Offered(_) => "offered",
            Self::Queued => "queued",
            Self::Assigned(_) => "assigned",
            Self::EnRoute(_) => "en_route",
            Self::OnScene(_) => "on_scene",
            Self::Transporting(_) => "transporting",
            Self::AtDestination(_) => "at_destination",
            Self::HandedOver(_) => "handed_over",
            Self::Closed => "closed",
            Self::Cancelled => "cancelled",
            Self::NoUnitAvailable => "no_unit_available",
            Self::Escalated => "escalated",
        }
    }

    /// The unit serving the request, if one is offered or assigned.
    pub fn unit(&self) -> Option<UnitId> {
        match *self {
            Self::Offered(u)
            | Self::Assigned(u)
            | Self::EnRoute(u)
            | Self::OnScene(u)
            | Self::Transporting(u)
            | Self::AtDestination(u)
            | Self::HandedOver(u) => Some(u),
            _ => None,
        }
    }

    /// The transition function.
    pub fn transition(&self, event: &AmbulanceEvent) -> Result<Self, TransitionError> {
        use AmbulanceEvent as E;
        use AmbulanceStatus as S;
        let next = match (*self, *event) {
            (S::Requested | S::Offered(_) | S::Queued | S::NoUnitAvailable | S::Escalated, E::Offer(u)) => {
                S::Offered(u)
            }
            (S::Offered(_), E::OfferLapsed) => S::Requested,
            (S::Requested | S::Offered(_) | S::NoUnitAvailable | S::Escalated, E::Queue) => S::Queued,
            (S::Assigned(_) | S::EnRoute(_), E::Preempt) => S::Queued,
            (S::Requested | S::Offered(_) | S::Queued | S::NoUnitAvailable | S::Escalated, E::Assign(u)) => {
                S::Assigned(u)
            }
            (S::Assigned(u), E::Depart) => S::EnRoute(u),
            (S::EnRoute(u), E::Arrive) => S::OnScene(u),
            (S::OnScene(u), E::StartTransport) => S::Transporting(u),
            (S::Transporting(u), E::ReachDestination) => S::AtDestination(u),
            (S::AtDestination(u), E::HandOver) => S::HandedOver(u),
            (S::HandedOver(_), E::Close) => S::Closed,
            (
                S::Requested
                | S::Offered(_)
                | S::Queued
                | S::Assigned(_)
                | S::EnRoute(_)
                | S::NoUnitAvailable
                | S::Escalated,
                E::Cancel,
            ) => S::Cancelled,
            (S::Requested | S::Offered(_) | S::Queued, E::NoUnit) => S::NoUnitAvailable,
            (S::NoUnitAvailable, E::Escalate) => S::Escalated,
            (state, event) => {
                return Err(TransitionError::Illegal {
                    kind: EntityKind::AmbulanceRequest,
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

    const UNIT: UnitId = UnitId(9);

    #[test]
    fn a_request_walks_the_whole_happy_path_to_closed() {
        let path = [
            AmbulanceEvent::Offer(UNIT),
            AmbulanceEvent::Assign(UNIT),
            AmbulanceEvent::Depart,
            AmbulanceEvent::Arrive,
            AmbulanceEvent::StartTransport,
            AmbulanceEvent::ReachDestination,
            AmbulanceEvent::HandOver,
            AmbulanceEvent::Close,
        ];
        let end = path
            .iter()
            .try_fold(AmbulanceStatus::Requested, |s, e| s.transition(e))
            .unwrap();
        assert_eq!(end, AmbulanceStatus::Closed);
    }

    #[test]
    fn a_request_cannot_skip_from_requested_to_on_scene() {
        let err = AmbulanceStatus::Requested
            .transition(&AmbulanceEvent::Arrive)
            .unwrap_err();
        assert_eq!(
            err,
            TransitionError::Illegal {
                kind: EntityKind::AmbulanceRequest,
                state: "requested",
                event: "arrive"
            }
        );
    }

    #[test]
    fn a_patient_on_scene_can_no_longer_be_cancelled() {
        assert!(
            AmbulanceStatus::OnScene(UNIT)
                .transition(&AmbulanceEvent::Cancel)
                .is_err()
        );
        assert_eq!(
            AmbulanceStatus::EnRoute(UNIT).transition(&AmbulanceEvent::Cancel),
            Ok(AmbulanceStatus::Cancelled)
        );
    }

    #[test]
    fn an_escalated_request_can_be_assigned_by_hand() {
        let s = AmbulanceStatus::Requested
            .transition(&AmbulanceEvent::NoUnit)
            .unwrap();
        let s = s.transition(&AmbulanceEvent::Escalate).unwrap();
        assert_eq!(
            s.transition(&AmbulanceEvent::Assign(UNIT)),
            Ok(AmbulanceStatus::Assigned(UNIT))
        );
    }

    #[test]
    fn a_queued_call_is_offered_again_and_can_be_assigned_or_cancelled_from_the_queue() {
        let queued = AmbulanceStatus::Requested
            .transition(&AmbulanceEvent::Queue)
            .unwrap();
        assert_eq!(queued, AmbulanceStatus::Queued);
        assert_eq!(
            queued.transition(&AmbulanceEvent::Offer(UNIT)),
            Ok(AmbulanceStatus::Offered(UNIT))
        );
        assert_eq!(
            queued.transition(&AmbulanceEvent::Assign(UNIT)),
            Ok(AmbulanceStatus::Assigned(UNIT))
        );
        assert_eq!(
            queued.transition(&AmbulanceEvent::Cancel),
            Ok(AmbulanceStatus::Cancelled)
        );
        assert!(queued.transition(&AmbulanceEvent::Queue).is_err());
        // Only a unit that has not reached the patient can be taken for a more urgent call.
        assert_eq!(
            AmbulanceStatus::EnRoute(UNIT).transition(&AmbulanceEvent::Preempt),
            Ok(AmbulanceStatus::Queued)
        );
        for busy in [
            AmbulanceStatus::OnScene(UNIT),
            AmbulanceStatus::Transporting(UNIT),
        ] {
            assert!(busy.transition(&AmbulanceEvent::Preempt).is_err());
        }
        // A call nobody was on duty for is re-tried when a unit comes on duty.
        for waiting in [AmbulanceStatus::NoUnitAvailable, AmbulanceStatus::Escalated] {
            assert_eq!(
                waiting.transition(&AmbulanceEvent::Offer(UNIT)),
                Ok(AmbulanceStatus::Offered(UNIT))
            );
            assert_eq!(
                waiting.transition(&AmbulanceEvent::Queue),
                Ok(AmbulanceStatus::Queued)
            );
        }
    }

    #[test]
    fn closed_and_cancelled_are_terminal() {
        for terminal in [AmbulanceStatus::Closed, AmbulanceStatus::Cancelled] {
            for event in [
                AmbulanceEvent::Offer(UNIT),
                AmbulanceEvent::Cancel,
                AmbulanceEvent::Assign(UNIT),
            ] {
                assert!(terminal.transition(&event).is_err());
            }
        }
    }
}
