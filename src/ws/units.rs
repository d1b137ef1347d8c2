//! Commands only a unit's crew may send: location pings, availability, and answers to offers. A
//! rider's pings also go to the `order:{id}` topic of the order they carry, with its ETA; an ambulance
//! crew's go to the `ambulance_request:{id}` topic of the request they work, for the requester.
//!
//! A session keeps no copy of its unit's status: the status a ping carries is the one this node last
//! announced (see `bus`), because a job's steps and its end are made elsewhere (over REST, by the
//! dispatcher, on another node) and a copy here would go stale.

use std::time::{Duration, Instant};

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use onemedi_actors::{
    fleet::{DEFAULT_RESOLUTION, UnitKind, eta_for},
    position::Position,
};

use super::{
    positions::PendingPosition,
    protocol::{LocationReport, Refusal},
    session::Session,
};
use crate::{
    bus::{Event, UnitLocation, location_event},
    db::{
        self,
        schema::{orders, unit_crew, units},
    },
    on_conn,
};

/// Fastest plausible ground speed, m/s (~300 km/h): faster reports are refused as bad fixes.
const MAX_SPEED_MPS: f64 = 85.0;

/// Statuses a crew may set itself; the others (`assigned`, `en_route`, …) follow a job.
const CREW_STATUSES: [&str; 3] = ["available", "busy", "off_duty"];

/// How long a rider's session trusts its last look at which order the rider carries. A delivery
/// accepted on this session is known at once; one ended elsewhere (the delivery confirmed over REST) is
/// noticed within this time, so at most this long of pings still reaches the delivered order's topic.
const RIDER_JOB_TTL: Duration = Duration::from_secs(5);

/// How long an ambulance crew's session trusts its last look at the request its unit works, for the
/// same reason: an assignment or a closed job is noticed within this time.
const AMBULANCE_JOB_TTL: Duration = Duration::from_secs(5);

/// The unit a user crews, as loaded at its first unit command.
#[derive(Debug, Clone)]
pub struct CrewUnit {
    pub id: i64,
    pub kind: UnitKind,
    pub capabilities: u32,
    /// A rider's current delivery and when it was last read (`None` = never read).
    pub delivery: Option<(Instant, Option<Delivery>)>,
    /// An ambulance's current request and when it was last read (`None` = never read).
    pub request: Option<(Instant, Option<i64>)>,
}

/// The order a rider carries: where its pings go and what the ETA is measured to.
#[derive(Debug, Clone, Copy)]
pub struct Delivery {
    pub order: i64,
    pub to: Position,
}

/// The session user's active unit (the lowest id if they crew several), or `forbidden`.
async fn crew_unit(session: &mut Session) -> Result<CrewUnit, Refusal> {
    if session.crew.is_none() {
        let user = session.user()?.0;
        let mut conn = session.state.db.read().await?;
        let row = on_conn!(&mut conn, c => unit_crew::table
            .inner_join(units::table)
            .filter(unit_crew::user_id.eq(user))
            .filter(units::is_active.eq(true))
            .order(units::id.asc())
            .select((units::id, units::kind, units::capabilities))
            .first::<(i64, String, i32)>(c)
            .await)
        .optional()?;
        session.crew = Some(row.and_then(|(id, kind, capabilities)| {
            Some(CrewUnit {
                id,
                kind: db::emergency::unit_kind(&kind)?,
                capabilities: u32::try_from(capabilities).unwrap_or(0),
                delivery: None,
                request: None,
            })
        }));
    }
    session
        .crew
        .clone()
        .flatten()
        .ok_or_else(|| Refusal::forbidden("only a unit's crew may send this"))
}

fn unit_topics(unit: i64) -> [String; 2] {
    [format!("unit:{unit}"), "dispatch".to_owned()]
}

