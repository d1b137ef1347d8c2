//! Dispatch: the offer cascade that finds, offers and claims a unit for a job.

mod actor;
mod cascade;
mod lifecycle;
mod messages;
mod priority;
mod timers;

pub use actor::{DispatchSettings, Dispatcher};
pub use cascade::{DispatchOutcome, DispatchPhase};
pub use messages::{
    AnswerOutcome, CancelDispatch, Dispatch, DispatchError, DispatchStatus, OfferAnswer, OfferSettled,
};
pub use priority::{
    CANDIDATE_POOL, DONE_RETENTION, OFFER_TIMEOUT_C1, OFFER_TIMEOUT_C2, OFFER_TIMEOUT_C3, OFFER_TIMEOUT_C4,
    OFFER_TIMEOUT_ROUTINE, Priority, SEARCH_RADIUS_EMERGENCY_M, SEARCH_RADIUS_ROUTINE_M, WIDEN_FACTOR,
};
