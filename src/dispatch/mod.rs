//! Dispatch on this node — ambulances to emergency calls and riders to packed medicine orders: the
//! actors' entity registry and dispatcher wired to the database (`SqlStore`), the bus and this node's
//! fleet index, plus the operations the API and the websocket share (answering offers of any job kind,
//! assigning by hand, moving a request through its lifecycle, retrying orphaned jobs).
//!
//! Who decides what: a request's offer cascade runs on the node that received the request. A crew's
//! answer is settled on whichever node the crew is connected to, by conditional writes in the database
//! (`db::emergency::accept_offer`); the resulting `unit_assigned` / `offer_declined` event crosses the
//! bus and tells the owning node's dispatcher to stop or move on.

pub mod breach;
pub mod fleet;
pub mod lab;
pub mod lab_route;
pub mod lease;
pub mod preempt;

use std::sync::Arc;

use actix::{Actor, Addr};
use chrono::Utc;
use onemedi_actors::{
    dispatch::{
        CancelDispatch, Dispatch, DispatchSettings, Dispatcher, OfferSettled, OfferedElsewhere, SupplyChanged,
    },
    entity::{Command, EntityError, EntityRegistry, EntitySettings, Execute, Executed},
    events::{DomainEvent, Topic},
    fleet::{Capabilities, FleetLink, UnitKind},
    ids::{AmbulanceRequestId, CommandId, OrderId, UnitId},
    machines::{Agent, AmbulanceEvent, EntityEvent, EntityKey},
    ports::{Ports, SystemClock},
    position::Position,
};

use crate::{
    bus::{Bus, Event, SharedFleet},
    db::{
        Db,
        emergency::{self, EmergencyError, RequestRow, Settled, SettledJob},
        entity_store::{DELIVERY_PRIORITY, SqlStore, priority_of},
    },
    error::{ApiError, ErrorCode},
};

/// The dispatch actors of this node.
#[derive(Clone)]
pub struct Emergency {
    pub registry: Addr<EntityRegistry>,
    pub dispatcher: Addr<Dispatcher>,
}

/// Where the bus hands dispatch-relevant events to this node's dispatcher.
#[derive(Clone)]
pub struct DispatchLink {
    pub settled: actix::Recipient<OfferSettled>,
    pub cancel: actix::Recipient<CancelDispatch>,
    /// Told when a unit becomes free anywhere, so the queue is re-solved.
    pub supply: actix::Recipient<SupplyChanged>,
    /// Told of every offer made (on any node), so a unit holding one is not offered another.
    pub offered: actix::Recipient<OfferedElsewhere>,
}

impl Emergency {
    /// Starts the registry and the dispatcher on the current arbiter and attaches them to `bus`.
    pub fn start(db: Db, bus: &Bus, fleet: SharedFleet, settings: DispatchSettings) -> Self {
        let ports = Ports {
            store: Arc::new(SqlStore::new(db.clone())),
            bus: Arc::new(bus.clone()),
            clock: Arc::new(SystemClock),
        };
        let registry = EntityRegistry::new(ports.clone(), EntitySettings::default()).start();
        let search = fleet::FleetSearch::new(fleet.clone()).start();
        let link = FleetLink {
            find: search.clone().recipient(),
            set_status: search.clone().recipient(),
            offerable: search.clone().recipient(),
            on_duty: search.recipient(),
        };
        let preemptor = preempt::Preemptor::new(db.clone(), bus.clone(), fleet.clone()).start();
        let dispatcher = Dispatcher::new(ports, link, Some(registry.clone().recipient()), settings)
            .with_preemptor(preemptor.recipient())
            .start();
        bus.attach_dispatcher(DispatchLink {
            settled: dispatcher.clone().recipient(),
            cancel: dispatcher.clone().recipient(),
            supply: dispatcher.clone().recipient(),
            offered: dispatcher.clone().recipient(),
        });
        Self { registry, dispatcher }
    }

