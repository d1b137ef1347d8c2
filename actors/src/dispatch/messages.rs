//! Messages of the dispatcher: jobs in, crew answers in, outcomes out (also as bus events).

use actix::Message;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{DispatchPhase, Priority};
use crate::{
    fleet::{Capabilities, UnitKind},
    ids::UnitId,
    machines::EntityKey,
    position::Position,
};

/// Find and claim a unit for a job. Returns once the cascade has started; its progress is published on
/// the bus (`offer_made` to `unit:<id>`, `unit_assigned`, `no_unit_available`, `escalated`).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), DispatchError>")]
pub struct Dispatch {
    /// The job (an ambulance request, a lab collection, an order's delivery).
    pub job: EntityKey,
    /// Which kind of unit serves it.
    pub kind: UnitKind,
    /// Where the unit must go.
    pub point: Position,
    /// Urgency: sets the offer timeout and the search radius.
    pub priority: Priority,
    /// Equipment the unit must carry.
    pub required: Capabilities,
    /// Another kind of unit to search once `kind` is exhausted, before giving up (a BLS crew for a
    /// category 1 call when no ALS unit is free).
    pub fallback: Option<UnitKind>,
    /// When the call was received: the queue serves a priority's calls oldest first, and a call
    /// re-dispatched (adopted after a crash, preempted) keeps its original time.
    pub called_at: DateTime<Utc>,
}

/// A crew's answer to an offer.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "AnswerOutcome")]
pub struct OfferAnswer {
    /// The job offered.
    pub job: EntityKey,
    /// The answering unit.
    pub unit: UnitId,
    /// Accept (`true`) or decline (`false`).
    pub accepted: bool,
}

/// What became of a crew's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerOutcome {
    /// Accepted and claimed: the job is yours.
    Assigned,
    /// Accepted, but the unit had been claimed elsewhere first (or the job was withdrawn).
    Taken,
    /// Declined; you will not be offered this job again.
    Declined,
    /// There is no open offer of this job to this unit (it lapsed, or was never made).
    NotOffered,
}

/// An offer of `job` was settled outside this dispatcher (by the crew through the store on any node, or
/// by a dispatcher's manual assignment): `accepted` means the job now belongs to `unit`; otherwise `unit`
/// declined and the cascade moves on. A dispatcher with no open cascade for `job` ignores it (returns
/// `false`), so every node can be told.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "bool")]
pub struct OfferSettled {
    /// The job.
    pub job: EntityKey,
    /// The unit that accepted (or was assigned), or that declined.
    pub unit: UnitId,
    /// Accepted or assigned (`true`), declined (`false`).
    pub accepted: bool,
}

/// The job was called off: stop the cascade, release a claim it may hold.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "bool")]
pub struct CancelDispatch(pub EntityKey);

/// An urgent job's best free unit is too far (or there is none): may a unit on its way to a less
/// urgent job be taken? Answered by whoever can decide it atomically (the server: one transaction that
/// moves the unit and re-queues the other job); `None` when nothing better could be taken.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Option<Preempted>")]
pub struct ConsiderPreemption {
    /// The urgent job.
    pub job: EntityKey,
    /// Where it is.
    pub point: Position,
    /// Its priority.
    pub priority: Priority,
    /// Acceptable kinds of unit, the fallback flagged.
    pub kinds: Vec<(UnitKind, bool)>,
    /// Only a unit arriving sooner than this is worth taking (the best free unit's ETA, if any).
    pub better_than: Option<std::time::Duration>,
    /// How many takeable units must be left to more urgent calls: nothing is taken unless more than
    /// this many units are on their way to less urgent calls (a category 2 call leaves
    /// `reserve_c1` to category 1 calls; a category 1 call leaves none).
    pub leave: usize,
}

/// A preemption that happened: `unit` now serves the urgent job; `requeue` dispatches the job it was
/// taken from again, with its original call time.
#[derive(Debug, Clone)]
pub struct Preempted {
    /// The unit taken.
    pub unit: UnitId,
    /// The preempted job, to be dispatched again (first in line among its priority).
    pub requeue: Dispatch,
}

/// Another dispatcher (another node's) offered `unit` a job until `expires_at`: the unit is not offered
/// anything else meanwhile. The store refuses a second open offer anyway; this saves the round trip.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct OfferedElsewhere {
    /// The job offered (ignored when it is one of this dispatcher's own).
    pub job: EntityKey,
    /// The unit holding the offer.
    pub unit: UnitId,
    /// When the offer lapses if unanswered.
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// Supply changed somewhere (a unit came on duty or back in service, an offer was declined or lapsed
/// on any node, a job was cancelled): the queue is re-solved shortly. Cheap to send often; triggers
/// arriving together are solved in one batch.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct SupplyChanged;

/// The jobs this dispatcher is working (searching, offering, claiming or queued): what its node
/// holds leases on.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Vec<EntityKey>")]
pub struct ActiveJobs;

/// Where a job's cascade is, if this dispatcher runs or recently ran one.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Option<DispatchPhase>")]
pub struct DispatchStatus(pub EntityKey);

/// The lapse of one offer (the cascade's own timer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub(crate) struct OfferExpired {
    pub(crate) job: EntityKey,
    pub(crate) seq: u64,
}

/// Why a job could not be dispatched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DispatchError {
    /// A cascade for this job is already running here.
    #[error("{0} is already being dispatched")]
    AlreadyDispatching(EntityKey),
}