/// A location ping: checked, published to every node's sessions and fleet index, and buffered for the
/// next batched write of positions.
pub(super) async fn location(session: &mut Session, report: LocationReport) -> Result<(), Refusal> {
    let unit = crew_unit(session).await?;
    let position =
        Position::new(report.lat, report.lng).map_err(|e| Refusal::invalid(format!("lat/lng: {e}")))?;
    let heading = report.heading.unwrap_or(0.0);
    let speed = report.speed.unwrap_or(0.0);
    if !heading.is_finite() {
        return Err(Refusal::invalid("heading must be a number of degrees"));
    }
    if !(speed.is_finite() && (0.0..=MAX_SPEED_MPS).contains(&speed)) {
        return Err(Refusal::invalid(format!(
            "speed must be between 0 and {MAX_SPEED_MPS} m/s"
        )));
    }
    if report.accuracy.is_some_and(|a| !(a.is_finite() && a >= 0.0)) {
        return Err(Refusal::invalid(
            "accuracy must be a non-negative number of metres",
        ));
    }
    let heading = heading.rem_euclid(360.0);
    let status = announced_status(session, unit.id).await?;
    let event = location_event(UnitLocation {
        unit_id: unit.id,
        kind: unit.kind,
        lat: position.lat(),
        lng: position.lng(),
        heading,
        speed,
        accuracy: report.accuracy,
        ts: report.ts,
        status,
        capabilities: unit.capabilities,
        at: Utc::now(),
    });
    let seen_at = match &event {
        Event::UnitLocation(ping) => ping.at,
        _ => Utc::now(),
    };
    let mut topics = unit_topics(unit.id).to_vec();
    if matches!(unit.kind, UnitKind::AmbulanceAls | UnitKind::AmbulanceBls)
        && let Some(request) = current_request(session, &unit).await?
    {
        topics.push(format!("ambulance_request:{request}"));
    }
    session.state.bus.publish_event(&topics, &event).await;
    let h3_cell = h3o::LatLng::new(position.lat(), position.lng())
        .ok()
        .and_then(|point| i64::try_from(u64::from(point.to_cell(DEFAULT_RESOLUTION))).ok());
    if unit.kind == UnitKind::Rider
        && let Some(delivery) = current_delivery(session, &unit).await?
    {
        let (heading, speed, at) = match &event {
            Event::UnitLocation(ping) => (ping.heading, ping.speed, ping.at),
            _ => (heading, speed, seen_at),
        };
        let rider = Event::RiderLocation {
            order_id: delivery.order,
            unit_id: unit.id,
            lat: position.lat(),
            lng: position.lng(),
            heading,
            speed,
            eta_s: eta_for(UnitKind::Rider, position.distance_m(delivery.to)).as_secs_f64(),
            at,
        };
        session
            .state
            .bus
            .publish_event(&[format!("order:{}", delivery.order)], &rider)
            .await;
    }
    session.state.positions.record(
        unit.id,
        PendingPosition {
            lat: position.lat(),
            lng: position.lng(),
            heading,
            speed,
            h3_cell,
            seen_at,
        },
    );
    Ok(())
}

/// The status of `unit` as this node last announced it, or as stored while it has heard of no change
/// of the unit since it started. The bus puts its latest one into the ping again as it publishes it, in
/// case a change is announced while this ping is on its way.
async fn announced_status(session: &Session, unit: i64) -> Result<String, Refusal> {
    if let Some(status) = session.state.bus.unit_status(unit) {
        return Ok(status);
    }
    let mut conn = session.state.db.read().await?;
    let stored = on_conn!(&mut conn, c => units::table
        .find(unit)
        .select(units::status)
        .first::<String>(c)
        .await)?;
    drop(conn);
    Ok(session.state.bus.learn_unit_status(unit, &stored))
}

/// The order the rider of `unit` is carrying (assigned, picked up or out for delivery), re-read at most
/// every [`RIDER_JOB_TTL`].
async fn current_delivery(session: &mut Session, unit: &CrewUnit) -> Result<Option<Delivery>, Refusal> {
    if let Some((read_at, delivery)) = unit.delivery
        && read_at.elapsed() < RIDER_JOB_TTL
    {
        return Ok(delivery);
    }
    let mut conn = session.state.db.read().await?;
    let row = on_conn!(&mut conn, c => orders::table
        .filter(orders::rider_unit_id.eq(unit.id))
        .filter(orders::status.eq_any(["packed", "shipped", "out_for_delivery"]))
        .order(orders::id.asc())
        .select((orders::id, orders::ship_lat, orders::ship_lng))
        .first::<(i64, f64, f64)>(c)
        .await)
    .optional()?;
    drop(conn);
    let delivery = row.and_then(|(order, lat, lng)| {
        Some(Delivery {
            order,
            to: Position::new(lat, lng).ok()?,
        })
    });
    if let Some(Some(crew)) = &mut session.crew {
        crew.delivery = Some((Instant::now(), delivery));
    }
    Ok(delivery)
}

