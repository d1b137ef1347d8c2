//! Domain events and topics: what the actors announce after a change is committed.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    ids::UnitId,
    machines::{Agent, EntityKey},
};

/// The schema version every event carries as `"v"`. Bump it when a payload changes incompatibly.
pub const EVENT_VERSION: u32 = 1;

/// A bus topic, e.g. `unit:42` (a crew's offers), `ambulance_request:7` (one request's timeline),
/// `dispatch` (escalations for dispatcher consoles).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Topic(String);

impl Topic {
    /// Offers and assignments for one unit's crew.
    pub fn unit(unit: UnitId) -> Self {
        Self(format!("unit:{unit}"))
    }

    /// Changes of one entity (what its tracking page subscribes to).
    pub fn entity(key: EntityKey) -> Self {
        Self(format!("{}:{}", key.kind().as_str(), key.raw_id()))
    }

    /// Escalations and dispatch outcomes, for dispatcher consoles.
    pub fn dispatch() -> Self {
        Self("dispatch".to_owned())
    }

    /// The topic as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Every event the actors publish. Serialised with [`DomainEvent::to_json`] as
/// `{"type": "<snake_case variant>", "v": 1, ...fields}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DomainEvent {
    /// An entity moved to a new state (order status, slot held, collection en route, ...).
    StateChanged {
        /// The entity.
        entity: EntityKey,
        /// Previous state name.
        from: String,
        /// New state name.
        to: String,
        /// The transition's name.
        event: String,
        /// The entity's version after the change.
        version: u64,
        /// When it happened.
        at: DateTime<Utc>,
        /// Who caused it.
        agent: Agent,
    },
    /// A job was offered to a unit's crew, who must accept or decline before `expires_at`.
    OfferMade {
        /// What is offered.
        request: EntityKey,
        /// To whom.
        unit: UnitId,
        /// Great-circle distance from the unit to the job, metres.
        distance_m: f64,
        /// Estimated time of arrival, seconds.
        eta_s: f64,
        /// The offer lapses at this time.
        expires_at: DateTime<Utc>,
    },
    /// A unit's crew declined an offer; the unit will not be offered this job again.
    OfferDeclined {
        /// The job.
        request: EntityKey,
        /// The unit that declined.
        unit: UnitId,
    },
    /// An offer lapsed without an answer.
    OfferExpired {
        /// The job.
        request: EntityKey,
        /// The unit that did not answer.
        unit: UnitId,
    },
    /// A unit accepted but another claimant already had it (another node won the row).
    ClaimLost {
        /// The job.
        request: EntityKey,
        /// The unit that went elsewhere.
        unit: UnitId,
    },
    /// A unit was claimed for a job (committed in the store).
    UnitAssigned {
        /// The job.
        request: EntityKey,
        /// The assigned unit.
        unit: UnitId,
    },
    /// Nobody could be found even after widening the search once.
    NoUnitAvailable {
        /// The job.
        request: EntityKey,
        /// The widest radius searched, metres.
        radius_m: f64,
    },
    /// A unit on its way to a less urgent job was taken for a more urgent one; the first job is back
    /// in the queue. Sent to the crew (`unit:<id>`), both jobs and dispatchers.
    Preempted {
        /// The unit.
        unit: UnitId,
        /// The job it was taken from (re-queued with its original call time).
        from: EntityKey,
        /// The job it now serves.
        to: EntityKey,
    },
    /// A job needs a human dispatcher.
    Escalated {
        /// The job.
        request: EntityKey,
        /// Why.
        reason: String,
    },
}

impl DomainEvent {
    /// The event's `type` tag.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::StateChanged { .. } => "state_changed",
            Self::OfferMade { .. } => "offer_made",
            Self::OfferDeclined { .. } => "offer_declined",
            Self::OfferExpired { .. } => "offer_expired",
            Self::ClaimLost { .. } => "claim_lost",
            Self::UnitAssigned { .. } => "unit_assigned",
            Self::NoUnitAvailable { .. } => "no_unit_available",
            Self::Preempted { .. } => "preempted",
            Self::Escalated { .. } => "escalated",
        }
    }

    /// The versioned wire form: `{"type": ..., "v": 1, ...}`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_else(|_| serde_json::json!({}));
        if let Some(object) = value.as_object_mut() {
            object.insert("type".to_owned(), self.type_name().into());
            object.insert("v".to_owned(), EVENT_VERSION.into());
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::AmbulanceRequestId;

    #[test]
    fn events_serialise_with_type_and_version() {
        let event = DomainEvent::UnitAssigned {
            request: EntityKey::AmbulanceRequest(AmbulanceRequestId(7)),
            unit: UnitId(42),
        };
        let json = event.to_json();
        assert_eq!(json["type"], "unit_assigned");
        assert_eq!(json["v"], 1);
        assert_eq!(json["unit"], 42);
        assert_eq!(
            Topic::entity(EntityKey::AmbulanceRequest(AmbulanceRequestId(7))).as_str(),
            "ambulance_request:7"
        );
    }
}