    /// Starts the offer cascade of a stored request.
    pub fn dispatch(&self, request: &RequestRow) {
        if let Some(dispatch) = dispatch_of(request) {
            self.dispatcher.do_send(dispatch);
        }
    }

    /// Starts the offer cascade of a packed order's delivery: the nearest available riders to the
    /// delivery address, one at a time, with the routine priority (below every emergency, longer offer
    /// timeout). The order stays packed whatever happens; with nobody found it is retried by the sweep.
    pub fn dispatch_order(&self, order: i64, lat: f64, lng: f64) {
        let Ok(point) = Position::new(lat, lng) else {
            tracing::error!(order, "order has an impossible delivery point");
            return;
        };
        self.dispatcher.do_send(Dispatch {
            job: order_key(order),
            kind: UnitKind::Rider,
            point,
            priority: DELIVERY_PRIORITY,
            required: Capabilities::NONE,
            fallback: None,
            called_at: Utc::now(),
        });
    }

    /// Applies one lifecycle event to a request through its entity actor (retried once on a conflict
    /// with another node's write).
    pub async fn execute(
        &self,
        request: i64,
        event: AmbulanceEvent,
        agent: Agent,
        command: String,
    ) -> Result<Executed, ApiError> {
        let id = CommandId::parse(command).map_err(|e| ApiError::field("command", e.to_string()))?;
        let command = Command {
            id,
            agent,
            event: EntityEvent::AmbulanceRequest(event),
            note: None,
        };
        let mut attempt = 0;
        loop {
            let sent = self
                .registry
                .send(Execute {
                    key: key(request),
                    command: command.clone(),
                })
                .await;
            match sent.unwrap_or(Err(EntityError::Unavailable(key(request)))) {
                Ok(done) => return Ok(done),
                Err(EntityError::Conflict(_) | EntityError::Crashed(_)) if attempt < 2 => attempt += 1,
                Err(error) => return Err(entity_error(error)),
            }
        }
    }
}

/// What the dispatcher needs of a stored request: where, how urgent, which kinds, since when.
pub fn dispatch_of(request: &RequestRow) -> Option<Dispatch> {
    let Ok(point) = Position::new(request.pickup_lat, request.pickup_lng) else {
        tracing::error!(request = request.id, "request has an impossible pickup point");
        return None;
    };
    let (kind, fallback) = kinds_for(request.category);
    Some(Dispatch {
        job: key(request.id),
        kind,
        point,
        priority: priority_of(request.category),
        required: Capabilities::NONE,
        fallback: Some(fallback),
        called_at: request.call_received_at.and_utc(),
    })
}

/// Which ambulance answers a category first, and which one next: life-threatening calls want an ALS
/// crew but take the nearest BLS crew rather than nobody; lower categories the other way round.
pub fn kinds_for(category: i32) -> (UnitKind, UnitKind) {
    if category <= 2 {
        (UnitKind::AmbulanceAls, UnitKind::AmbulanceBls)
    } else {
        (UnitKind::AmbulanceBls, UnitKind::AmbulanceAls)
    }
}

pub fn key(request: i64) -> EntityKey {
    EntityKey::AmbulanceRequest(AmbulanceRequestId(request))
}

pub fn order_key(order: i64) -> EntityKey {
    EntityKey::Order(OrderId(order))
}

/// The topics that carry a job's changes.
pub fn job_topics(job: EntityKey) -> Vec<String> {
    match job {
        EntityKey::AmbulanceRequest(id) => request_topics(id.0),
        other => vec![Topic::entity(other).as_str().to_owned()],
    }
}

