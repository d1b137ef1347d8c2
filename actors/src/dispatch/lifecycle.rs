//! How a cascade's steps show up in the job's own state machine (only some kinds record offers).

use crate::{
    ids::UnitId,
    machines::{AmbulanceEvent, EntityEvent, EntityKey, LabEvent, OrderEvent},
};

/// The event recording "offered to `unit`", if the job's machine tracks offers.
pub(crate) fn offer_event(job: EntityKey, unit: UnitId) -> Option<EntityEvent> {
    match job {
        EntityKey::AmbulanceRequest(_) => Some(EntityEvent::AmbulanceRequest(AmbulanceEvent::Offer(unit))),
        EntityKey::Order(_) => Some(EntityEvent::Order(OrderEvent::OfferRider(unit))),
        _ => None,
    }
}

/// The event recording "the offer lapsed unanswered", if the job's machine tracks offers.
pub(crate) fn lapse_event(job: EntityKey) -> Option<EntityEvent> {
    match job {
        EntityKey::AmbulanceRequest(_) => Some(EntityEvent::AmbulanceRequest(AmbulanceEvent::OfferLapsed)),
        EntityKey::Order(_) => Some(EntityEvent::Order(OrderEvent::RiderOfferLapsed)),
        _ => None,
    }
}

/// The event recording "assigned to `unit`".
pub(crate) fn assign_event(job: EntityKey, unit: UnitId) -> Option<EntityEvent> {
    match job {
        EntityKey::AmbulanceRequest(_) => Some(EntityEvent::AmbulanceRequest(AmbulanceEvent::Assign(unit))),
        EntityKey::LabCollection(_) => Some(EntityEvent::LabCollection(LabEvent::Assign(unit))),
        EntityKey::Order(_) => Some(EntityEvent::Order(OrderEvent::AssignRider(unit))),
        _ => None,
    }
}

/// The event recording "waiting in the queue", if the job's machine has that state (an order simply
/// stays packed).
pub(crate) fn queue_event(job: EntityKey) -> Option<EntityEvent> {
    match job {
        EntityKey::AmbulanceRequest(_) => Some(EntityEvent::AmbulanceRequest(AmbulanceEvent::Queue)),
        _ => None,
    }
}

/// The event recording "no unit of an acceptable kind is on duty in the service area". The request
/// shows `no_unit_available` (what a dispatcher's board must show) and stays in the queue.
pub(crate) fn no_unit_event(job: EntityKey) -> Option<EntityEvent> {
    match job {
        EntityKey::AmbulanceRequest(_) => Some(EntityEvent::AmbulanceRequest(AmbulanceEvent::NoUnit)),
        _ => None,
    }
}
