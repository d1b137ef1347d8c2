//! The state of one job's offer cascade, and of its wait in the queue when nobody can take it now.

use std::collections::{HashSet, VecDeque};

use chrono::{DateTime, Utc};
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
    /// One-shot policy only: nobody accepted within the widened radius; escalated to a human and
    /// never re-dispatched.
    NoUnitAvailable,
    /// The job was called off (or another node adopted it).
    Cancelled,
}

/// Where a cascade is (what `DispatchStatus` reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum DispatchPhase {
    /// Looking for the next candidate.
    Searching,
    /// Nobody feasible is free now: waiting in the queue, re-solved on every change of supply.
    Queued,
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

/// What the job's timeline last recorded of its wait in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueueMark {
    /// Nothing (not queued, or queued and matched before it had to be recorded).
    Unrecorded,
    /// `queued`: units are on duty, none free and feasible.
    Queued,
    /// `no_unit_available`: no unit of an acceptable kind is on duty in the service area at all.
    NoUnit,
}

impl QueueMark {
    /// The stored status this mark records.
    pub(crate) fn status(self) -> Option<&'static str> {
        match self {
            Self::Unrecorded => None,
            Self::Queued => Some("queued"),
            Self::NoUnit => Some("no_unit_available"),
        }
    }
}

/// One job's cascade.
#[derive(Debug)]
pub(crate) struct Cascade {
    /// The kind searched now (the primary kind, then the fallback).
    pub(crate) kind: UnitKind,
    /// The kind the job wants first.
    pub(crate) primary: UnitKind,
    /// The kind it takes when no primary unit is left.
    pub(crate) alternate: Option<UnitKind>,
    /// When the call was received: orders the queue within a priority, kept across re-queueing.
    pub(crate) called_at: DateTime<Utc>,
    /// What the timeline last recorded of the wait in the queue.
    pub(crate) queue_mark: QueueMark,
    /// A queue mark is being recorded: the job is not offered until it is (the timeline stays ordered).
    pub(crate) marking: bool,
    /// Numbers queue marks, for their command ids.
    pub(crate) queue_steps: u64,
    /// Why the next offer goes to its unit (a batch's method and time), for the timeline.
    pub(crate) note: Option<String>,
    /// When a preemption was last asked for this job (asked again after `PREEMPTION_RETRY`).
    pub(crate) preemption_asked: Option<tokio::time::Instant>,
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
            primary: request.kind,
            alternate: request.fallback.filter(|k| *k != request.kind),
            called_at: request.called_at,
            queue_mark: QueueMark::Unrecorded,
            marking: false,
            queue_steps: 0,
            note: None,
            preemption_asked: None,
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

    /// Starts the search over from the primary kind and the first radius (after a wait in the queue).
    pub(crate) fn reset_search(&mut self) {
        self.kind = self.primary;
        self.fallback = self.alternate;
        self.widened = false;
        self.radius_m = self.priority.search_radius_m();
        self.pool.clear();
    }

    /// Every acceptable kind, with whether it is the fallback.
    pub(crate) fn kinds(&self) -> Vec<(UnitKind, bool)> {
        let mut kinds = vec![(self.primary, false)];
        kinds.extend(self.alternate.map(|k| (k, true)));
        kinds
    }

    /// Whether this job and `other` could compete for the same unit.
    pub(crate) fn competes_with(&self, other: &Self) -> bool {
        self.kinds()
            .iter()
            .any(|(k, _)| other.kinds().iter().any(|(o, _)| o == k))
    }

    /// Whether the job waits in the queue and may be offered now.
    pub(crate) fn is_waiting(&self) -> bool {
        self.phase == DispatchPhase::Queued && !self.marking
    }

    /// The unit currently holding this cascade's offer, if one is out.
    pub(crate) fn offered_unit(&self) -> Option<UnitId> {
        match self.phase {
            DispatchPhase::Recording { unit } | DispatchPhase::Offering { unit } => Some(unit),
            _ => None,
        }
    }
}
