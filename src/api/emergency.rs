//! `/emergency`: ambulance units and crews, ambulance requests (create, read, cancel, assign, the crew's
//! answers and progress), the dispatcher board and response-time statistics, and the console's own
//! tools (notes on a call, a unit's availability set by hand with an audited reason, the units to
//! recommend for a call). Anyone who may not see a request gets 404, as if it did not exist.

use std::collections::HashMap;

use actix_web::{HttpResponse, get, post, put, web};
use chrono::{DateTime, NaiveDateTime, Utc};
use onemedi_actors::{
    fleet::{UnitKind, eta_for},
    ids::{UnitId, UserId as ActorUserId},
    machines::{Agent, AmbulanceEvent},
    position::Position,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Page, PageQuery, Problems, ReasonBody, audit_entry};
use crate::{
    auth::AuthUser,
    bus::lock_fleet,
    db::{
        console::{self, Override},
        emergency::{self, CrewMember, NewRequest, NewUnit, RequestRow, TimelineEntry, UnitRow},
    },
    dispatch::{self, breach},
    domain::{PersonName, Phone, Role},
    error::{ApiError, ErrorBody, ErrorCode},
    state::AppState,
};

/// Longest free text (address, condition, notes, reasons).
const MAX_TEXT_CHARS: usize = 500;
/// Most crew members on one unit.
const MAX_CREW: usize = 6;
/// Hospitals considered for a destination: within this many degrees (≈ 33 km) of the patient.
const DESTINATION_BOX_DEG: f64 = 0.3;
/// Units recommended to a dispatcher for a call.
const RECOMMENDED_UNITS: usize = 5;
/// How far a dispatcher's recommendation looks, metres: wider than the engine's own search, since a
/// dispatcher may want to see who is nearest even when nobody is close.
const RECOMMEND_RADIUS_M: f64 = 60_000.0;

fn is_dispatcher(auth: &AuthUser) -> bool {
    matches!(auth.role, Role::Dispatcher | Role::Admin)
}

/// Whether calls of `category` may take a unit from a less urgent call under the configured policy.
fn may_preempt(state: &AppState, category: i32) -> bool {
    use crate::config::PreemptionPolicy;
    match state.settings.dispatch.preemption {
        PreemptionPolicy::Off => false,
        PreemptionPolicy::C1 => category == 1,
        PreemptionPolicy::C1C2 => category <= 2,
    }
}

