//! Phlebotomist assignment for home lab collections, and the lab sweep.
//!
//! A collection's offer round runs on the node that booked it (or adopted it in the sweep): rank the
//! feasible collectors (working hours containing the window, capacity left, on duty) by distance from
//! their live position in the fleet index, or their home base when they have not reported lately; offer
//! the nearest (`offer_made` on `collector:{id}` and `unit:{id}`); wait for the answer or the offer's
//! expiry; on decline, lapse or a full collector move on to the next; with nobody left, note why and
//! leave the booking `booked` for the sweep to retry. Answers are settled on whichever node the collector
//! is connected to by conditional writes (`db::lab_collections::accept_offer`): the collector's load for
//! the window is a counter claimed with `assigned < capacity`, so no node can overbook a collector.
//! Unlike an ambulance, a collector serves several collections per window, so the unit is never claimed
//! exclusively and stays `available`.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use actix_web::web;
use chrono::{TimeDelta, Utc};
use onemedi_actors::{
    dispatch::{SEARCH_RADIUS_ROUTINE_M, WIDEN_FACTOR},
    events::DomainEvent,
    fleet::{DEFAULT_STALE_AFTER, UnitKind, eta_for},
    ids::{LabCollectionId, UnitId},
    machines::{Agent, EntityKey},
    position::Position,
};
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::{
    bus::lock_fleet,
    db::{
        self,
        lab_collections::{self as lab, Candidate, CollectionRow, LabError, NewOffer},
    },
    error::{ApiError, ErrorCode},
    state::AppState,
};

/// Farthest a collector is sent from, metres: the routine search radius widened once.
pub const MAX_COLLECTOR_DISTANCE_M: f64 = SEARCH_RADIUS_ROUTINE_M * WIDEN_FACTOR;
/// Most offers one round makes before it stops (the sweep starts another later).
const MAX_OFFERS_PER_ROUND: usize = 50;
/// Most stranded bookings and collected samples one sweep looks at.
const SWEEP_BATCH: i64 = 100;

/// The offer rounds running on this node, each with the bell that wakes it when its offer is answered.
#[derive(Debug, Default)]
pub struct LabDesk {
    /// Collection id → its round's wake-up; rung by the bus (answers settled on any node) and by the
    /// round's own node. Entries are removed when the round ends.
    running: Mutex<HashMap<i64, Arc<Notify>>>,
}

impl LabDesk {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Arc<Notify>>> {
        self.running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a round for `collection`; `None` if one already runs here.
    fn claim(&self, collection: i64) -> Option<Arc<Notify>> {
        let mut running = self.lock();
        if running.contains_key(&collection) {
            return None;
        }
        let bell = Arc::new(Notify::new());
        running.insert(collection, bell.clone());
        Some(bell)
    }

    fn release(&self, collection: i64) {
        self.lock().remove(&collection);
    }

    pub fn is_running(&self, collection: i64) -> bool {
        self.lock().contains_key(&collection)
    }

    /// Wakes the round of `collection`, if it runs here.
    pub fn wake(&self, collection: i64) {
        if let Some(bell) = self.lock().get(&collection) {
            bell.notify_one();
        }
    }

