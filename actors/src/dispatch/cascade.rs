//! The state of one job's offer cascade.

use std::collections::{HashSet, VecDeque};

use serde::{Deserialize, Serialize};

use super::{Dispatch, Priority, timers::TimerKey};
use crate::{
    fleet::{Capabilities, Nearby, UnitKind},
    ids::UnitId,
    position::Position,
};

/// How a cascade ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "unit", rename_all = "snake_case")]
pub enum DispatchOutcome {
    /// The unit was claimed for the job.
    Assigned(UnitId),
    /// Nobody accepted within the widened radius; escalated to a human dispatcher.
    NoUnitAvailable,
    /// The job was called off.
    Cancelled,
}

/// Where a cascade is (what `DispatchStatus` reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum DispatchPhase {
    /// Looking for the next candidate.
    Searching,
    /// Waiting for the fleet index.
    Querying,
    /// Recording the offer in the job's timeline before announcing it.
    Recording {
        /// The candidate.
        unit: UnitId,
    },
    /// Waiting for the crew's answer.
    Offering {
        /// The candidate.
        unit: UnitId,
    },
    /// The crew accepted; claiming the unit in the store.
    Claiming {
        /// The candidate.
        unit: UnitId,
    },
    /// Finished.
    Done(DispatchOutcome),
}

/// One job's cascade.
#[derive(Debug)]
pub(crate) struct Cascade {
    pub(crate) kind: UnitKind,
    /// Unique per cascade; part of every command id it records.
    pub(crate) nonce: u64,
    /// Searched once `kind` is exhausted; taken (set to `None`) when the cascade switches to it.
    pub(crate) fallback: Option<UnitKind>,
    pub(crate) point: Position,
    pub(crate) priority: Priority,
    pub(crate) required: Capabilities,
    pub(crate) radius_m: f64,
    pub(crate) widened: bool,
    /// Every unit already offered this job (declined, lapsed, lost or pending): never offered again.
    pub(crate) tried: HashSet<UnitId>,
    /// Ranked candidates not offered yet.
    pub(crate) pool: VecDeque<Nearby>,
    pub(crate) phase: DispatchPhase,
    /// Numbers offers, so a late timer for an earlier offer is ignored.
    pub(crate) offer_seq: u64,
    /// The deadline that lapses the current offer; cancelled when the crew answers.
    pub(crate) offer_timer: Option<TimerKey>,
}

impl Cascade {
    pub(crate) fn new(request: &Dispatch, nonce: u64) -> Self {
        Self {
            kind: request.kind,
            nonce,
            fallback: request.fallback.filter(|k| *k != request.kind),
            point: request.point,
            priority: request.priority,
            required: request.required,
            radius_m: request.priority.search_radius_m(),
            widened: false,
            tried: HashSet::new(),
            pool: VecDeque::new(),
            phase: DispatchPhase::Searching,
            offer_seq: 0,
            offer_timer: None,
        }
    }

    /// The unit currently holding this cascade's offer, if one is out.
    pub(crate) fn offered_unit(&self) -> Option<UnitId> {
        match self.phase {
            DispatchPhase::Recording { unit } | DispatchPhase::Offering { unit } => Some(unit),
            _ => None,
        }
    }
}
