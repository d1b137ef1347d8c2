//! Response clocks: each request's Ambulance Response Programme target, its predicted response time from
//! the live ETA, and the monitor that warns dispatchers (`breach_predicted`) the moment a breach becomes
//! likely — once per request across all nodes (the timeline's unique command id decides who announces).

use std::{collections::HashSet, time::Duration};

use chrono::{NaiveDateTime, Utc};
use onemedi_actors::{
    fleet::{FleetIndex, SearchFilter, UnitKind, eta_for},
    ids::UnitId,
    position::Position,
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    bus::{Bus, SharedFleet, lock_fleet},
    db::{Db, emergency},
};

/// How often each node checks the open requests' clocks.
pub const BREACH_SWEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Radius within which an unassigned request looks for the unit that would come, metres.
const ETA_SEARCH_RADIUS_M: f64 = 60_000.0;

/// ARP response-time standards (NHS England, 2017): category 1 mean 7 min and 90th centile 15 min;
/// category 2 mean 18 min, 90th 40 min; category 3 90th centile 2 h; category 4 90th centile 3 h.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct ArpTarget {
    /// The category's mean standard, seconds (categories 1 and 2 only).
    pub mean_s: Option<u64>,
    /// The 90th-centile standard, seconds: a single response slower than this is a breach.
    pub p90_s: u64,
}

pub fn target(category: i32) -> ArpTarget {
    match category {
        1 => ArpTarget {
            mean_s: Some(7 * 60),
            p90_s: 15 * 60,
        },
        2 => ArpTarget {
            mean_s: Some(18 * 60),
            p90_s: 40 * 60,
        },
        3 => ArpTarget {
            mean_s: None,
            p90_s: 120 * 60,
        },
        _ => ArpTarget {
            mean_s: None,
            p90_s: 180 * 60,
        },
    }
}

/// Where a request stands against its target.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResponseClock {
    pub category: i32,
    pub target: ArpTarget,
    /// Since the call was received (until the crew reached the patient), seconds.
    pub elapsed_s: f64,
    /// The assigned unit's (or else the nearest available unit's) estimated time to the patient.
    pub eta_s: Option<f64>,
    /// `elapsed + eta`; the achieved response time once the crew is on scene.
    pub predicted_s: Option<f64>,
    /// True when the prediction exceeds the 90th-centile target, or nobody is free to go.
    pub breach_predicted: bool,
    /// The achieved response time met the target (only once on scene).
    pub met: Option<bool>,
}

fn seconds_between(from: NaiveDateTime, to: NaiveDateTime) -> f64 {
    (to - from).num_milliseconds().max(0) as f64 / 1000.0
}

/// The ETA of `unit` (live position from the index, else its last stored one) to the pickup point.
fn unit_eta(index: &FleetIndex, unit: i64, stored: Option<(f64, f64)>, pickup: Position) -> Option<f64> {
    let (kind, from) = match index.get(UnitId(unit)) {
        Some(live) => (live.kind, live.position),
        None => {
            let (lat, lng) = stored?;
            (UnitKind::AmbulanceAls, Position::new(lat, lng).ok()?)
        }
    };
    Some(eta_for(kind, from.distance_m(pickup)).as_secs_f64())
}

/// The ETA of the nearest available ambulance of either kind.
fn nearest_eta(index: &FleetIndex, pickup: Position) -> Option<f64> {
    let now = Utc::now();
    [UnitKind::AmbulanceAls, UnitKind::AmbulanceBls]
        .into_iter()
        .filter_map(|kind| {
            index
                .nearest_available(
                    kind,
                    pickup,
                    1,
                    ETA_SEARCH_RADIUS_M,
                    &SearchFilter::default(),
                    now,
                )
                .first()
                .map(|n| n.eta.as_secs_f64())
        })
        .reduce(f64::min)
}

