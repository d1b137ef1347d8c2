//! Explicit state machines of the live entities: one state enum and one transition function each.
//!
//! [`EntityState`] and [`EntityEvent`] gather the five machines so one actor type, one registry and
//! one store table can serve them all.

mod ambulance;
mod blood;
mod lab;
mod order;
mod slot;

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use ambulance::{AmbulanceEvent, AmbulanceStatus};
pub use blood::{BloodEvent, BloodRequest, BloodStatus};
pub use lab::{LabEvent, LabStatus};
pub use order::{OrderEvent, OrderStatus};
pub use slot::{SlotEvent, SlotStatus};

use crate::ids::{AmbulanceRequestId, BloodRequestId, LabCollectionId, OrderId, SlotId, UnitId, UserId};

/// The kinds of live entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    /// An emergency ambulance request.
    AmbulanceRequest,
    /// A blood request.
    BloodRequest,
    /// A pharmacy order and its delivery.
    Order,
    /// A doctor's appointment slot.
    DoctorSlot,
    /// A home lab sample collection.
    LabCollection,
}

impl EntityKind {
    /// The snake_case name used in topics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AmbulanceRequest => "ambulance_request",
            Self::BloodRequest => "blood_request",
            Self::Order => "order",
            Self::DoctorSlot => "doctor_slot",
            Self::LabCollection => "lab_collection",
        }
    }
}