pub fn entity_error(error: EntityError) -> ApiError {
    match error {
        EntityError::NotFound(_) => ApiError::not_found("ambulance request"),
        EntityError::Rejected(rejected) => ApiError::new(ErrorCode::InvalidTransition, rejected.to_string()),
        EntityError::Conflict(_) => ApiError::new(
            ErrorCode::Conflict,
            "the request changed meanwhile; reload and retry",
        ),
        EntityError::UnitBusy(_, unit) => ApiError::new(
            ErrorCode::UnitUnavailable,
            format!("unit {} holds another open offer", unit.0),
        ),
        other => ApiError::unavailable(anyhow::anyhow!("{other}")),
    }
}

pub fn emergency_error(error: EmergencyError) -> ApiError {
    match error {
        EmergencyError::UnitNotFound => ApiError::not_found("unit"),
        EmergencyError::RequestNotFound => ApiError::not_found("ambulance request"),
        EmergencyError::CallSignTaken => {
            ApiError::new(ErrorCode::CallSignTaken, "a unit with this call sign exists")
        }
        EmergencyError::NotParamedic(user) => ApiError::new(
            ErrorCode::CrewUnavailable,
            format!("user {user} is not a paramedic"),
        ),
        EmergencyError::CrewTaken(user) => ApiError::new(
            ErrorCode::CrewUnavailable,
            format!("user {user} already crews another unit"),
        ),
        EmergencyError::OfferNotFound => ApiError::not_found("offer of this job to your unit"),
        EmergencyError::OfferExpired => ApiError::new(
            ErrorCode::OfferExpired,
            "the offer lapsed; the request went on to another unit",
        ),
        EmergencyError::OfferClosed => ApiError::new(
            ErrorCode::OfferTaken,
            "the offer was already answered, withdrawn, or the request was given to another unit",
        ),
        EmergencyError::UnitUnavailable => {
            ApiError::new(ErrorCode::UnitUnavailable, "the unit is not available")
        }
        EmergencyError::RequestState(status) => ApiError::new(
            ErrorCode::InvalidTransition,
            format!("the request cannot change now (it is {status})"),
        ),
        EmergencyError::Db(error) => error.into(),
    }
}

/// The topics that carry a request's changes: its own, and the dispatchers'.
pub fn request_topics(request: i64) -> Vec<String> {
    vec![format!("ambulance_request:{request}"), "dispatch".to_owned()]
}

/// Announces a settled assignment (accepted offer or manual assignment): the request's new state, the
/// assignment itself (which also tells the owning node's dispatcher), and the unit's new status.
pub async fn announce_assignment(
    bus: &Bus,
    settled: &RequestRow,
    unit: i64,
    from: &str,
    event: &str,
    agent: Agent,
) {
    let request = settled.id;
    let now = Utc::now();
    let changed = DomainEvent::StateChanged {
        entity: key(request),
        from: from.to_owned(),
        to: "assigned".to_owned(),
        event: event.to_owned(),
        version: u64::try_from(settled.version).unwrap_or(0),
        at: now,
        agent,
    };
    bus.publish(&request_topics(request), changed.to_json()).await;
    let assigned = DomainEvent::UnitAssigned {
        request: key(request),
        unit: UnitId(unit),
    };
    let mut topics = request_topics(request);
    topics.push(Topic::unit(UnitId(unit)).as_str().to_owned());
    bus.publish(&topics, assigned.to_json()).await;
    announce_unit_status(bus, unit, "assigned").await;
}

/// Tells every node's sessions and fleet index a unit's new status.
pub async fn announce_unit_status(bus: &Bus, unit: i64, status: &str) {
    let event = Event::UnitStatus {
        unit_id: unit,
        status: status.to_owned(),
        at: Utc::now(),
    };
    bus.publish_event(&[format!("unit:{unit}"), "dispatch".to_owned()], &event)
        .await;
}