/// The ambulance request the unit works, re-read at most every [`AMBULANCE_JOB_TTL`].
async fn current_request(session: &mut Session, unit: &CrewUnit) -> Result<Option<i64>, Refusal> {
    if let Some((read_at, request)) = unit.request
        && read_at.elapsed() < AMBULANCE_JOB_TTL
    {
        return Ok(request);
    }
    let mut conn = session.state.db.read().await?;
    let request = on_conn!(&mut conn, c => units::table
        .find(unit.id)
        .filter(units::request_kind.eq(db::emergency::ENTITY))
        .select(units::request_id)
        .first::<Option<i64>>(c)
        .await)
    .optional()?
    .flatten();
    drop(conn);
    if let Some(Some(crew)) = &mut session.crew {
        crew.request = Some((Instant::now(), request));
    }
    Ok(request)
}

/// The crew sets its availability; refused while the unit is on a job (the job moves it).
pub(super) async fn status(session: &mut Session, status: &str) -> Result<(), Refusal> {
    let unit = crew_unit(session).await?;
    if !CREW_STATUSES.contains(&status) {
        return Err(Refusal::invalid(format!(
            "status must be one of {}",
            CREW_STATUSES.join(", ")
        )));
    }
    let now = db::now();
    let mut conn = session.state.db.write().await?;
    let changed = on_conn!(&mut conn, c => diesel::update(
            units::table
                .find(unit.id)
                .filter(units::status.eq_any(["available", "busy", "off_duty", "unavailable"])),
        )
        .set((
            units::status.eq(status),
            units::version.eq(units::version + 1),
            units::updated_at.eq(now),
        ))
        .execute(c)
        .await)?;
    drop(conn);
    if changed == 0 {
        return Err(Refusal::invalid(
            "the unit is on a job; its status follows the job",
        ));
    }
    let event = Event::UnitStatus {
        unit_id: unit.id,
        status: status.to_owned(),
        at: Utc::now(),
    };
    session
        .state
        .bus
        .publish_event(&unit_topics(unit.id), &event)
        .await;
    Ok(())
}

/// The crew accepts or declines an open offer; settled by conditional writes on this node whatever
/// node runs the job's cascade (see `dispatch::answer_offer`, and `dispatch::lab::answer_offer` for a
/// phlebotomist's collection). The job's kind follows the unit's: a rider answers for an order
/// (`request_id` is the order id), a phlebotomist for a lab collection, an ambulance crew for an
/// ambulance request; an explicit `kind` must agree.
pub(super) async fn answer(
    session: &mut Session,
    request_id: i64,
    kind: Option<&str>,
    accepted: bool,
    reason: Option<String>,
) -> Result<(), Refusal> {
    let unit = crew_unit(session).await?;
    let reason = reason.map(|r| r.trim().chars().take(200).collect::<String>());
    let user = session.user()?.0;
    let expected = match unit.kind {
        UnitKind::Rider => "order",
        UnitKind::Phlebotomist => "lab_collection",
        UnitKind::AmbulanceAls | UnitKind::AmbulanceBls => "ambulance_request",
    };
    if kind.is_some_and(|kind| kind != expected) {
        return Err(Refusal::new(
            crate::error::ErrorCode::NotFound,
            "no offer of this job to your unit",
        ));
    }
    if unit.kind == UnitKind::Phlebotomist {
        return crate::dispatch::lab::answer_offer(
            &session.state,
            unit.id,
            user,
            request_id,
            accepted,
            reason.as_deref(),
        )
        .await
        .map_err(|error| Refusal::new(error.code, error.message.clone()));
    }
    let job = if unit.kind == UnitKind::Rider {
        crate::dispatch::order_key(request_id)
    } else {
        crate::dispatch::key(request_id)
    };
    let settled =
        crate::dispatch::answer_offer(&session.state, unit.id, user, job, accepted, reason.as_deref())
            .await
            .map_err(|error| Refusal::new(error.code, error.message.clone()))?;
    if let Some(settled) = settled
        && let Some(Some(crew)) = &mut session.crew
    {
        match &settled.job {
            db::emergency::SettledJob::Order(order) => {
                let delivery = Position::new(order.ship_lat, order.ship_lng)
                    .ok()
                    .map(|to| Delivery { order: order.id, to });
                crew.delivery = Some((Instant::now(), delivery));
            }
            db::emergency::SettledJob::AmbulanceRequest(request) => {
                crew.request = Some((Instant::now(), Some(request.id)));
            }
        }
    }
    Ok(())
}
