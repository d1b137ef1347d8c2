//! Dispatch: the offer cascade that finds, offers and claims a unit for a job, and the priority queue
//! where a job waits when nobody can take it now, re-solved in batches on every change of supply.

mod actor;
mod cascade;
mod lifecycle;
mod messages;
mod priority;
mod timers;

pub use actor::{DispatchSettings, Dispatcher};
pub use cascade::{DispatchOutcome, DispatchPhase};
pub use messages::{
    ActiveJobs, AnswerOutcome, CancelDispatch, ConsiderPreemption, Dispatch, DispatchError, DispatchStatus,
    OfferAnswer, OfferSettled, OfferedElsewhere, Preempted, SupplyChanged,
};
pub use priority::{
    BATCH_DEADLINE, CANDIDATE_POOL, DONE_RETENTION, FALLBACK_PENALTY, OFFER_TIMEOUT_C1, OFFER_TIMEOUT_C2,
    OFFER_TIMEOUT_C3, OFFER_TIMEOUT_C4, OFFER_TIMEOUT_ROUTINE, Priority, QUEUE_RECHECK, RESOLVE_DELAY,
    SEARCH_RADIUS_EMERGENCY_M, SEARCH_RADIUS_ROUTINE_M, WIDEN_FACTOR,
};