/// The crew of `unit` answers the open offer of `job` (an ambulance request or an order's delivery),
/// settled here by conditional writes whatever node runs the job's cascade; the announcement tells that
/// node's dispatcher. An expired, taken or unknown offer is refused and nothing changes.
pub async fn answer_offer(
    state: &crate::state::AppState,
    unit: i64,
    user: i64,
    job: EntityKey,
    accepted: bool,
    reason: Option<&str>,
) -> Result<Option<Settled>, ApiError> {
    let mut conn = state.db.write().await?;
    if accepted {
        let settled = emergency::accept_offer(&mut conn, job, unit, user).await;
        drop(conn);
        match settled {
            Ok(settled) => {
                let agent = Agent::Unit(UnitId(unit));
                match &settled.job {
                    SettledJob::AmbulanceRequest(request) => {
                        announce_assignment(&state.bus, request, unit, "offered", "assign", agent).await;
                    }
                    SettledJob::Order(order) => {
                        announce_rider(&state.bus, order.id, &settled.unit).await;
                    }
                }
                Ok(Some(settled))
            }
            Err(EmergencyError::UnitUnavailable) => {
                // The unit went to another job first: the cascade moves on to the next candidate.
                let lost = DomainEvent::ClaimLost {
                    request: job,
                    unit: UnitId(unit),
                };
                state.bus.publish(&job_topics(job), lost.to_json()).await;
                Err(emergency_error(EmergencyError::UnitUnavailable))
            }
            Err(error) => Err(emergency_error(error)),
        }
    } else {
        emergency::decline_offer(&mut conn, job, unit, user, reason)
            .await
            .map_err(emergency_error)?;
        drop(conn);
        let declined = DomainEvent::OfferDeclined {
            request: job,
            unit: UnitId(unit),
        };
        let mut topics = job_topics(job);
        topics.push(format!("unit:{unit}"));
        state.bus.publish(&topics, declined.to_json()).await;
        Ok(None)
    }
}

/// Announces a rider's accepted delivery: `unit_assigned` (which also tells the owning node's
/// dispatcher) on the order and the unit, `rider_assigned` for the customer, and the unit's status.
pub async fn announce_rider(bus: &Bus, order: i64, unit: &emergency::UnitRow) {
    let assigned = DomainEvent::UnitAssigned {
        request: order_key(order),
        unit: UnitId(unit.id),
    };
    bus.publish(
        &[format!("order:{order}"), format!("unit:{}", unit.id)],
        assigned.to_json(),
    )
    .await;
    let rider = Event::RiderAssigned {
        order_id: order,
        unit_id: unit.id,
        call_sign: unit.call_sign.clone(),
        at: Utc::now(),
    };
    bus.publish_event(&[format!("order:{order}")], &rider).await;
    announce_unit_status(bus, unit.id, "assigned").await;
}

/// Offers again every packed order that has no rider, no open offer and that no live node dispatches
/// (its node's lease lapsed, or it was never leased and has not changed for `delivery.retry_after_secs`).
/// A node adopts an order by a conditional write on its lease, so exactly one node restarts each one.
pub async fn retry_deliveries(state: &crate::state::AppState) {
    let before = crate::db::now() - state.settings.delivery.retry_after();
    let awaiting = async {
        let mut conn = state.db.read().await?;
        Ok::<_, crate::db::DbError>(crate::db::orders::awaiting_rider(&mut conn, before, 200).await?)
    };
    let candidates = match awaiting.await {
        Ok(rows) => rows,
        Err(error) => {
            tracing::warn!(error = %error, "delivery retry skipped");
            return;
        }
    };
    for (order, lat, lng) in candidates {
        let until = crate::db::now() + lease::ROUTINE_LEASE;
        let adopted = match state.db.write().await {
            Ok(mut conn) => {
                crate::db::orders::adopt_for_delivery(&mut conn, order, before, state.bus.node_id(), until)
                    .await
            }
            Err(error) => {
                tracing::warn!(error = %error, "delivery not retried");
                continue;
            }
        };
        match adopted {
            Ok(true) if !lease::running(state, order_key(order)).await => {
                tracing::info!(order, "offering a packed order to the riders again");
                state.emergency.dispatch_order(order, lat, lng);
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(error = %error, order, "delivery not retried"),
        }
    }
}
