//! [`Preemptor`]: decides the dispatcher's preemptions. An urgent call whose best free unit is too far
//! may take the nearest unit still on its way to a category 3 or 4 call; the move is one transaction
//! of conditional writes (`db::emergency::preempt`), so two nodes racing for one unit, or a unit
//! reaching its patient meanwhile, leave exactly one outcome. The call it was taken from goes back to
//! the queue with its original call time, leased to this node, and is dispatched again here first.

use actix::{Actor, Context, Handler, ResponseFuture};
use chrono::Utc;
use onemedi_actors::{
    dispatch::{ConsiderPreemption, Preempted},
    events::{DomainEvent, Topic},
    fleet::{DEFAULT_STALE_AFTER, UnitKind, eta_for},
    ids::UnitId,
    machines::{Agent, EntityKey},
};

use crate::{
    bus::{Bus, SharedFleet, lock_fleet},
    db::{Db, emergency},
};

/// How many candidate units one preemption tries, nearest first, before giving up this time.
const ATTEMPTS: usize = 3;

/// Decides preemptions against the database; one per node, next to its dispatcher.
pub struct Preemptor {
    db: Db,
    bus: Bus,
    fleet: SharedFleet,
}

impl Preemptor {
    pub fn new(db: Db, bus: Bus, fleet: SharedFleet) -> Self {
        Self { db, bus, fleet }
    }
}

impl Actor for Preemptor {
    type Context = Context<Self>;
}

impl Handler<ConsiderPreemption> for Preemptor {
    type Result = ResponseFuture<Option<Preempted>>;

    fn handle(&mut self, msg: ConsiderPreemption, _: &mut Context<Self>) -> Self::Result {
        let (db, bus, fleet) = (self.db.clone(), self.bus.clone(), self.fleet.clone());
        Box::pin(async move {
            match preempt_for(&db, &bus, &fleet, &msg).await {
                Ok(done) => done,
                Err(error) => {
                    tracing::warn!(job = %msg.job, error = %error, "preemption not attempted");
                    None
                }
            }
        })
    }
}

/// The stored name of a kind of ambulance.
fn stored_kind(kind: UnitKind) -> Option<&'static str> {
    match kind {
        UnitKind::AmbulanceAls => Some("als"),
        UnitKind::AmbulanceBls => Some("bls"),
        _ => None,
    }
}

async fn preempt_for(
    db: &Db,
    bus: &Bus,
    fleet: &SharedFleet,
    ask: &ConsiderPreemption,
) -> Result<Option<Preempted>, crate::db::DbError> {
    let EntityKey::AmbulanceRequest(urgent) = ask.job else {
        return Ok(None);
    };
    let kinds: Vec<&'static str> = ask
        .kinds
        .iter()
        .filter_map(|(kind, _)| stored_kind(*kind))
        .collect();
    let candidates = {
        let mut conn = db.read().await?;
        emergency::preemptable(&mut conn, &kinds, emergency::PREEMPTABLE_FROM_CATEGORY).await?
    };
    let stored = candidates.len();
    // Only units heard from recently; a less urgent caller (category 2) leaves `ask.leave` of them to
    // category 1 calls. Then nearest first by live position, arriving sooner than the best free unit
    // would.
    let fresh: Vec<(std::time::Duration, i64)> = {
        let index = lock_fleet(fleet);
        let now = Utc::now();
        let stale_ms = i64::try_from(DEFAULT_STALE_AFTER.as_millis()).unwrap_or(i64::MAX);
        candidates
            .into_iter()
            .filter_map(|(unit, _, _)| {
                let known = index.get(UnitId(unit))?;
                if now.signed_duration_since(known.last_seen).num_milliseconds() > stale_ms {
                    return None;
                }
                let fallback = ask.kinds.iter().find(|(kind, _)| *kind == known.kind)?.1;
                let mut eta = eta_for(known.kind, known.position.distance_m(ask.point));
                if fallback {
                    eta += onemedi_actors::dispatch::FALLBACK_PENALTY;
                }
                Some((eta, unit))
            })
            .collect()
    };
    tracing::debug!(
        job = %ask.job,
        stored,
        on_the_way = fresh.len(),
        leave = ask.leave,
        "preemption considered"
    );
    if fresh.len() <= ask.leave {
        return Ok(None);
    }
    let mut ranked: Vec<(std::time::Duration, i64)> = fresh
        .into_iter()
        .filter(|(eta, _)| ask.better_than.is_none_or(|best| *eta < best))
        .collect();
    ranked.sort();
    let until = crate::db::now() + super::lease::ROUTINE_LEASE;
    for (_, unit) in ranked.into_iter().take(ATTEMPTS) {
        let preempted = {
            let mut conn = db.write().await?;
            emergency::preempt(&mut conn, urgent.0, unit, bus.node_id(), until).await
        };
        let done = match preempted {
            Ok(done) => done,
            Err(emergency::EmergencyError::Db(error)) => return Err(error.into()),
            // This unit reached its patient or was taken meanwhile; the urgent call may have moved on.
            Err(
                error @ (emergency::EmergencyError::RequestState(_)
                | emergency::EmergencyError::RequestNotFound),
            ) => {
                tracing::debug!(job = %ask.job, unit, error = %error, "preemption refused");
                return Ok(None);
            }
            Err(error) => {
                tracing::debug!(job = %ask.job, unit, error = %error, "unit not taken");
                continue;
            }
        };
        announce(bus, &done).await;
        let Some(requeue) = super::dispatch_of(&done.requeued) else {
            return Ok(None);
        };
        return Ok(Some(Preempted {
            unit: UnitId(unit),
            requeue,
        }));
    }
    Ok(None)
}

/// After commit: the urgent call's assignment (its crew, every dispatcher), the preempted call's
/// return to the queue, and the `preempted` notice to the crew and both calls.
pub async fn announce(bus: &Bus, done: &emergency::Preemption) {
    let unit = done.unit.id;
    super::announce_assignment(
        bus,
        &done.urgent,
        unit,
        &done.urgent_from,
        "assign",
        Agent::System,
    )
    .await;
    let requeued = DomainEvent::StateChanged {
        entity: super::key(done.requeued.id),
        from: done.requeued_from.clone(),
        to: "queued".to_owned(),
        event: "preempt".to_owned(),
        version: u64::try_from(done.requeued.version).unwrap_or(0),
        at: Utc::now(),
        agent: Agent::System,
    };
    bus.publish(&super::request_topics(done.requeued.id), requeued.to_json())
        .await;
    let notice = DomainEvent::Preempted {
        unit: UnitId(unit),
        from: super::key(done.requeued.id),
        to: super::key(done.urgent.id),
    };
    let mut topics = super::request_topics(done.requeued.id);
    topics.push(format!("ambulance_request:{}", done.urgent.id));
    topics.push(Topic::unit(UnitId(unit)).as_str().to_owned());
    bus.publish(&topics, notice.to_json()).await;
}
