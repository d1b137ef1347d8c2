//! Priorities and the timing constants of the cascade.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How urgent a job is. Emergency calls use the UK Ambulance Response Programme categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// ARP category 1: life-threatening (cardiac arrest, not breathing).
    Category1,
    /// ARP category 2: emergency (stroke, chest pain, major trauma).
    Category2,
    /// ARP category 3: urgent.
    Category3,
    /// ARP category 4: less urgent.
    Category4,
    /// Not an emergency: deliveries and home collections.
    Routine,
}

/// Offer timeout for a category 1 call: every second counts, so an unanswered crew is skipped fast.
pub const OFFER_TIMEOUT_C1: Duration = Duration::from_secs(15);
/// Offer timeout for a category 2 call.
pub const OFFER_TIMEOUT_C2: Duration = Duration::from_secs(20);
/// Offer timeout for a category 3 call.
pub const OFFER_TIMEOUT_C3: Duration = Duration::from_secs(30);
/// Offer timeout for a category 4 call.
pub const OFFER_TIMEOUT_C4: Duration = Duration::from_secs(45);
/// Offer timeout for routine jobs: riders and phlebotomists may be mid-task and need longer to answer.
pub const OFFER_TIMEOUT_ROUTINE: Duration = Duration::from_secs(60);

/// First search radius for emergencies, metres (≈ 20 min at urban ambulance speed).
pub const SEARCH_RADIUS_EMERGENCY_M: f64 = 15_000.0;
/// First search radius for routine jobs, metres.
pub const SEARCH_RADIUS_ROUTINE_M: f64 = 8_000.0;
/// When nobody is left within the radius, the search widens once by this factor.
pub const WIDEN_FACTOR: f64 = 2.0;
/// How many candidates one fleet query fetches; the cascade refills when they run out.
pub const CANDIDATE_POOL: usize = 8;
/// How long the dispatcher gathers triggers (units freed, calls arriving) before re-solving the queue:
/// triggers arriving together are solved as one batch.
pub const RESOLVE_DELAY: Duration = Duration::from_millis(25);
/// While calls wait, the queue is also re-solved this often, for changes no event announces (a unit
/// driving into range, a silent unit heard from again).
pub const QUEUE_RECHECK: Duration = Duration::from_secs(5);
/// Time budget of one batch assignment; past it the solver falls back to cheaper methods.
pub const BATCH_DEADLINE: Duration = Duration::from_millis(20);
/// What a unit of the fallback kind costs on top of its ETA in a batch: a category 1 call takes a
/// BLS crew 10 minutes nearer rather than an ALS crew, never one merely a little nearer.
pub const FALLBACK_PENALTY: Duration = Duration::from_secs(600);
/// How long a finished cascade's outcome stays queryable through `DispatchStatus`.
pub const DONE_RETENTION: Duration = Duration::from_secs(600);

impl Priority {
    /// How long a crew has to answer an offer.
    pub fn offer_timeout(self) -> Duration {
        match self {
            Self::Category1 => OFFER_TIMEOUT_C1,
            Self::Category2 => OFFER_TIMEOUT_C2,
            Self::Category3 => OFFER_TIMEOUT_C3,
            Self::Category4 => OFFER_TIMEOUT_C4,
            Self::Routine => OFFER_TIMEOUT_ROUTINE,
        }
    }

    /// Queue order: lower first (category 1 is 0, routine 4).
    pub fn rank(self) -> u8 {
        match self {
            Self::Category1 => 0,
            Self::Category2 => 1,
            Self::Category3 => 2,
            Self::Category4 => 3,
            Self::Routine => 4,
        }
    }

    /// The first search radius, metres.
    pub fn search_radius_m(self) -> f64 {
        match self {
            Self::Routine => SEARCH_RADIUS_ROUTINE_M,
            _ => SEARCH_RADIUS_EMERGENCY_M,
        }
    }
}