impl fmt::Display for EntityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which entity: kind plus typed id. Serialised as `{"kind": "order", "id": 7}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum EntityKey {
    /// An ambulance request.
    AmbulanceRequest(AmbulanceRequestId),
    /// A blood request.
    BloodRequest(BloodRequestId),
    /// An order.
    Order(OrderId),
    /// A doctor slot.
    DoctorSlot(SlotId),
    /// A lab collection.
    LabCollection(LabCollectionId),
}

impl EntityKey {
    /// The entity's kind.
    pub fn kind(self) -> EntityKind {
        match self {
            Self::AmbulanceRequest(_) => EntityKind::AmbulanceRequest,
            Self::BloodRequest(_) => EntityKind::BloodRequest,
            Self::Order(_) => EntityKind::Order,
            Self::DoctorSlot(_) => EntityKind::DoctorSlot,
            Self::LabCollection(_) => EntityKind::LabCollection,
        }
    }

    /// The numeric id inside the typed one (for topics and SQL).
    pub fn raw_id(self) -> i64 {
        match self {
            Self::AmbulanceRequest(id) => id.0,
            Self::BloodRequest(id) => id.0,
            Self::Order(id) => id.0,
            Self::DoctorSlot(id) => id.0,
            Self::LabCollection(id) => id.0,
        }
    }
}

impl fmt::Display for EntityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind(), self.raw_id())
    }
}

/// Who caused a transition; stored on every timeline row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "by", content = "id", rename_all = "snake_case")]
pub enum Agent {
    /// The platform itself: timers, the dispatcher, expiry.
    System,
    /// A signed-in person (customer, dispatcher, doctor, staff).
    User(UserId),
    /// A unit's crew (paramedic, rider, phlebotomist) through their device.
    Unit(UnitId),
}

/// A refused transition. The state is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// The event is not allowed from the current state.
    #[error("{kind}: cannot `{event}` while `{state}`")]
    Illegal {
        /// Entity kind.
        kind: EntityKind,
        /// Current state name.
        state: &'static str,
        /// Attempted event name.
        event: &'static str,
    },
    /// The event belongs to another kind of entity.
    #[error("{kind}: `{event}` is an event of another kind of entity")]
    WrongKind {
        /// Entity kind.
        kind: EntityKind,
        /// Attempted event name.
        event: &'static str,
    },
    /// The move exists but its data is unacceptable (zero units, a hold in the past, ...).
    #[error("{kind}: `{event}` refused: {reason}")]
    Invalid {
        /// Entity kind.
        kind: EntityKind,
        /// Attempted event name.
        event: &'static str,
        /// Why.
        reason: &'static str,
    },
}

/// The state of any live entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "entity", content = "state", rename_all = "snake_case")]
pub enum EntityState {
    /// An ambulance request.
    AmbulanceRequest(AmbulanceStatus),
    /// A blood request.
    BloodRequest(BloodRequest),
    /// An order.
    Order(OrderStatus),
    /// A doctor slot.
    DoctorSlot(SlotStatus),
    /// A lab collection.
    LabCollection(LabStatus),
}

/// A command's payload for any live entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "entity", content = "event", rename_all = "snake_case")]
pub enum EntityEvent {
    /// For an ambulance request.
    AmbulanceRequest(AmbulanceEvent),
    /// For a blood request.
    BloodRequest(BloodEvent),
    /// For an order.
    Order(OrderEvent),
    /// For a doctor slot.
    DoctorSlot(SlotEvent),
    /// For a lab collection.
    LabCollection(LabEvent),
}

impl EntityEvent {
    /// The event's snake_case name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::AmbulanceRequest(e) => e.name(),
            Self::BloodRequest(e) => e.name(),
            Self::Order(e) => e.name(),
            Self::DoctorSlot(e) => e.name(),
            Self::LabCollection(e) => e.name(),
        }
    }
}

impl EntityState {
    /// The entity kind this state belongs to.
    pub fn kind(&self) -> EntityKind {
        match self {
            Self::AmbulanceRequest(_) => EntityKind::AmbulanceRequest,
            Self::BloodRequest(_) => EntityKind::BloodRequest,
            Self::Order(_) => EntityKind::Order,
            Self::DoctorSlot(_) => EntityKind::DoctorSlot,
            Self::LabCollection(_) => EntityKind::LabCollection,
        }
    }

    /// The current state's snake_case name, as stored in a status column.
    pub fn name(&self) -> &'static str {
        match self {
            Self::AmbulanceRequest(s) => s.name(),
            Self::BloodRequest(s) => s.status.name(),
            Self::Order(s) => s.name(),
            Self::DoctorSlot(s) => s.name(),
            Self::LabCollection(s) => s.name(),
        }
    }

    /// The single transition function of every entity: the next state, or why the move is refused.
    pub fn apply(&self, event: &EntityEvent, at: DateTime<Utc>) -> Result<Self, TransitionError> {
        match (self, event) {
            (Self::AmbulanceRequest(s), EntityEvent::AmbulanceRequest(e)) => {
                s.transition(e).map(Self::AmbulanceRequest)
            }
            (Self::BloodRequest(s), EntityEvent::BloodRequest(e)) => {
                s.transition(e, at).map(Self::BloodRequest)
            }
            (Self::Order(s), EntityEvent::Order(e)) => s.transition(e).map(Self::Order),
            (Self::DoctorSlot(s), EntityEvent::DoctorSlot(e)) => s.transition(e, at).map(Self::DoctorSlot),
            (Self::LabCollection(s), EntityEvent::LabCollection(e)) => {
                s.transition(e).map(Self::LabCollection)
            }
            (state, event) => Err(TransitionError::WrongKind {
                kind: state.kind(),
                event: event.name(),
            }),
        }
    }

    /// A timer this state owns: when it fires, the entity applies the returned event as [`Agent::System`]
    /// (a slot hold's expiry, a blood request's deadline).
    pub fn deadline(&self) -> Option<(DateTime<Utc>, EntityEvent)> {
        match self {
            Self::DoctorSlot(SlotStatus::Held { until, .. }) => {
                Some((*until, EntityEvent::DoctorSlot(SlotEvent::HoldExpired)))
            }
            Self::BloodRequest(request) if !request.status.is_final() => {
                Some((request.expires_at, EntityEvent::BloodRequest(BloodEvent::Expire)))
            }
            _ => None,
        }
    }
}