    /// Wakes a round when the bus carries an answer to its offer or a change of its collection.
    pub fn feed(&self, event: &Value) {
        let relevant = matches!(
            event["type"].as_str(),
            Some("unit_assigned" | "offer_declined" | "claim_lost" | "state_changed")
        );
        if !relevant {
            return;
        }
        let key = if event["request"].is_object() {
            &event["request"]
        } else {
            &event["entity"]
        };
        if key["kind"] == lab::ENTITY
            && let Some(id) = key["id"].as_i64()
        {
            self.wake(id);
        }
    }
}

pub fn key(collection: i64) -> EntityKey {
    EntityKey::LabCollection(LabCollectionId(collection))
}

/// The topics a collection's changes go to: its own, and its collector's when it has one.
pub fn topics(row: &CollectionRow) -> Vec<String> {
    let mut topics = vec![format!("lab_collection:{}", row.id)];
    if let Some(collector) = row.phlebotomist_id {
        topics.push(format!("collector:{collector}"));
    }
    topics
}

/// Starts an offer round for `collection` on this node unless one runs here already.
pub fn assign(state: web::Data<AppState>, collection: i64) {
    let Some(bell) = state.lab.claim(collection) else {
        return;
    };
    actix_web::rt::spawn(async move {
        if let Err(error) = offer_round(&state, collection, &bell).await {
            tracing::warn!(collection, error = ?error, "lab collection offer round stopped");
        }
        state.lab.release(collection);
    });
}

/// A ranked candidate: the collector, their distance and travel time to the address.
struct Ranked {
    candidate: Candidate,
    distance_m: f64,
    eta_s: f64,
}

/// Nearest first, within [`MAX_COLLECTOR_DISTANCE_M`]: live positions when fresh, else home bases.
fn rank(state: &AppState, row: &CollectionRow, candidates: Vec<Candidate>) -> Vec<Ranked> {
    let Ok(address) = Position::new(row.lat, row.lng) else {
        return Vec::new();
    };
    let fresh_after = Utc::now() - TimeDelta::from_std(DEFAULT_STALE_AFTER).unwrap_or(TimeDelta::zero());
    let fleet = lock_fleet(&state.fleet);
    let mut ranked: Vec<Ranked> = candidates
        .into_iter()
        .filter_map(|candidate| {
            let live = fleet
                .get(UnitId(candidate.collector.unit_id))
                .filter(|unit| unit.last_seen >= fresh_after)
                .map(|unit| unit.position);
            let from = match live {
                Some(position) => position,
                None => Position::new(candidate.collector.home_lat, candidate.collector.home_lng).ok()?,
            };
            let distance_m = from.distance_m(address);
            (distance_m <= MAX_COLLECTOR_DISTANCE_M).then(|| Ranked {
                candidate,
                distance_m,
                eta_s: eta_for(UnitKind::Phlebotomist, distance_m).as_secs_f64(),
            })
        })
        .collect();
    drop(fleet);
    ranked.sort_by(|a, b| {
        a.distance_m
            .total_cmp(&b.distance_m)
            .then(a.candidate.collector.id.cmp(&b.candidate.collector.id))
    });
    ranked
}

/// One round of offers for a collection (see the module documentation).
async fn offer_round(state: &AppState, collection: i64, bell: &Notify) -> Result<(), ApiError> {
    let timeout = state.settings.lab.offer_timeout();
    let mut tried: Vec<i64> = Vec::new();
    for _ in 0..MAX_OFFERS_PER_ROUND {
        let now = db::now();
        let mut conn = state.db.read().await?;
        let Some(row) = lab::find(&mut conn, collection).await? else {
            return Ok(());
        };
        if !matches!(row.status.as_str(), "booked" | "unassigned") {
            return Ok(());
        }
        if lab::open_offer(&mut conn, collection, now).await?.is_some() {
            // Another node's round holds an open offer; it carries on from there.
            return Ok(());
        }
        let candidates = lab::candidates(&mut conn, &row, &tried).await?;
        drop(conn);
        let Some(best) = rank(state, &row, candidates).into_iter().next() else {
            let reason = if tried.is_empty() {
                "no phlebotomist with capacity left in this window works near the address; retrying"
            } else {
                "every phlebotomist with capacity left declined or did not answer; retrying"
            };
            let mut conn = state.db.write().await?;
            if lab::note_unassigned(&mut conn, collection, reason).await? {
                drop(conn);
                let event = json!({
                    "type": "lab_collection_unassigned", "v": 1,
                    "collection_id": collection, "reason": reason, "at": Utc::now(),
                });
                state.bus.publish(&topics(&row), event).await;
            }
            return Ok(());
        };
        let collector = best.candidate.collector.id;
        let unit = best.candidate.collector.unit_id;
        tried.push(collector);
        let expires_at = now + TimeDelta::from_std(timeout).unwrap_or(TimeDelta::seconds(60));
        let offer = NewOffer {
            collection,
            version: row.version,
            unit,
            distance_m: best.distance_m,
            eta_seconds: i32::try_from(best.eta_s.round() as i64).unwrap_or(i32::MAX),
            at: now,
            expires_at,
        };
        let mut conn = state.db.write().await?;
        let made = lab::make_offer(&mut conn, offer).await.map_err(lab_error)?;
        drop(conn);
        if !made {
            continue;
        }
        let event = DomainEvent::OfferMade {
            request: key(collection),
            unit: UnitId(unit),
            distance_m: best.distance_m,
            eta_s: best.eta_s,
            expires_at: expires_at.and_utc(),
        };
        let offer_topics = [format!("collector:{collector}"), format!("unit:{unit}")];
        state.bus.publish(&offer_topics, event.to_json()).await;
        if await_answer(state, collection, unit, expires_at, bell).await? {
            return Ok(());
        }
    }
    Ok(())
}

/// Waits until the offer is answered or lapses. `true` when it was accepted (the round is over).
async fn await_answer(
    state: &AppState,
    collection: i64,
    unit: i64,
    expires_at: chrono::NaiveDateTime,
    bell: &Notify,
) -> Result<bool, ApiError> {
    loop {
        let left = (expires_at - db::now()).to_std().unwrap_or_default();
        tokio::select! {
            () = bell.notified() => {}
            () = tokio::time::sleep(left) => {}
        }
        let mut conn = state.db.write().await?;
        let Some((status, expires)) = lab::offer_state(&mut conn, collection, unit).await? else {
            return Ok(false);
        };
        match status.as_str() {
            "accepted" => return Ok(true),
            "offered" if db::now() < expires => continue,
            "offered" => {
                let lapsed = lab::close_offer(&mut conn, collection, unit, "expired", db::now()).await?;
                drop(conn);
                if lapsed {
                    let event = DomainEvent::OfferExpired {
                        request: key(collection),
                        unit: UnitId(unit),
                    };
                    state
                        .bus
                        .publish(&[format!("unit:{unit}")], event.to_json())
                        .await;
                    return Ok(false);
                }
                // Answered in the meantime: read what it became.
                continue;
            }
            _ => return Ok(false),
        }
    }
}

pub fn lab_error(error: LabError) -> ApiError {
    match error {
        LabError::TestsUnavailable(ids) => ApiError::new(
            ErrorCode::ValidationFailed,
            "some tests do not exist, are inactive or cannot be collected at home",
        )
        .with_details(json!({ "test_ids": ids })),
        LabError::AddressNotFound => ApiError::field("address_id", "no such address"),
        LabError::NotFound => ApiError::not_found("lab collection"),
        LabError::Illegal(illegal) => ApiError::new(ErrorCode::InvalidTransition, illegal.to_string()),
        LabError::Conflict => ApiError::new(
            ErrorCode::Conflict,
            "the collection changed meanwhile; reload it and try again",
        ),
        LabError::OfferNotFound => ApiError::not_found("offer of this collection to your unit"),
        LabError::OfferExpired => ApiError::new(
            ErrorCode::OfferExpired,
            "the offer lapsed; the collection went on to another phlebotomist",
        ),
        LabError::OfferClosed => ApiError::new(
            ErrorCode::OfferTaken,
            "the offer was already answered or withdrawn, or the collection was cancelled or taken",
        ),
        LabError::CollectorFull => ApiError::new(
            ErrorCode::UnitUnavailable,
            "you have no capacity left in this collection window",
        ),
        LabError::NotCollector => {
            ApiError::new(ErrorCode::Forbidden, "only a phlebotomist's unit may answer")
        }
        LabError::Db(error) => error.into(),
    }
}

/// The collector on `unit` answers the open offer of `collection`, settled here by conditional writes
/// whatever node runs the round; the announcement wakes that round.
pub async fn answer_offer(
    state: &AppState,
    unit: i64,
    user: i64,
    collection: i64,
    accepted: bool,
    reason: Option<&str>,
) -> Result<(), ApiError> {
    let mut conn = state.db.write().await?;
    if !accepted {
        lab::decline_offer(&mut conn, collection, unit, reason)
            .await
            .map_err(lab_error)?;
        drop(conn);
        let declined = DomainEvent::OfferDeclined {
            request: key(collection),
            unit: UnitId(unit),
        };
        let topics = [format!("lab_collection:{collection}"), format!("unit:{unit}")];
        state.bus.publish(&topics, declined.to_json()).await;
        return Ok(());
    }
    let accepted = lab::accept_offer(&mut conn, collection, unit, user).await;
    drop(conn);
    match accepted {
        Ok(done) => {
            let row = &done.collection;
            let changed = DomainEvent::StateChanged {
                entity: key(collection),
                from: done.from.clone(),
                to: row.status.clone(),
                event: "assign".to_owned(),
                version: u64::try_from(row.version).unwrap_or(0),
                at: Utc::now(),
                agent: Agent::Unit(UnitId(unit)),
            };
            state.bus.publish(&topics(row), changed.to_json()).await;
            let assigned = DomainEvent::UnitAssigned {
                request: key(collection),
                unit: UnitId(unit),
            };
            let mut assigned_topics = topics(row);
            assigned_topics.push(format!("unit:{unit}"));
            state.bus.publish(&assigned_topics, assigned.to_json()).await;
            Ok(())
        }
        Err(LabError::CollectorFull) => {
            let lost = DomainEvent::ClaimLost {
                request: key(collection),
                unit: UnitId(unit),
            };
            let topics = [format!("lab_collection:{collection}"), format!("unit:{unit}")];
            state.bus.publish(&topics, lost.to_json()).await;
            Err(lab_error(LabError::CollectorFull))
        }
        Err(error) => Err(lab_error(error)),
    }
}

/// Announces a lifecycle step on the collection's topics.
pub async fn announce_step(state: &AppState, stepped: &lab::Stepped, event: &str, agent: Agent) {
    let changed = DomainEvent::StateChanged {
        entity: key(stepped.after.id),
        from: stepped.before.status.clone(),
        to: stepped.after.status.clone(),
        event: event.to_owned(),
        version: u64::try_from(stepped.after.version).unwrap_or(0),
        at: Utc::now(),
        agent,
    };
    state
        .bus
        .publish(&topics(&stepped.after), changed.to_json())
        .await;
}

/// One pass of the lab sweep: bookings nobody took are offered again, and collected samples close to
/// their stability deadline raise an alert (once per collection, by a conditional write).
pub async fn sweep(state: &web::Data<AppState>) -> Result<(), ApiError> {
    let now = db::now();
    let today = db::doctors::local_today(now);
    let before = now - state.settings.lab.retry_after();
    let mut conn = state.db.read().await?;
    let stranded = lab::stranded(&mut conn, today, before, SWEEP_BATCH).await?;
    let collected = lab::collected_unalerted(&mut conn, SWEEP_BATCH).await?;
    let mut open = Vec::new();
    for row in &stranded {
        if !state.lab.is_running(row.id) && lab::open_offer(&mut conn, row.id, now).await?.is_none() {
            open.push((row.id, row.version));
        }
    }
    drop(conn);
    for (id, version) in open {
        let mut conn = state.db.write().await?;
        let adopted = lab::adopt(&mut conn, id, version).await?;
        drop(conn);
        if adopted {
            assign(state.clone(), id);
        }
    }
    let margin = state.settings.lab.at_risk_margin();
    for row in collected {
        let mut conn = state.db.read().await?;
        let items = lab::items_of(&mut conn, row.id).await?;
        drop(conn);
        let Some(deadline) = row.sample_deadline(lab::collection_stability(&items)) else {
            continue;
        };
        if deadline - margin > now {
            continue;
        }
        let mut conn = state.db.write().await?;
        let first = lab::mark_alerted(&mut conn, row.id, now).await?;
        drop(conn);
        if first {
            let event = json!({
                "type": "lab_collection_at_risk", "v": 1,
                "collection_id": row.id,
                "phlebotomist_id": row.phlebotomist_id,
                "collected_at": row.collected_at.map(|t| t.and_utc()),
                "deadline": deadline.and_utc(),
                "minutes_left": (deadline - now).num_minutes(),
                "at": Utc::now(),
            });
            let mut alert_topics = topics(&row);
            alert_topics.push("lab_desk".to_owned());
            state.bus.publish(&alert_topics, event).await;
        }
    }
    Ok(())
}