fn require_dispatcher(auth: &AuthUser) -> Result<(), ApiError> {
    if is_dispatcher(auth) {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
pub struct LatLngBody {
    pub lat: f64,
    pub lng: f64,
}

fn check_point(p: &mut Problems, field: &str, point: LatLngBody) -> Option<Position> {
    p.check(field, Position::new(point.lat, point.lng))
}

// ---------------------------------------------------------------------------------------------- units

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CrewBody {
    pub user_id: i64,
    #[serde(default)]
    pub lead: bool,
}

/// A unit to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUnit {
    /// Unique, 2–32 characters of A–Z, 0–9 and `-`.
    pub call_sign: String,
    /// `als` (advanced life support) or `bls` (basic life support).
    pub kind: String,
    /// Home station.
    pub home: LatLngBody,
    pub station_name: Option<String>,
    pub vehicle_number: Option<String>,
    /// Equipment: any of `defibrillator`, `ventilator`, `neonatal`, `bariatric`.
    #[serde(default)]
    pub equipment: Vec<String>,
    /// Crew members (users with the role `paramedic`), at most 6.
    #[serde(default)]
    pub crew: Vec<CrewBody>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PositionView {
    pub lat: f64,
    pub lng: f64,
    pub heading: Option<f64>,
    pub speed_mps: Option<f64>,
    pub last_seen_at: DateTime<Utc>,
    /// Seconds since the unit last reported; a dispatcher distrusts a stale position.
    pub last_seen_age_s: f64,
    /// `live` from this node's fleet index (fed by every node's pings), `stored` from the database.
    pub source: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct JobRef {
    pub kind: String,
    pub id: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnitView {
    pub id: i64,
    pub call_sign: String,
    pub kind: String,
    pub status: String,
    pub equipment: Vec<&'static str>,
    pub station_name: Option<String>,
    pub vehicle_number: Option<String>,
    pub home: LatLngBody,
    pub position: Option<PositionView>,
    pub job: Option<JobRef>,
    pub crew: Vec<CrewMember>,
}

const EQUIPMENT: [(&str, u32); 4] = [
    ("defibrillator", 1),
    ("ventilator", 1 << 1),
    ("neonatal", 1 << 2),
    ("bariatric", 1 << 3),
];

fn equipment_names(bits: i32) -> Vec<&'static str> {
    let bits = u32::try_from(bits).unwrap_or(0);
    EQUIPMENT
        .iter()
        .filter(|(_, bit)| bits & bit != 0)
        .map(|(name, _)| *name)
        .collect()
}

pub(crate) fn age_s(at: DateTime<Utc>) -> f64 {
    ((Utc::now() - at).num_milliseconds().max(0) as f64) / 1000.0
}

/// The unit's position: live from the fleet index when this node has it, else the stored one.
pub(crate) fn position_of(state: &AppState, row: &UnitRow) -> Option<PositionView> {
    if let Some(live) = lock_fleet(&state.fleet).get(UnitId(row.id)) {
        return Some(PositionView {
            lat: live.position.lat(),
            lng: live.position.lng(),
            heading: Some(f64::from(live.heading_deg)),
            speed_mps: Some(f64::from(live.speed_mps)),
            last_seen_at: live.last_seen,
            last_seen_age_s: age_s(live.last_seen),
            source: "live",
        });
    }
    let seen = row.last_seen_at?.and_utc();
    Some(PositionView {
        lat: row.last_lat?,
        lng: row.last_lng?,
        heading: None,
        speed_mps: None,
        last_seen_at: seen,
        last_seen_age_s: age_s(seen),
        source: "stored",
    })
}

fn unit_view(state: &AppState, row: UnitRow, crew: Vec<CrewMember>) -> UnitView {
    let position = position_of(state, &row);
    UnitView {
        id: row.id,
        equipment: equipment_names(row.capabilities),
        home: LatLngBody {
            lat: row.home_lat,
            lng: row.home_lng,
        },
        position,
        job: row
            .request_kind
            .zip(row.request_id)
            .map(|(kind, id)| JobRef { kind, id }),
        call_sign: row.call_sign,
        kind: row.kind,
        status: row.status,
        station_name: row.station_name,
        vehicle_number: row.vehicle_number,
        crew,
    }
}

async fn unit_views(state: &AppState, rows: Vec<UnitRow>) -> Result<Vec<UnitView>, ApiError> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut conn = state.db.read().await?;
    let mut crews: HashMap<i64, Vec<CrewMember>> = HashMap::new();
    for (unit, member) in emergency::crews(&mut conn, &ids).await? {
        crews.entry(unit).or_default().push(member);
    }
    drop(conn);
    Ok(rows
        .into_iter()
        .map(|row| {
            let crew = crews.remove(&row.id).unwrap_or_default();
            unit_view(state, row, crew)
        })
        .collect())
}

/// Creates an ambulance with its crew (dispatchers and administrators).
#[utoipa::path(
    tag = "emergency",
    request_body = CreateUnit,
    responses(
        (status = 201, body = UnitView),
        (status = 400, description = "validation_failed", body = ErrorBody),
        (status = 403, description = "forbidden", body = ErrorBody),
        (status = 409, description = "call_sign_taken", body = ErrorBody),
        (status = 422, description = "crew_unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/emergency/units")]
pub async fn create_unit(
    state: web::Data<AppState>,
    auth: AuthUser,
    body: web::Json<CreateUnit>,
) -> Result<HttpResponse, ApiError> {
    require_dispatcher(&auth)?;
    let mut p = Problems::default();
    let call_sign = body.call_sign.trim().to_uppercase();
    if !(2..=32).contains(&call_sign.len())
        || !call_sign
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
    {
        p.add("call_sign", "2 to 32 characters of A-Z, 0-9 and -");
    }
    let kind = match body.kind.as_str() {
        "als" => Some("als"),
        "bls" => Some("bls"),
        _ => {
            p.add("kind", "must be als or bls");
            None
        }
    };
    let home = check_point(&mut p, "home", body.home);
    let station_name = body
        .station_name
        .as_deref()
        .and_then(|s| p.text("station_name", s, 100));
    let vehicle_number = body
        .vehicle_number
        .as_deref()
        .and_then(|s| p.text("vehicle_number", s, 20));
    let mut capabilities = 0u32;
    for name in &body.equipment {
        match EQUIPMENT.iter().find(|(known, _)| known == name) {
            Some((_, bit)) => capabilities |= bit,
            None => p.add("equipment", format!("unknown equipment {name:?}")),
        }
    }
    if body.crew.len() > MAX_CREW {
        p.add("crew", format!("at most {MAX_CREW} members"));
    }
    let mut seen = std::collections::HashSet::new();
    if body.crew.iter().any(|m| !seen.insert(m.user_id)) {
        p.add("crew", "a member is listed twice");
    }
    p.finish()?;
    let (Some(kind), Some(home)) = (kind, home) else {
        return Err(ApiError::internal(anyhow::anyhow!("validated fields missing")));
    };
    let unit = NewUnit {
        call_sign,
        kind,
        capabilities: i32::try_from(capabilities).unwrap_or(0),
        vehicle_number,
        station_name,
        home_lat: home.lat(),
        home_lng: home.lng(),
        crew: body.crew.iter().map(|m| (m.user_id, m.lead)).collect(),
    };
    let mut conn = state.db.write().await?;
    let row = emergency::create_unit(&mut conn, &unit)
        .await
        .map_err(dispatch::emergency_error)?;
    drop(conn);
    let view = unit_views(&state, vec![row]).await?.pop();
    Ok(HttpResponse::Created().json(view))
}

/// Every ambulance (dispatchers and administrators).
#[utoipa::path(
    tag = "emergency",
    params(PageQuery),
    responses((status = 200, body = Page<UnitView>), (status = 403, description = "forbidden", body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/emergency/units")]
pub async fn list_units(
    state: web::Data<AppState>,
    auth: AuthUser,
    page: web::Query<PageQuery>,
) -> Result<web::Json<Page<UnitView>>, ApiError> {
    require_dispatcher(&auth)?;
    let page = page.validate()?;
    let mut conn = state.db.read().await?;
    let (rows, total) = emergency::ambulances(&mut conn, page.limit(), page.offset()).await?;
    drop(conn);
    Ok(web::Json(page.wrap(unit_views(&state, rows).await?, total)))
}

/// A unit, for dispatchers and its own crew.
#[utoipa::path(
    tag = "emergency",
    params(("id" = i64, Path, description = "Unit id")),
    responses((status = 200, body = UnitView), (status = 404, description = "not_found", body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/emergency/units/{id}")]
pub async fn get_unit(
    state: web::Data<AppState>,
    auth: AuthUser,
    id: web::Path<i64>,
) -> Result<web::Json<UnitView>, ApiError> {
    let row = visible_unit(&state, &auth, *id).await?;
    let view = unit_views(&state, vec![row]).await?.pop();
    view.map(web::Json).ok_or_else(|| ApiError::not_found("unit"))
}

/// The unit the caller crews (an ambulance, a rider's or a phlebotomist's): what the field view follows,
/// with the offer waiting for the crew's answer and the job it is working (so a reload shows both).
/// A user crewing several units reports for the lowest-numbered active one, as on the websocket.
#[utoipa::path(
    tag = "emergency",
    responses(
        (status = 200, body = super::field::MyUnitView),
        (status = 404, description = "not_found (the caller crews no unit)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/emergency/my-unit")]
pub async fn my_unit(
    state: web::Data<AppState>,
    auth: AuthUser,
) -> Result<web::Json<super::field::MyUnitView>, ApiError> {
    let mut conn = state.db.read().await?;
    let row = match emergency::active_unit_of_crew(&mut conn, auth.id.0).await? {
        Some(id) => emergency::find_unit(&mut conn, id).await?,
        None => None,
    }
    .ok_or_else(|| ApiError::not_found("unit"))?;
    drop(conn);
    let view = unit_views(&state, vec![row])
        .await?
        .pop()
        .ok_or_else(|| ApiError::not_found("unit"))?;
    Ok(web::Json(
        super::field::my_unit_view(&state, view, auth.id.0).await?,
    ))
}

async fn visible_unit(state: &AppState, auth: &AuthUser, id: i64) -> Result<UnitRow, ApiError> {
    let mut conn = state.db.read().await?;
    let row = emergency::find_unit(&mut conn, id)
        .await?
        .filter(|r| r.kind == "als" || r.kind == "bls")
        .ok_or_else(|| ApiError::not_found("unit"))?;
    if is_dispatcher(auth) || emergency::is_crew(&mut conn, auth.id.0, id).await? {
        Ok(row)
    } else {
        Err(ApiError::not_found("unit"))
    }
}

/// A unit's new status.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnitStatusBody {
    /// Availability: `available`, `busy`, `off_duty`. Progress on the current job: `en_route`,
    /// `on_scene`, `transporting` (with `hospital_id`), `at_destination`, `handed_over`, and
    /// `back_in_service` (closes the job and makes the unit available).
    pub status: String,
    /// The destination, with `transporting`.
    pub hospital_id: Option<i64>,
}

/// Sets a unit's availability or moves its current job on (its crew, dispatchers).
#[utoipa::path(
    tag = "emergency",
    params(("id" = i64, Path, description = "Unit id")),
    request_body = UnitStatusBody,
    responses(
        (status = 200, body = UnitView),
        (status = 400, description = "validation_failed", body = ErrorBody),
        (status = 404, description = "not_found", body = ErrorBody),
        (status = 409, description = "invalid_transition (not that step now) or conflict", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[put("/emergency/units/{id}/status")]
pub async fn set_unit_status(
    state: web::Data<AppState>,
    auth: AuthUser,
    id: web::Path<i64>,
    body: web::Json<UnitStatusBody>,
) -> Result<web::Json<UnitView>, ApiError> {
    let unit = visible_unit(&state, &auth, *id).await?;
    let agent = if is_dispatcher(&auth) {
        Agent::User(ActorUserId(auth.id.0))
    } else {
        Agent::Unit(UnitId(unit.id))
    };
    let step = match body.status.as_str() {
        "available" | "busy" | "off_duty" => None,
        "en_route" => Some(AmbulanceEvent::Depart),
        "on_scene" => Some(AmbulanceEvent::Arrive),
        "transporting" => Some(AmbulanceEvent::StartTransport),
        "at_destination" => Some(AmbulanceEvent::ReachDestination),
        "handed_over" => Some(AmbulanceEvent::HandOver),
        "back_in_service" => Some(AmbulanceEvent::Close),
        _ => {
            return Err(ApiError::field(
                "status",
                "one of available, busy, off_duty, en_route, on_scene, transporting, at_destination, \
                 handed_over, back_in_service",
            ));
        }
    };
    let Some(step) = step else {
        let mut conn = state.db.write().await?;
        let row = emergency::set_availability(&mut conn, unit.id, &body.status)
            .await?
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidTransition,
                    "the unit is on a job; move the job on instead",
                )
            })?;
        drop(conn);
        dispatch::announce_unit_status(&state.bus, row.id, &row.status).await;
        let view = unit_views(&state, vec![row]).await?.pop();
        return view.map(web::Json).ok_or_else(|| ApiError::not_found("unit"));
    };
    let request = match (unit.request_kind.as_deref(), unit.request_id) {
        (Some(emergency::ENTITY), Some(request)) => request,
        _ => {
            return Err(ApiError::new(
                ErrorCode::InvalidTransition,
                "the unit has no ambulance job",
            ));
        }
    };
    if step == AmbulanceEvent::StartTransport {
        let hospital = body
            .hospital_id
            .ok_or_else(|| ApiError::field("hospital_id", "required with transporting"))?;
        let mut conn = state.db.write().await?;
        emergency::set_destination(&mut conn, request, hospital)
            .await
            .map_err(|e| match e {
                emergency::EmergencyError::Db(diesel::result::Error::NotFound) => {
                    ApiError::field("hospital_id", "no such hospital")
                }
                other => dispatch::emergency_error(other),
            })?;
    }
    let command = format!("unit:{}:{}:{}", unit.id, step.name(), unit.version);
    dispatch::Emergency::execute(&state.emergency, request, step, agent, command).await?;
    let mut conn = state.db.read().await?;
    let row = emergency::find_unit(&mut conn, unit.id)
        .await?
        .ok_or_else(|| ApiError::not_found("unit"))?;
    drop(conn);
    dispatch::announce_unit_status(&state.bus, row.id, &row.status).await;
    let view = unit_views(&state, vec![row]).await?.pop();
    view.map(web::Json).ok_or_else(|| ApiError::not_found("unit"))
}

// ------------------------------------------------------------------------------------------- requests

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PickupBody {
    pub lat: f64,
    pub lng: f64,
    pub address: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatientBody {
    pub name: Option<String>,
    pub age: Option<i32>,
    pub phone: Option<String>,
    pub condition: Option<String>,
}

/// An emergency call.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    pub pickup: PickupBody,
    /// ARP category: 1 life-threatening, 2 emergency, 3 urgent, 4 less urgent.
    pub category: i32,
    pub patient: Option<PatientBody>,
    pub notes: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AssignedUnitView {
    pub id: i64,
    pub call_sign: String,
    pub kind: String,
    pub status: String,
    pub position: Option<PositionView>,
    /// Estimated seconds to the patient (before the crew is on scene).
    pub eta_s: Option<f64>,
}

/// NEMSIS-style times of a request.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestTimes {
    pub call_received: NaiveDateTime,
    pub notified: Option<NaiveDateTime>,
    pub en_route: Option<NaiveDateTime>,
    pub on_scene: Option<NaiveDateTime>,
    pub transporting: Option<NaiveDateTime>,
    pub at_destination: Option<NaiveDateTime>,
    pub handed_over: Option<NaiveDateTime>,
    pub back_in_service: Option<NaiveDateTime>,
    pub cancelled: Option<NaiveDateTime>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DestinationView {
    pub hospital_id: i64,
    pub name: String,
    pub distance_m: f64,
    pub eta_s: f64,
    pub emergency_beds_available: i32,
    pub icu_beds_available: i32,
}

/// Where a waiting call stands in the dispatch queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueView {
    /// 1 = the next call served when a feasible unit frees up (queue order: ARP category, then call time).
    pub position: i64,
    /// Seconds since the call was received.
    pub waited_s: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RequestView {
    pub id: i64,
    pub status: String,
    pub category: i32,
    pub pickup: LatLngBody,
    pub pickup_address: Option<String>,
    pub patient_name: Option<String>,
    pub patient_age: Option<i32>,
    pub patient_phone: Option<String>,
    pub patient_condition: Option<String>,
    pub notes: Option<String>,
    pub requester_user_id: i64,
    pub unit: Option<AssignedUnitView>,
    pub destination_hospital_id: Option<i64>,
    pub cancel_reason: Option<String>,
    pub escalation_level: i32,
    pub version: i64,
    pub times: RequestTimes,
    /// Present while the call waits in the queue (`queued`, `no_unit_available`, `escalated`).
    pub queue: Option<QueueView>,
    pub clock: breach::ResponseClock,
    /// Once the crew is with the patient: hospitals ranked by ETA among those with a free emergency bed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recommended_destinations: Vec<DestinationView>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<TimelineEntry>,
}

/// What a request's view reads besides the request row.
#[derive(Default)]
struct ViewContext {
    unit: Option<emergency::UnitRow>,
    destinations: Vec<emergency::HospitalCapacity>,
    queue: Option<QueueView>,
}

async fn request_view(
    state: &AppState,
    row: RequestRow,
    timeline: Vec<TimelineEntry>,
) -> Result<RequestView, ApiError> {
    let mut conn = state.db.read().await?;
    let unit = match row.assigned_unit_id {
        Some(id) => emergency::find_unit(&mut conn, id).await?,
        None => None,
    };
    let destinations = if matches!(row.status.as_str(), "on_scene") {
        emergency::hospitals_near(&mut conn, row.pickup_lat, row.pickup_lng, DESTINATION_BOX_DEG).await?
    } else {
        Vec::new()
    };
    let now = crate::db::now();
    let queue = if emergency::QUEUE_STATUSES.contains(&row.status.as_str()) {
        let position = emergency::queue_position(&mut conn, &row).await?;
        Some(QueueView {
            position,
            waited_s: (now - row.call_received_at).num_seconds().max(0),
        })
    } else {
        None
    };
    drop(conn);
    let context = ViewContext {
        unit,
        destinations,
        queue,
    };
    Ok(build_view(state, row, timeline, context))
}

/// A request's view from its row and what was read with it (no database access).
fn build_view(
    state: &AppState,
    row: RequestRow,
    timeline: Vec<TimelineEntry>,
    context: ViewContext,
) -> RequestView {
    let ViewContext {
        unit,
        destinations,
        queue,
    } = context;
    let working = emergency::ACTIVE_STATUSES.contains(&row.status.as_str()) || row.status == "offered";
    let pickup = Position::new(row.pickup_lat, row.pickup_lng).ok();
    let clock = {
        let index = lock_fleet(&state.fleet);
        let stored = unit.as_ref().and_then(|u| u.last_lat.zip(u.last_lng));
        breach::clock(&row, &index, stored, crate::db::now())
    };
    let unit_view = unit.filter(|_| working || row.status == "handed_over").map(|u| {
        let position = position_of(state, &u);
        let eta_s = match (pickup, &position, emergency::unit_kind(&u.kind)) {
            (Some(pickup), Some(at), Some(kind)) if row.on_scene_at.is_none() => {
                Position::new(at.lat, at.lng)
                    .ok()
                    .map(|from| eta_for(kind, from.distance_m(pickup)).as_secs_f64())
            }
            _ => None,
        };
        AssignedUnitView {
            id: u.id,
            call_sign: u.call_sign,
            kind: u.kind,
            status: u.status,
            position,
            eta_s,
        }
    });
    let mut recommended: Vec<DestinationView> = match pickup {
        Some(pickup) => destinations
            .into_iter()
            .filter(|h| h.beds_emergency_available > 0)
            .filter_map(|h| {
                let at = Position::new(h.lat, h.lng).ok()?;
                let distance_m = pickup.distance_m(at);
                Some(DestinationView {
                    hospital_id: h.id,
                    name: h.name,
                    distance_m,
                    eta_s: eta_for(UnitKind::AmbulanceAls, distance_m).as_secs_f64(),
                    emergency_beds_available: h.beds_emergency_available,
                    icu_beds_available: h.beds_icu_available,
                })
            })
            .collect(),
        None => Vec::new(),
    };
    recommended.sort_by(|a, b| a.eta_s.total_cmp(&b.eta_s));
    recommended.truncate(5);
    RequestView {
        id: row.id,
        status: row.status,
        category: row.category,
        pickup: LatLngBody {
            lat: row.pickup_lat,
            lng: row.pickup_lng,
        },
        pickup_address: row.pickup_address,
        patient_name: row.patient_name,
        patient_age: row.patient_age,
        patient_phone: row.patient_phone,
        patient_condition: row.patient_condition,
        notes: row.notes,
        requester_user_id: row.requester_user_id,
        unit: unit_view,
        destination_hospital_id: row.destination_hospital_id,
        cancel_reason: row.cancel_reason,
        escalation_level: row.escalation_level,
        version: row.version,
        times: RequestTimes {
            call_received: row.call_received_at,
            notified: row.notified_at,
            en_route: row.en_route_at,
            on_scene: row.on_scene_at,
            transporting: row.transporting_at,
            at_destination: row.at_destination_at,
            handed_over: row.handed_over_at,
            back_in_service: row.back_in_service_at,
            cancelled: row.cancelled_at,
        },
        queue,
        clock,
        recommended_destinations: recommended,
        timeline,
    }
}

/// The request if `auth` may see it: its requester, dispatchers and administrators, and the crew of
/// the unit working it — or offered it: while a request is `offered`, `assigned_unit_id` names the unit
/// it is offered to, so that crew reads the category, complaint and address to decide. Anyone else
/// gets 404.
async fn visible_request(state: &AppState, auth: &AuthUser, id: i64) -> Result<RequestRow, ApiError> {
    let mut conn = state.db.read().await?;
    let row = emergency::find_request(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found("ambulance request"))?;
    if is_dispatcher(auth) || row.requester_user_id == auth.id.0 {
        return Ok(row);
    }
    if let Some(unit) = row.assigned_unit_id
        && emergency::is_crew(&mut conn, auth.id.0, unit).await?
    {
        return Ok(row);
    }
    Err(ApiError::not_found("ambulance request"))
}

/// Calls an ambulance: a customer for themselves, a dispatcher on behalf of a caller. The request's
/// offer cascade starts at once; progress arrives on `ambulance_request:{id}`.
#[utoipa::path(
    tag = "emergency",
    request_body = CreateRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key create one request")),
    responses(
        (status = 201, body = RequestView),
        (status = 400, description = "validation_failed", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/emergency/ambulance-requests")]
pub async fn create_request(
    state: web::Data<AppState>,
    auth: AuthUser,
    body: web::Json<CreateRequest>,
) -> Result<HttpResponse, ApiError> {
    let mut p = Problems::default();
    let pickup = p.check("pickup", Position::new(body.pickup.lat, body.pickup.lng));
    if !(1..=4).contains(&body.category) {
        p.add("category", "must be 1 (life-threatening) to 4 (less urgent)");
    }
    let address = body
        .pickup
        .address
        .as_deref()
        .and_then(|a| p.text("pickup.address", a, MAX_TEXT_CHARS));
    let notes = body
        .notes
        .as_deref()
        .and_then(|n| p.text("notes", n, MAX_TEXT_CHARS));
    let (mut name, mut age, mut phone, mut condition) = (None, None, None, None);
    if let Some(patient) = &body.patient {
        name = patient
            .name
            .as_deref()
            .and_then(|n| p.check("patient.name", PersonName::parse(n)))
            .map(PersonName::into_inner);
        if let Some(a) = patient.age {
            if (0..=130).contains(&a) {
                age = Some(a);
            } else {
                p.add("patient.age", "must be between 0 and 130");
            }
        }
        phone = patient
            .phone
            .as_deref()
            .and_then(|n| p.check("patient.phone", Phone::parse(n)))
            .map(|n| n.as_str().to_owned());
        condition = patient
            .condition
            .as_deref()
            .and_then(|c| p.text("patient.condition", c, MAX_TEXT_CHARS));
    }
    p.finish()?;
    let Some(pickup) = pickup else {
        return Err(ApiError::internal(anyhow::anyhow!("validated pickup missing")));
    };
    let now = crate::db::now();
    let h3_cell = h3o::LatLng::new(pickup.lat(), pickup.lng())
        .ok()
        .and_then(|p| i64::try_from(u64::from(p.to_cell(onemedi_actors::fleet::DEFAULT_RESOLUTION))).ok());
    let new = NewRequest {
        requester_user_id: auth.id.0,
        pickup_lat: pickup.lat(),
        pickup_lng: pickup.lng(),
        pickup_address: address,
        h3_cell,
        category: body.category,
        patient_name: name,
        patient_age: age,
        patient_phone: phone,
        patient_condition: condition,
        notes,
        call_received_at: now,
        created_at: now,
        updated_at: now,
    };
    let mut conn = state.db.write().await?;
    let row = emergency::create_request(&mut conn, &new).await?;
    drop(conn);
    let created = serde_json::json!({
        "type": "request_created",
        "v": crate::bus::EVENT_VERSION,
        "request_id": row.id,
        "category": row.category,
        "lat": row.pickup_lat,
        "lng": row.pickup_lng,
        "at": Utc::now(),
    });
    // The cascade starts before the announcement's Redis round trip.
    state.emergency.dispatch(&row);
    state
        .bus
        .publish(&dispatch::request_topics(row.id), created)
        .await;
    // Answered from what the transaction returned: a read after the commit could fail, and a caller told
    // that a committed emergency call failed would post it again. A new request has no unit, no
    // destinations and no place in the queue yet.
    let view = build_view(&state, row, Vec::new(), ViewContext::default());
    Ok(HttpResponse::Created().json(view))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct RequestListQuery {
    pub page: Option<u32>,
    pub per_page: Option<u32>,
    /// Only requests that are not closed or cancelled.
    pub open: Option<bool>,
}

/// The caller's requests (dispatchers see every request), newest first.
#[utoipa::path(
    tag = "emergency",
    params(RequestListQuery),
    responses((status = 200, body = Page<RequestView>)),
    security(("bearer" = []))
)]
#[get("/emergency/ambulance-requests")]
pub async fn list_requests(
    state: web::Data<AppState>,
    auth: AuthUser,
    query: web::Query<RequestListQuery>,
) -> Result<web::Json<Page<RequestView>>, ApiError> {
    let page = PageQuery {
        page: query.page,
        per_page: query.per_page,
    }
    .validate()?;
    let requester = (!is_dispatcher(&auth)).then_some(auth.id.0);
    let mut conn = state.db.read().await?;
    let (rows, total) = emergency::list_requests(
        &mut conn,
        requester,
        query.open.unwrap_or(false),
        page.limit(),
        page.offset(),
    )
    .await?;
    drop(conn);
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        items.push(request_view(&state, row, Vec::new()).await?);
    }
    Ok(web::Json(page.wrap(items, total)))
}

/// A request with its unit, live position, last-seen age, ETA, response clock and timeline.
#[utoipa::path(
    tag = "emergency",
    params(("id" = i64, Path, description = "Request id")),
    responses((status = 200, body = RequestView), (status = 404, description = "not_found", body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/emergency/ambulance-requests/{id}")]
pub async fn get_request(
    state: web::Data<AppState>,
    auth: AuthUser,
    id: web::Path<i64>,
) -> Result<web::Json<RequestView>, ApiError> {
    let row = visible_request(&state, &auth, *id).await?;
    let mut conn = state.db.read().await?;
    let timeline = emergency::timeline(&mut conn, row.id).await?;
    drop(conn);
    Ok(web::Json(request_view(&state, row, timeline).await?))
}

/// Calls a request off (its requester or a dispatcher); a unit working it is released.
#[utoipa::path(
    tag = "emergency",
    params(("id" = i64, Path, description = "Request id")),
    request_body = ReasonBody,
    responses(
        (status = 200, body = RequestView),
        (status = 404, description = "not_found", body = ErrorBody),
        (status = 409, description = "invalid_transition (already on scene or over)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/emergency/ambulance-requests/{id}/cancel")]
pub async fn cancel_request(
    state: web::Data<AppState>,
    auth: AuthUser,
    id: web::Path<i64>,
    body: crate::api::body::OptionalJson<ReasonBody>,
) -> Result<web::Json<RequestView>, ApiError> {
    let row = visible_request(&state, &auth, *id).await?;
    if !(is_dispatcher(&auth) || row.requester_user_id == auth.id.0) {
        return Err(ApiError::not_found("ambulance request"));
    }
    let mut p = Problems::default();
    let reason = body
        .as_ref()
        .and_then(|b| b.reason.as_deref())
        .and_then(|r| p.text("reason", r, MAX_TEXT_CHARS));
    p.finish()?;
    let unit = row.assigned_unit_id;
    let command = format!("cancel:{}", auth.id.0);
    state
        .emergency
        .execute(
            row.id,
            AmbulanceEvent::Cancel,
            Agent::User(ActorUserId(auth.id.0)),
            command,
        )
        .await?;
    let mut conn = state.db.write().await?;
    // The unit's release committed with the cancellation: announce it before anything else can fail.
    let released = match unit {
        Some(unit) => emergency::find_unit(&mut conn, unit).await?,
        None => None,
    };
    if let Some(unit) = released {
        dispatch::announce_unit_status(&state.bus, unit.id, &unit.status).await;
    }
    emergency::set_cancel_reason(&mut conn, row.id, reason.as_deref()).await?;
    let row = emergency::find_request(&mut conn, row.id)
        .await?
        .ok_or_else(|| ApiError::not_found("ambulance request"))?;
    drop(conn);
    Ok(web::Json(request_view(&state, row, Vec::new()).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    pub unit_id: i64,
}

/// A dispatcher assigns (or reassigns, before the unit sets off) a unit by hand, through the same
/// conditional claim as a crew's acceptance.
#[utoipa::path(
    tag = "emergency",
    params(("id" = i64, Path, description = "Request id")),
    request_body = AssignBody,
    responses(
        (status = 200, body = RequestView),
        (status = 403, description = "forbidden", body = ErrorBody),
        (status = 404, description = "not_found", body = ErrorBody),
        (status = 409, description = "unit_unavailable or invalid_transition", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/emergency/ambulance-requests/{id}/assign")]
pub async fn assign_request(
    state: web::Data<AppState>,
    auth: AuthUser,
    id: web::Path<i64>,
    body: web::Json<AssignBody>,
) -> Result<web::Json<RequestView>, ApiError> {
    require_dispatcher(&auth)?;
    let current = visible_request(&state, &auth, *id).await?;
    // Reassigning an assigned request gives its unit back in the same transaction.
    let previous = match current.status.as_str() {
        "assigned" => current.assigned_unit_id,
        _ => None,
    };
    if previous == Some(body.unit_id) {
        return Ok(web::Json(request_view(&state, current, Vec::new()).await?));
    }
    let mut conn = state.db.write().await?;
    let command = format!("manual_assign:{}:{}", body.unit_id, current.version);
    let settled = emergency::assign_manually(&mut conn, current.id, body.unit_id, auth.id.0, &command).await;
    drop(conn);
    // A unit on its way to a less urgent call may be taken for this one, as the policy allows.
    if matches!(settled, Err(emergency::EmergencyError::UnitUnavailable))
        && previous.is_none()
        && may_preempt(&state, current.category)
    {
        let until = crate::db::now() + dispatch::lease::ROUTINE_LEASE;
        let mut conn = state.db.write().await?;
        let preempted =
            emergency::preempt(&mut conn, current.id, body.unit_id, state.bus.node_id(), until).await;
        drop(conn);
        if let Ok(done) = preempted {
            dispatch::preempt::announce(&state.bus, &done).await;
            state.emergency.dispatch(&done.requeued);
            return Ok(web::Json(request_view(&state, done.urgent, Vec::new()).await?));
        }
    }
    // The previous unit is given back only if the whole assignment committed.
    if let Some(previous) = previous
        && settled.is_ok()
    {
        dispatch::announce_unit_status(&state.bus, previous, "available").await;
    }
    let settled = settled.map_err(dispatch::emergency_error)?;
    let unit = settled.unit.id;
    let request = settled
        .request()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("a manual assignment settled another job")))?;
    dispatch::announce_assignment(
        &state.bus,
        &request,
        unit,
        &current.status,
        "manual_assign",
        Agent::User(ActorUserId(auth.id.0)),
    )
    .await;
    Ok(web::Json(request_view(&state, request, Vec::new()).await?))
}

/// The caller's unit (the crew member's), for answering offers over REST.
async fn callers_unit(state: &AppState, auth: &AuthUser) -> Result<i64, ApiError> {
    let mut conn = state.db.read().await?;
    emergency::unit_of_crew(&mut conn, auth.id.0)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::Forbidden, "only a unit's crew may answer offers"))
}

/// The crew accepts the offer of this request to its unit. Settled by conditional writes: an offer that
/// lapsed or was taken is refused and nothing changes.
#[utoipa::path(
    tag = "emergency",
    params(("id" = i64, Path, description = "Request id")),
    responses(
        (status = 200, body = RequestView),
        (status = 403, description = "forbidden (not a crew member)", body = ErrorBody),
        (status = 404, description = "not_found (no offer of this request to your unit)", body = ErrorBody),
        (status = 409, description = "offer_expired, offer_taken or unit_unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/emergency/ambulance-requests/{id}/accept")]
pub async fn accept_offer(
    state: web::Data<AppState>,
    auth: AuthUser,
    id: web::Path<i64>,
) -> Result<web::Json<RequestView>, ApiError> {
    let unit = callers_unit(&state, &auth).await?;
    let request = dispatch::answer_offer(&state, unit, auth.id.0, dispatch::key(*id), true, None)
        .await?
        .and_then(|settled| settled.request())
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("accepted offer without a settlement")))?;
    Ok(web::Json(request_view(&state, request, Vec::new()).await?))
}

/// The crew declines the offer; the request goes on to the next unit.
#[utoipa::path(
    tag = "emergency",
    params(("id" = i64, Path, description = "Request id")),
    request_body = ReasonBody,
    responses(
        (status = 204),
        (status = 404, description = "not_found", body = ErrorBody),
        (status = 409, description = "offer_expired or offer_taken", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/emergency/ambulance-requests/{id}/decline")]
pub async fn decline_offer(
    state: web::Data<AppState>,
    auth: AuthUser,
    id: web::Path<i64>,
    body: crate::api::body::OptionalJson<ReasonBody>,
) -> Result<HttpResponse, ApiError> {
    let mut p = Problems::default();
    let reason = body
        .as_ref()
        .and_then(|b| b.reason.as_deref())
        .and_then(|r| p.text("reason", r, 200));
    p.finish()?;
    let unit = callers_unit(&state, &auth).await?;
    dispatch::answer_offer(
        &state,
        unit,
        auth.id.0,
        dispatch::key(*id),
        false,
        reason.as_deref(),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

// ------------------------------------------------------------------------------------ console tools

/// A dispatcher's note on a call.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    /// 1–500 characters, no control characters.
    pub text: String,
}

/// Adds a dispatcher's note to a call's timeline (event `note`, the text in `reason`, the status
/// unchanged), announced as `request_note` on the call's topic and `dispatch`.
#[utoipa::path(
    tag = "emergency",
    params(("id" = i64, Path, description = "Request id")),
    request_body = NoteBody,
    responses(
        (status = 201, body = TimelineEntry),
        (status = 400, description = "validation_failed", body = ErrorBody),
        (status = 403, description = "forbidden (not a dispatcher)", body = ErrorBody),
        (status = 404, description = "not_found", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/emergency/ambulance-requests/{id}/notes")]
pub async fn add_note(
    state: web::Data<AppState>,
    auth: AuthUser,
    id: web::Path<i64>,
    body: web::Json<NoteBody>,
) -> Result<HttpResponse, ApiError> {
    require_dispatcher(&auth)?;
    let mut p = Problems::default();
    let text = p.text("text", &body.text, MAX_TEXT_CHARS);
    p.finish()?;
    let Some(text) = text else {
        return Err(ApiError::internal(anyhow::anyhow!("validated note missing")));
    };
    let mut conn = state.db.write().await?;
    let entry = console::add_note(&mut conn, *id, auth.id.0, &text)
        .await?
        .ok_or_else(|| ApiError::not_found("ambulance request"))?;
    drop(conn);
    let event = serde_json::json!({
        "type": "request_note",
        "v": crate::bus::EVENT_VERSION,
        "request_id": *id,
        "by_user_id": auth.id.0,
        "at": Utc::now(),
    });
    state.bus.publish(&dispatch::request_topics(*id), event).await;
    Ok(HttpResponse::Created().json(entry))
}

/// A unit's availability set by a dispatcher, with the reason.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusOverrideBody {
    /// `available`, `busy` or `off_duty`.
    pub status: String,
    /// Why (1–500 characters); kept in the audit log.
    pub reason: String,
}

/// A dispatcher sets a unit's availability by hand (the crew's radio says it broke down, went home,
/// is free again): one conditional write, audited (`unit_status_override`, `{from, to, reason}`) in the
/// same transaction, then announced as `unit_status`. A unit on a job follows its job: move the job on,
/// reassign or cancel it instead.
#[utoipa::path(
    tag = "emergency",
    params(("id" = i64, Path, description = "Unit id")),
    request_body = StatusOverrideBody,
    responses(
        (status = 200, body = UnitView),
        (status = 400, description = "validation_failed", body = ErrorBody),
        (status = 403, description = "forbidden (not a dispatcher)", body = ErrorBody),
        (status = 404, description = "not_found", body = ErrorBody),
        (status = 409, description = "invalid_transition (the unit is on a job)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/emergency/units/{id}/status-override")]
pub async fn override_unit_status(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
    auth: AuthUser,
    id: web::Path<i64>,
    body: web::Json<StatusOverrideBody>,
) -> Result<web::Json<UnitView>, ApiError> {
    require_dispatcher(&auth)?;
    let mut p = Problems::default();
    if !console::OVERRIDE_STATUSES.contains(&body.status.as_str()) {
        p.add("status", "one of available, busy, off_duty");
    }
    let reason = p.text("reason", &body.reason, MAX_TEXT_CHARS);
    p.finish()?;
    let Some(reason) = reason else {
        return Err(ApiError::internal(anyhow::anyhow!("validated reason missing")));
    };
    // Only ambulances are on the console's board.
    visible_unit(&state, &auth, *id).await?;
    let entry = audit_entry(
        &req,
        Some(auth.id.0),
        "unit_status_override",
        ("unit", Some(id.to_string())),
    );
    let mut conn = state.db.write().await?;
    let done = console::override_unit_status(&mut conn, *id, &body.status, &reason, &entry).await?;
    drop(conn);
    let row = match done {
        Override::Done { unit, .. } => *unit,
        Override::NotFound => return Err(ApiError::not_found("unit")),
        Override::OnJob(status) => {
            return Err(ApiError::new(
                ErrorCode::InvalidTransition,
                format!("the unit is {status}: it follows its job; move the job on, reassign or cancel it"),
            ));
        }
    };
    dispatch::announce_unit_status(&state.bus, row.id, &row.status).await;
    let view = unit_views(&state, vec![row]).await?.pop();
    view.map(web::Json).ok_or_else(|| ApiError::not_found("unit"))
}

/// A unit recommended for a call.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecommendedUnit {
    pub unit_id: i64,
    pub call_sign: String,
    /// `als` or `bls`.
    pub kind: String,
    pub lat: f64,
    pub lng: f64,
    /// Great-circle distance to the patient, metres.
    pub distance_m: f64,
    /// Estimated seconds to the patient from the kind's speed profile.
    pub eta_s: f64,
    /// Seconds the speed profile takes per kilometre of great circle: a client recomputes the ETA from
    /// each new position as `distance_km × eta_per_km_s`.
    pub eta_per_km_s: f64,
}

/// The units a dispatcher would send to a call: available, fresh (heard from within the stale limit)
/// ambulances of the kinds the call's category takes, nearest first by ETA, from this node's fleet index.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecommendedUnits {
    pub request_id: i64,
    /// At most five, best first.
    pub units: Vec<RecommendedUnit>,
}

/// The five units to send to a call, by ETA, from the live fleet index (dispatchers).
#[utoipa::path(
    tag = "emergency",
    params(("id" = i64, Path, description = "Request id")),
    responses(
        (status = 200, body = RecommendedUnits),
        (status = 403, description = "forbidden (not a dispatcher)", body = ErrorBody),
        (status = 404, description = "not_found", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/emergency/ambulance-requests/{id}/recommended-units")]
pub async fn recommended_units(
    state: web::Data<AppState>,
    auth: AuthUser,
    id: web::Path<i64>,
) -> Result<web::Json<RecommendedUnits>, ApiError> {
    require_dispatcher(&auth)?;
    let row = visible_request(&state, &auth, *id).await?;
    let pickup = Position::new(row.pickup_lat, row.pickup_lng)
        .map_err(|e| ApiError::internal(anyhow::anyhow!("stored pickup is impossible: {e}")))?;
    let (primary, fallback) = dispatch::kinds_for(row.category);
    let mut nearby = if emergency::FINAL_STATUSES.contains(&row.status.as_str()) {
        Vec::new()
    } else {
        let index = lock_fleet(&state.fleet);
        let filter = onemedi_actors::fleet::SearchFilter::default();
        let now = Utc::now();
        [primary, fallback]
            .into_iter()
            .flat_map(|kind| {
                index
                    .nearest_available(kind, pickup, RECOMMENDED_UNITS, RECOMMEND_RADIUS_M, &filter, now)
                    .into_iter()
                    .map(move |n| (kind, n))
            })
            .collect::<Vec<_>>()
    };
    nearby.sort_by_key(|(_, n)| n.eta);
    nearby.truncate(RECOMMENDED_UNITS);
    let mut conn = state.db.read().await?;
    let mut units = Vec::with_capacity(nearby.len());
    for (kind, n) in nearby {
        let Some(unit) = emergency::find_unit(&mut conn, n.unit.0).await? else {
            continue;
        };
        units.push(RecommendedUnit {
            unit_id: unit.id,
            call_sign: unit.call_sign,
            kind: unit.kind,
            lat: n.position.lat(),
            lng: n.position.lng(),
            distance_m: n.distance_m,
            eta_s: n.eta.as_secs_f64(),
            eta_per_km_s: eta_for(kind, 1000.0).as_secs_f64(),
        });
    }
    Ok(web::Json(RecommendedUnits {
        request_id: row.id,
        units,
    }))
}

// ------------------------------------------------------------------------------------- board and stats

#[derive(Debug, Serialize, ToSchema)]
pub struct Board {
    pub units: Vec<UnitView>,
    pub requests: Vec<RequestView>,
    pub generated_at: DateTime<Utc>,
}

/// Everything a dispatcher's console starts from: every ambulance with status, position and last-seen
/// age, and every open request with its clock. Changes then stream on the `dispatch` topic.
#[utoipa::path(
    tag = "emergency",
    responses((status = 200, body = Board), (status = 403, description = "forbidden", body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/emergency/board")]
pub async fn board(state: web::Data<AppState>, auth: AuthUser) -> Result<web::Json<Board>, ApiError> {
    require_dispatcher(&auth)?;
    let mut conn = state.db.read().await?;
    let units = emergency::board_units(&mut conn).await?;
    let requests = emergency::open_requests(&mut conn).await?;
    drop(conn);
    let units = unit_views(&state, units).await?;
    let mut views = Vec::with_capacity(requests.len());
    for row in requests {
        views.push(request_view(&state, row, Vec::new()).await?);
    }
    Ok(web::Json(Board {
        units,
        requests: views,
        generated_at: Utc::now(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryStats {
    pub category: i32,
    pub target: breach::ArpTarget,
    /// Requests received in the window.
    pub requests: usize,
    /// Requests whose crew reached the patient.
    pub responded: usize,
    pub mean_response_s: Option<f64>,
    /// 90th centile of the response times (nearest rank).
    pub p90_response_s: Option<f64>,
    /// Share of responses within the 90th-centile target, 0–1.
    pub within_target: Option<f64>,
    pub cancelled: usize,
    pub no_unit_available: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Stats {
    pub since: NaiveDateTime,
    pub categories: Vec<CategoryStats>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct StatsQuery {
    /// Window in days, 1–90 (default 30).
    pub days: Option<i64>,
}

/// Achieved response times per ARP category (call received → crew on scene).
#[utoipa::path(
    tag = "emergency",
    params(StatsQuery),
    responses((status = 200, body = Stats), (status = 403, description = "forbidden", body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/emergency/stats")]
pub async fn stats(
    state: web::Data<AppState>,
    auth: AuthUser,
    query: web::Query<StatsQuery>,
) -> Result<web::Json<Stats>, ApiError> {
    require_dispatcher(&auth)?;
    let days = query.days.unwrap_or(30);
    if !(1..=90).contains(&days) {
        return Err(ApiError::field("days", "must be between 1 and 90"));
    }
    let since = crate::db::now() - chrono::TimeDelta::days(days);
    let mut conn = state.db.read().await?;
    let rows = emergency::response_times(&mut conn, since).await?;
    drop(conn);
    let categories = category_stats(&rows);
    Ok(web::Json(Stats { since, categories }))
}

/// Response-time figures per ARP category (1–4, in order) from `(category, call received, on scene,
/// status)` rows, as [`emergency::response_times`] gives them.
pub fn category_stats(rows: &[emergency::ResponseTime]) -> Vec<CategoryStats> {
    (1..=4)
        .map(|category| {
            let of: Vec<_> = rows.iter().filter(|r| r.0 == category).collect();
            let mut times: Vec<f64> = of
                .iter()
                .filter_map(|(_, call, scene, _)| {
                    scene.map(|s| (s - *call).num_milliseconds().max(0) as f64 / 1000.0)
                })
                .collect();
            times.sort_by(f64::total_cmp);
            let target = breach::target(category);
            let n = times.len();
            let p90 = (n > 0).then(|| times[(n * 9).div_ceil(10).saturating_sub(1)]);
            CategoryStats {
                category,
                target,
                requests: of.len(),
                responded: n,
                mean_response_s: (n > 0).then(|| times.iter().sum::<f64>() / n as f64),
                p90_response_s: p90,
                within_target: (n > 0)
                    .then(|| times.iter().filter(|t| **t <= target.p90_s as f64).count() as f64 / n as f64),
                cancelled: of.iter().filter(|r| r.3 == "cancelled").count(),
                no_unit_available: of
                    .iter()
                    .filter(|r| r.3 == "no_unit_available" || r.3 == "escalated")
                    .count(),
            }
        })
        .collect()
}