/// The clock of one request. `unit_position` is the assigned unit's last stored position.
pub fn clock(
    request: &emergency::RequestRow,
    index: &FleetIndex,
    unit_position: Option<(f64, f64)>,
    now: NaiveDateTime,
) -> ResponseClock {
    let target = target(request.category);
    if let Some(on_scene) = request.on_scene_at {
        let achieved = seconds_between(request.call_received_at, on_scene);
        return ResponseClock {
            category: request.category,
            target,
            elapsed_s: achieved,
            eta_s: Some(0.0),
            predicted_s: Some(achieved),
            breach_predicted: achieved > target.p90_s as f64,
            met: Some(achieved <= target.p90_s as f64),
        };
    }
    let elapsed = seconds_between(request.call_received_at, now);
    let pickup = Position::new(request.pickup_lat, request.pickup_lng).ok();
    let working = emergency::ACTIVE_STATUSES.contains(&request.status.as_str());
    let eta = pickup.and_then(|pickup| match request.assigned_unit_id {
        Some(unit) if working => unit_eta(index, unit, unit_position, pickup),
        _ => nearest_eta(index, pickup),
    });
    let predicted = eta.map(|eta| elapsed + eta);
    let open = !emergency::FINAL_STATUSES.contains(&request.status.as_str());
    ResponseClock {
        category: request.category,
        target,
        elapsed_s: elapsed,
        eta_s: eta,
        predicted_s: predicted,
        breach_predicted: open && predicted.is_none_or(|p| p > target.p90_s as f64),
        met: None,
    }
}

/// Checks every open request's clock every [`BREACH_SWEEP_INTERVAL`] and announces each predicted
/// breach once. Runs until the task is aborted.
pub async fn monitor(db: Db, fleet: SharedFleet, bus: Bus) {
    let mut announced: HashSet<i64> = HashSet::new();
    let mut tick = tokio::time::interval(BREACH_SWEEP_INTERVAL);
    loop {
        tick.tick().await;
        if let Err(error) = sweep(&db, &fleet, &bus, &mut announced).await {
            tracing::warn!(error = %error, "response clock sweep failed");
        }
    }
}

async fn sweep(db: &Db, fleet: &SharedFleet, bus: &Bus, announced: &mut HashSet<i64>) -> anyhow::Result<()> {
    let mut conn = db.read().await?;
    let open = emergency::open_requests(&mut conn).await?;
    drop(conn);
    announced.retain(|id| open.iter().any(|r| r.id == *id));
    let now = crate::db::now();
    let ceiling = eta_for(UnitKind::AmbulanceBls, ETA_SEARCH_RADIUS_M).as_secs_f64();
    let due: Vec<_> = open
        .iter()
        .filter(|r| r.on_scene_at.is_none() && !announced.contains(&r.id))
        // Nobody farther than the search radius is considered, so a request whose elapsed time plus the
        // longest ETA is still inside its target cannot be predicted to breach yet: skip the search.
        .filter(|r| seconds_between(r.call_received_at, now) + ceiling > target(r.category).p90_s as f64)
        // The index lock is taken per request: location pings keep flowing between two clocks.
        .map(|r| (r, clock(r, &lock_fleet(fleet), None, now)))
        .filter(|(_, clock)| clock.breach_predicted)
        .collect();
    for (request, clock) in due {
        let reason = match clock.predicted_s {
            Some(p) => format!(
                "predicted response {:.0} s exceeds the category {} target of {} s",
                p, request.category, clock.target.p90_s
            ),
            None => format!(
                "no ambulance is free to reach this category {} call",
                request.category
            ),
        };
        let mut conn = db.write().await?;
        let first = emergency::record_breach_warning(&mut conn, request, &reason).await?;
        drop(conn);
        announced.insert(request.id);
        if first {
            let event = crate::bus::Event::BreachPredicted {
                request_id: request.id,
                category: request.category,
                elapsed_s: clock.elapsed_s,
                eta_s: clock.eta_s,
                predicted_s: clock.predicted_s,
                target_s: clock.target.p90_s,
                reason,
                at: Utc::now(),
            };
            bus.publish_event(&super::request_topics(request.id), &event)
                .await;
        }
    }
    Ok(())
}
