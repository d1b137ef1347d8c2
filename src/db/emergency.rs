//! Emergency dispatch rows: units and crews, ambulance requests, offers and their settlement by
//! conditional writes (the database row is the only lock between nodes), and the board's reads.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde::Serialize;
use utoipa::ToSchema;

use super::{
    Conn, Retryable,
    schema::{
        ambulance_requests as ar, dispatch_offers, entity_transitions, hospitals, orders, unit_crew, units,
        users,
    },
    with_retries,
};
use onemedi_actors::machines::EntityKey;

use crate::{db::prepared::PreparedExt, on_conn};

/// `entity_transitions.entity_type` and `units.request_kind` of ambulance requests.
pub const ENTITY: &str = "ambulance_request";

/// Request statuses in which a unit is working the request.
pub const ACTIVE_STATUSES: [&str; 5] = [
    "assigned",
    "en_route",
    "on_scene",
    "transporting",
    "at_destination",
];
/// Request statuses that are over.
pub const FINAL_STATUSES: [&str; 2] = ["closed", "cancelled"];
/// Request statuses a dispatcher may (re)assign from (`assigned`: before the unit sets off).
const ASSIGNABLE_STATUSES: [&str; 6] = [
    "requested",
    "offered",
    "queued",
    "assigned",
    "no_unit_available",
    "escalated",
];

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = units)]
pub struct UnitRow {
    pub id: i64,
    pub call_sign: String,
    pub kind: String,
    pub status: String,
    pub capabilities: i32,
    pub request_kind: Option<String>,
    pub request_id: Option<i64>,
    pub vehicle_number: Option<String>,
    pub station_name: Option<String>,
    pub home_lat: f64,
    pub home_lng: f64,
    pub last_lat: Option<f64>,
    pub last_lng: Option<f64>,
    pub last_seen_at: Option<NaiveDateTime>,
    pub is_active: bool,
    pub version: i64,
}

/// One crew member of a unit.
#[derive(Debug, Clone, Serialize, ToSchema, Queryable)]
pub struct CrewMember {
    pub user_id: i64,
    pub name: String,
    pub crew_role: String,
    pub is_lead: bool,
}

/// A unit to create, validated.
#[derive(Debug, Clone)]
pub struct NewUnit {
    pub call_sign: String,
    pub kind: &'static str,
    pub capabilities: i32,
    pub vehicle_number: Option<String>,
    pub station_name: Option<String>,
    pub home_lat: f64,
    pub home_lng: f64,
    /// `(user id, is lead)`; every user must have the role `paramedic`.
    pub crew: Vec<(i64, bool)>,
}

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = ar)]
pub struct RequestRow {
    pub id: i64,
    pub requester_user_id: i64,
    pub pickup_lat: f64,
    pub pickup_lng: f64,
    pub pickup_address: Option<String>,
    pub category: i32,
    pub patient_name: Option<String>,
    pub patient_age: Option<i32>,
    pub patient_phone: Option<String>,
    pub patient_condition: Option<String>,
    pub notes: Option<String>,
    pub status: String,
    pub assigned_unit_id: Option<i64>,
    pub destination_hospital_id: Option<i64>,
    pub cancel_reason: Option<String>,
    pub escalation_level: i32,
    pub version: i64,
    pub call_received_at: NaiveDateTime,
    pub notified_at: Option<NaiveDateTime>,
    pub en_route_at: Option<NaiveDateTime>,
    pub on_scene_at: Option<NaiveDateTime>,
    pub transporting_at: Option<NaiveDateTime>,
    pub at_destination_at: Option<NaiveDateTime>,
    pub handed_over_at: Option<NaiveDateTime>,
    pub back_in_service_at: Option<NaiveDateTime>,
    pub closed_at: Option<NaiveDateTime>,
    pub cancelled_at: Option<NaiveDateTime>,
    pub updated_at: NaiveDateTime,
}

/// A request to create, validated.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = ar)]
pub struct NewRequest {
    pub requester_user_id: i64,
    pub pickup_lat: f64,
    pub pickup_lng: f64,
    pub pickup_address: Option<String>,
    pub h3_cell: Option<i64>,
    pub category: i32,
    pub patient_name: Option<String>,
    pub patient_age: Option<i32>,
    pub patient_phone: Option<String>,
    pub patient_condition: Option<String>,
    pub notes: Option<String>,
    pub call_received_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// One recorded step of a request's timeline.
#[derive(Debug, Clone, Serialize, ToSchema, Queryable, Selectable)]
#[diesel(table_name = entity_transitions)]
pub struct TimelineEntry {
    pub event: String,
    pub from_status: Option<String>,
    pub to_status: String,
    pub actor_user_id: Option<i64>,
    pub actor_unit_id: Option<i64>,
    pub reason: Option<String>,
    pub at: NaiveDateTime,
}

/// One row of any entity's timeline (`entity_transitions`): orders, ambulance and blood requests,
/// appointments. Absent optional fields take the column defaults.
#[derive(Debug, Insertable)]
#[diesel(table_name = entity_transitions)]
pub struct NewTransition<'a> {
    pub entity_type: &'a str,
    pub entity_id: i64,
    pub event: &'a str,
    pub from_status: Option<&'a str>,
    pub to_status: &'a str,
    pub actor_user_id: Option<i64>,
    pub actor_unit_id: Option<i64>,
    pub reason: Option<&'a str>,
    pub command_id: Option<&'a str>,
    /// JSON; `{}` when absent.
    pub details: Option<String>,
    pub at: NaiveDateTime,
}

/// Why a unit or request write did not happen. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum EmergencyError {
    #[error("no such unit")]
    UnitNotFound,
    #[error("no such request")]
    RequestNotFound,
    #[error("call sign already in use")]
    CallSignTaken,
    #[error("user {0} is not a paramedic")]
    NotParamedic(i64),
    #[error("user {0} already crews another unit")]
    CrewTaken(i64),
    #[error("there is no offer of this request to this unit")]
    OfferNotFound,
    #[error("the offer expired")]
    OfferExpired,
    #[error("the offer was already answered or withdrawn")]
    OfferClosed,
    #[error("the unit is not available")]
    UnitUnavailable,
    #[error("the request cannot change from `{0}`")]
    RequestState(String),
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

impl Retryable for EmergencyError {
    fn db_error(&self) -> Option<&diesel::result::Error> {
        match self {
            Self::Db(error) => Some(error),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------- units

/// Creates a unit and its crew in one transaction.
pub async fn create_unit(conn: &mut Conn, unit: &NewUnit) -> Result<UnitRow, EmergencyError> {
    let now = super::now();
    on_conn!(conn, c => c.transaction(async move |c| {
        for &(user_id, _) in &unit.crew {
            let role = users::table
                .find(user_id)
                .select(users::role)
                .first::<String>(c)
                .await
                .optional()?;
            if role.as_deref() != Some("paramedic") {
                return Err(EmergencyError::NotParamedic(user_id));
            }
        }
        let inserted = diesel::insert_into(units::table)
            .values((
                units::call_sign.eq(&unit.call_sign),
                units::kind.eq(unit.kind),
                units::capabilities.eq(unit.capabilities),
                units::vehicle_number.eq(&unit.vehicle_number),
                units::station_name.eq(&unit.station_name),
                units::home_lat.eq(unit.home_lat),
                units::home_lng.eq(unit.home_lng),
                units::created_at.eq(now),
                units::updated_at.eq(now),
            ))
            .returning(UnitRow::as_returning())
            .prepared()
            .get_result(c)
            .await
            .map_err(|e| {
                if super::is_unique_violation(&e, "units", "call_sign") {
                    EmergencyError::CallSignTaken
                } else {
                    e.into()
                }
            })?;
        for &(user_id, is_lead) in &unit.crew {
            diesel::insert_into(unit_crew::table)
                .values((
                    unit_crew::unit_id.eq(inserted.id),
                    unit_crew::user_id.eq(user_id),
                    unit_crew::crew_role.eq("paramedic"),
                    unit_crew::is_lead.eq(is_lead),
                    unit_crew::created_at.eq(now),
                ))
                .prepared()
                .execute(c)
                .await
                .map_err(|e| {
                    if super::is_unique_violation(&e, "unit_crew", "user_id") {
                        EmergencyError::CrewTaken(user_id)
                    } else {
                        e.into()
                    }
                })?;
        }
        Ok(inserted)
    }).await)
}

/// Ambulances (kinds `als` and `bls`), by id; at most `limit`.
pub async fn ambulances(conn: &mut Conn, limit: i64, offset: i64) -> QueryResult<(Vec<UnitRow>, i64)> {
    let kinds = ["als", "bls"];
    let rows = on_conn!(conn, c => units::table
        .filter(units::kind.eq_any(kinds))
        .order(units::id.asc())
        .limit(limit)
        .offset(offset)
        .select(UnitRow::as_select())
        .load(c)
        .await)?;
    let total =
        on_conn!(conn, c => units::table.filter(units::kind.eq_any(kinds)).count().get_result(c).await)?;
    Ok((rows, total))
}

pub async fn find_unit(conn: &mut Conn, id: i64) -> QueryResult<Option<UnitRow>> {
    on_conn!(conn, c => units::table.find(id).select(UnitRow::as_select()).first(c).await).optional()
}

/// The crews of `unit_ids`, as `(unit id, member)`.
pub async fn crews(conn: &mut Conn, unit_ids: &[i64]) -> QueryResult<Vec<(i64, CrewMember)>> {
    let rows = on_conn!(conn, c => unit_crew::table
        .inner_join(users::table)
        .filter(unit_crew::unit_id.eq_any(unit_ids))
        .order((unit_crew::unit_id.asc(), unit_crew::is_lead.desc(), unit_crew::id.asc()))
        .select((unit_crew::unit_id, unit_crew::user_id, users::name, unit_crew::crew_role, unit_crew::is_lead))
        .load::<(i64, i64, String, String, bool)>(c)
        .await)?;
    Ok(rows
        .into_iter()
        .map(|(unit, user_id, name, crew_role, is_lead)| {
            (
                unit,
                CrewMember {
                    user_id,
                    name,
                    crew_role,
                    is_lead,
                },
            )
        })
        .collect())
}

/// True when `user` crews `unit`.
pub async fn is_crew(conn: &mut Conn, user: i64, unit: i64) -> QueryResult<bool> {
    let found = on_conn!(conn, c => unit_crew::table
        .filter(unit_crew::unit_id.eq(unit).and(unit_crew::user_id.eq(user)))
        .select(unit_crew::id)
        .first::<i64>(c)
        .await)
    .optional()?;
    Ok(found.is_some())
}

/// Sets a unit's availability (`available`, `busy`, `off_duty`) unless it is working a job.
/// Returns the unit as written, or `Ok(None)` if it is on a job.
pub async fn set_availability(conn: &mut Conn, unit: i64, status: &str) -> QueryResult<Option<UnitRow>> {
    let now = super::now();
    on_conn!(conn, c => diesel::update(
            units::table
                .find(unit)
                .filter(units::status.eq_any(["available", "busy", "off_duty", "unavailable"])),
        )
        .set((units::status.eq(status), units::version.eq(units::version + 1), units::updated_at.eq(now)))
        .returning(UnitRow::as_returning())
        .prepared()
        .get_result(c)
        .await)
    .optional()
}

// ------------------------------------------------------------------------------------------- requests

/// PostgreSQL stores a new request and its first timeline row in one statement: one round trip on the
/// emergency path instead of four (BEGIN, two INSERTs, COMMIT), and as atomic (a statement is its own
/// transaction). The columns are those of [`NewRequest`], in order.
const CREATE_REQUEST_PG_SQL: &str = "WITH r AS (INSERT INTO ambulance_requests (requester_user_id, \
     pickup_lat, pickup_lng, pickup_address, h3_cell, category, patient_name, patient_age, patient_phone, \
     patient_condition, notes, call_received_at, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING *), \
     t AS (INSERT INTO entity_transitions (entity_type, entity_id, event, to_status, actor_user_id, \
     command_id, at) SELECT 'ambulance_request', r.id, 'call_received', 'requested', r.requester_user_id, \
     'create', r.call_received_at FROM r) \
     SELECT * FROM r";

/// Creates a request in status `requested`, with the first timeline row, atomically (one statement on
/// PostgreSQL, one transaction on SQLite).
pub async fn create_request(conn: &mut Conn, new: &NewRequest) -> QueryResult<RequestRow> {
    if let Conn::Pg(c) = conn {
        use diesel::sql_types::{BigInt, Double, Integer, Nullable, Text, Timestamp};
        return diesel::sql_query(CREATE_REQUEST_PG_SQL)
            .bind::<BigInt, _>(new.requester_user_id)
            .bind::<Double, _>(new.pickup_lat)
            .bind::<Double, _>(new.pickup_lng)
            .bind::<Nullable<Text>, _>(new.pickup_address.as_deref())
            .bind::<Nullable<BigInt>, _>(new.h3_cell)
            .bind::<Integer, _>(new.category)
            .bind::<Nullable<Text>, _>(new.patient_name.as_deref())
            .bind::<Nullable<Integer>, _>(new.patient_age)
            .bind::<Nullable<Text>, _>(new.patient_phone.as_deref())
            .bind::<Nullable<Text>, _>(new.patient_condition.as_deref())
            .bind::<Nullable<Text>, _>(new.notes.as_deref())
            .bind::<Timestamp, _>(new.call_received_at)
            .bind::<Timestamp, _>(new.created_at)
            .bind::<Timestamp, _>(new.updated_at)
            .prepared()
            .get_result(&mut **c)
            .await;
    }
    on_conn!(conn, c => c.transaction(async move |c| {
        let row = diesel::insert_into(ar::table)
            .values(new)
            .returning(RequestRow::as_returning())
            .prepared()
            .get_result(c)
            .await?;
        diesel::insert_into(entity_transitions::table)
            .values(NewTransition {
                entity_type: ENTITY,
                entity_id: row.id,
                event: "call_received",
                from_status: None,
                to_status: "requested",
                actor_user_id: Some(new.requester_user_id),
                actor_unit_id: None,
                reason: None,
                command_id: Some("create"),
                at: new.call_received_at,
                details: None,
            })
            .prepared()
            .execute(c)
            .await?;
        Ok(row)
    }).await)
}

pub async fn find_request(conn: &mut Conn, id: i64) -> QueryResult<Option<RequestRow>> {
    on_conn!(conn, c => ar::table.find(id).select(RequestRow::as_select()).first(c).await).optional()
}

/// Requests visible to `requester` (all requests when `None`), newest first.
pub async fn list_requests(
    conn: &mut Conn,
    requester: Option<i64>,
    open_only: bool,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<RequestRow>, i64)> {
    macro_rules! filtered {
        ($query:expr) => {{
            let mut query = $query;
            if let Some(user) = requester {
                query = query.filter(ar::requester_user_id.eq(user));
            }
            if open_only {
                query = query.filter(ar::status.ne_all(FINAL_STATUSES));
            }
            query
        }};
    }
    let (rows, total) = on_conn!(conn, c => {
        let rows = filtered!(ar::table.select(RequestRow::as_select()).into_boxed())
            .order(ar::id.desc())
            .limit(limit)
            .offset(offset)
            .load(c)
            .await?;
        let total: i64 = filtered!(ar::table.count().into_boxed()).get_result(c).await?;
        (rows, total)
    });
    Ok((rows, total))
}

pub async fn timeline(conn: &mut Conn, id: i64) -> QueryResult<Vec<TimelineEntry>> {
    on_conn!(conn, c => entity_transitions::table
        .filter(entity_transitions::entity_type.eq(ENTITY).and(entity_transitions::entity_id.eq(id)))
        .order((entity_transitions::at.asc(), entity_transitions::id.asc()))
        .limit(500)
        .select(TimelineEntry::as_select())
        .load(c)
        .await)
}

/// Request statuses in which the dispatch engine works a request (and a node holds its lease).
pub const WAITING_STATUSES: [&str; 5] = ["requested", "offered", "queued", "no_unit_available", "escalated"];

/// Request statuses of a call waiting in the dispatch queue.
pub const QUEUE_STATUSES: [&str; 3] = ["queued", "no_unit_available", "escalated"];

/// A waiting call's place in the queue: 1 + the waiting calls served before it (a more urgent
/// category, or the same category received earlier).
pub async fn queue_position(conn: &mut Conn, row: &RequestRow) -> QueryResult<i64> {
    let (category, received, id) = (row.category, row.call_received_at, row.id);
    let ahead: i64 = on_conn!(conn, c => ar::table
        .filter(ar::status.eq_any(QUEUE_STATUSES))
        .filter(
            ar::category.lt(category).or(ar::category.eq(category).and(
                ar::call_received_at
                    .lt(received)
                    .or(ar::call_received_at.eq(received).and(ar::id.lt(id))),
            )),
        )
        .count()
        .get_result(c)
        .await)?;
    Ok(ahead + 1)
}

/// A request never leased (created by a node that died before its first renewal) is adoptable once it
/// has not changed for this long: every live node renews its leases each second.
pub const UNLEASED_GRACE: chrono::TimeDelta = chrono::TimeDelta::seconds(3);

/// Requests the engine should be working whose lease lapsed (their node died or stalled), oldest first.
pub async fn lease_lapsed(conn: &mut Conn, now: NaiveDateTime, limit: i64) -> QueryResult<Vec<RequestRow>> {
    let unleased_before = now - UNLEASED_GRACE;
    on_conn!(conn, c => ar::table
        .filter(ar::status.eq_any(WAITING_STATUSES))
        .filter(
            ar::dispatch_lease_until
                .lt(now)
                .or(ar::dispatch_lease_until.is_null().and(ar::updated_at.lt(unleased_before))),
        )
        .order((ar::category.asc(), ar::call_received_at.asc()))
        .limit(limit)
        .select(RequestRow::as_select())
        .load(c)
        .await)
}

/// Takes over a request whose lease lapsed: one conditional write on the lease, so exactly one node
/// wins; `None` if it was renewed, taken or settled meanwhile.
pub async fn adopt(
    conn: &mut Conn,
    id: i64,
    node: &str,
    now: NaiveDateTime,
    until: NaiveDateTime,
) -> QueryResult<Option<RequestRow>> {
    let unleased_before = now - UNLEASED_GRACE;
    on_conn!(conn, c => diesel::update(
            ar::table
                .find(id)
                .filter(ar::status.eq_any(WAITING_STATUSES))
                .filter(
                    ar::dispatch_lease_until
                        .lt(now)
                        .or(ar::dispatch_lease_until.is_null().and(ar::updated_at.lt(unleased_before))),
                ),
        )
        .set((ar::dispatch_node.eq(node), ar::dispatch_lease_until.eq(until)))
        .returning(RequestRow::as_returning())
        .get_result(c)
        .await)
    .optional()
}

/// Renews this node's leases on the requests it works, until `urgent_until` for categories 1–2 and
/// `until` for the others, unless another node holds an unexpired lease. Returns the ids renewed.
pub async fn renew_leases(
    conn: &mut Conn,
    ids: &[i64],
    node: &str,
    now: NaiveDateTime,
    urgent_until: NaiveDateTime,
    until: NaiveDateTime,
) -> QueryResult<Vec<i64>> {
    let mut renewed = Vec::with_capacity(ids.len());
    for (urgent, expiry) in [(true, urgent_until), (false, until)] {
        let ids = ids.to_vec();
        let node = node.to_owned();
        let rows: Vec<i64> = on_conn!(conn, c => {
            let mine = ar::dispatch_node
                .is_null()
                .or(ar::dispatch_node.eq(node.clone()))
                .or(ar::dispatch_lease_until.lt(now))
                .or(ar::dispatch_lease_until.is_null());
            let targets = ar::table.filter(ar::id.eq_any(ids.clone())).filter(mine);
            if urgent {
                diesel::update(targets.filter(ar::category.le(2)))
                    .set((ar::dispatch_node.eq(node.clone()), ar::dispatch_lease_until.eq(expiry)))
                    .returning(ar::id)
                    .load(c)
                    .await
            } else {
                diesel::update(targets.filter(ar::category.gt(2)))
                    .set((ar::dispatch_node.eq(node.clone()), ar::dispatch_lease_until.eq(expiry)))
                    .returning(ar::id)
                    .load(c)
                    .await
            }
        })?;
        renewed.extend(rows);
    }
    Ok(renewed)
}

/// Units whose stored position is recent enough to dispatch from, as the fleet index holds them.
pub async fn recent_positions(db: &super::Db) -> Result<Vec<onemedi_actors::fleet::Unit>, super::DbError> {
    use onemedi_actors::{
        fleet::{Capabilities, DEFAULT_STALE_AFTER, Unit},
        ids::UnitId,
        position::Position,
    };
    let since = super::now() - chrono::TimeDelta::from_std(DEFAULT_STALE_AFTER).unwrap_or_default();
    let mut conn = db.read().await?;
    let rows = on_conn!(&mut conn, c => units::table
        .filter(units::is_active.eq(true).and(units::last_seen_at.ge(since)))
        .limit(100_000)
        .select(UnitRow::as_select())
        .load(c)
        .await)?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let position = Position::new(row.last_lat?, row.last_lng?).ok()?;
            Some(Unit {
                id: UnitId(row.id),
                kind: unit_kind(&row.kind)?,
                position,
                heading_deg: 0.0,
                speed_mps: 0.0,
                status: crate::bus::fleet_status(&row.status),
                capabilities: Capabilities::from_bits(u32::try_from(row.capabilities).unwrap_or(0)),
                last_seen: row.last_seen_at?.and_utc(),
            })
        })
        .collect())
}

/// The fleet's kind of a stored unit kind.
pub fn unit_kind(stored: &str) -> Option<onemedi_actors::fleet::UnitKind> {
    use onemedi_actors::fleet::UnitKind;
    match stored {
        "als" => Some(UnitKind::AmbulanceAls),
        "bls" => Some(UnitKind::AmbulanceBls),
        "rider" => Some(UnitKind::Rider),
        "phlebotomist" => Some(UnitKind::Phlebotomist),
        _ => None,
    }
}

/// What settling an offer did.
#[derive(Debug, Clone)]
pub struct Settled {
    pub job: SettledJob,
    pub unit: UnitRow,
}

/// The job row after its offer was accepted.
#[derive(Debug, Clone)]
pub enum SettledJob {
    AmbulanceRequest(Box<RequestRow>),
    Order(Box<super::orders::Order>),
}

impl Settled {
    /// The ambulance request, when the job was one.
    pub fn request(self) -> Option<RequestRow> {
        match self.job {
            SettledJob::AmbulanceRequest(row) => Some(*row),
            SettledJob::Order(_) => None,
        }
    }
}

/// Why an offer could not be answered: reads the offer row and says what became of it.
async fn offer_problem(conn: &mut Conn, job: EntityKey, unit: i64, now: NaiveDateTime) -> EmergencyError {
    let (kind, request) = (job.kind().as_str(), job.raw_id());
    let row = on_conn!(conn, c => dispatch_offers::table
        .filter(
            dispatch_offers::request_kind
                .eq(kind)
                .and(dispatch_offers::request_id.eq(request))
                .and(dispatch_offers::unit_id.eq(unit)),
        )
        .select((dispatch_offers::status, dispatch_offers::expires_at))
        .first::<(String, NaiveDateTime)>(c)
        .await)
    .optional();
    match row {
        Err(error) => error.into(),
        Ok(None) => EmergencyError::OfferNotFound,
        Ok(Some((status, expires_at))) => match status.as_str() {
            "expired" => EmergencyError::OfferExpired,
            "offered" if expires_at <= now => EmergencyError::OfferExpired,
            _ => EmergencyError::OfferClosed,
        },
    }
}

/// The crew of `unit` accepts the open offer of `job` (an ambulance request or an order's delivery): in
/// one transaction the offer moves from `offered` (and unexpired) to `accepted`, the unit from
/// `available` to assigned to this job, and the job to this unit — an ambulance request from `offered`
/// to this unit to `assigned`, an order from `packed` with no rider to `packed` with this rider. Each
/// write is conditional; if any finds the row changed, everything rolls back and the error says why.
pub async fn accept_offer(
    conn: &mut Conn,
    job: EntityKey,
    unit: i64,
    by_user: i64,
) -> Result<Settled, EmergencyError> {
    let now = super::now();
    let (kind, request) = (job.kind().as_str(), job.raw_id());
    if !matches!(job, EntityKey::AmbulanceRequest(_) | EntityKey::Order(_)) {
        return Err(EmergencyError::OfferNotFound);
    }
    let outcome = with_retries(conn, async |conn| {
        on_conn!(conn, c => c.transaction(async move |c| {
            let offer = diesel::update(dispatch_offers::table.filter(
                dispatch_offers::request_kind
                    .eq(kind)
                    .and(dispatch_offers::request_id.eq(request))
                    .and(dispatch_offers::unit_id.eq(unit))
                    .and(dispatch_offers::status.eq("offered"))
                    .and(dispatch_offers::expires_at.gt(now)),
            ))
            .set((
                dispatch_offers::status.eq("accepted"),
                dispatch_offers::responded_at.eq(now),
                dispatch_offers::version.eq(dispatch_offers::version + 1),
            ))
            .returning(dispatch_offers::id)
            .prepared()
            .get_result::<i64>(c)
            .await
            .optional()?;
            let Some(offer_id) = offer else {
                return Err(EmergencyError::OfferNotFound);
            };
            let claimed = diesel::update(units::table.find(unit).filter(units::status.eq("available")))
                .set((
                    units::status.eq("assigned"),
                    units::request_kind.eq(kind),
                    units::request_id.eq(request),
                    units::version.eq(units::version + 1),
                    units::updated_at.eq(now),
                ))
                .returning(UnitRow::as_returning())
                .prepared()
                .get_result(c)
                .await
                .optional()?
                .ok_or(EmergencyError::UnitUnavailable)?;
            let (taken, event, from, to) = if let EntityKey::Order(_) = job {
                let order = diesel::update(orders::table.find(request).filter(
                    orders::status.eq("packed").and(orders::rider_unit_id.is_null()),
                ))
                .set((
                    orders::rider_unit_id.eq(unit),
                    orders::version.eq(orders::version + 1),
                    orders::updated_at.eq(now),
                ))
                .returning(super::orders::Order::as_returning())
                .prepared()
                .get_result(c)
                .await
                .optional()?
                .ok_or(EmergencyError::OfferClosed)?;
                (SettledJob::Order(Box::new(order)), "assign_rider", "packed", "packed")
            } else {
                let assigned = diesel::update(ar::table.find(request).filter(
                    ar::status.eq("offered").and(ar::assigned_unit_id.eq(unit)),
                ))
                .set((
                    ar::status.eq("assigned"),
                    ar::notified_at.eq(now),
                    ar::version.eq(ar::version + 1),
                    ar::updated_at.eq(now),
                ))
                .returning(RequestRow::as_returning())
                .prepared()
                .get_result(c)
                .await
                .optional()?
                .ok_or(EmergencyError::OfferClosed)?;
                (SettledJob::AmbulanceRequest(Box::new(assigned)), "assign", "offered", "assigned")
            };
            let command = format!("accept:{offer_id}");
            diesel::insert_into(entity_transitions::table)
                .values(NewTransition {
                    entity_type: kind,
                    entity_id: request,
                    event,
                    from_status: Some(from),
                    to_status: to,
                    actor_user_id: Some(by_user),
                    actor_unit_id: Some(unit),
                    reason: None,
                    command_id: Some(&command),
                    at: now,
                    details: None,
                })
                .prepared()
                .execute(c)
                .await?;
            Ok(Settled { job: taken, unit: claimed })
        }).await)
    })
    .await;
    match outcome {
        Err(EmergencyError::OfferNotFound) => Err(offer_problem(conn, job, unit, now).await),
        Err(EmergencyError::UnitUnavailable) => {
            // The unit went elsewhere: close this offer so it is not answered again.
            close_offer(conn, job, unit, "taken", None).await?;
            Err(EmergencyError::UnitUnavailable)
        }
        other => other,
    }
}

/// The crew of `unit` declines the open offer of `request` (only an unexpired, unanswered one).
pub async fn decline_offer(
    conn: &mut Conn,
    job: EntityKey,
    unit: i64,
    by_user: i64,
    reason: Option<&str>,
) -> Result<(), EmergencyError> {
    let now = super::now();
    let (kind, request) = (job.kind().as_str(), job.raw_id());
    // The job's status is unchanged by a decline: an ambulance request stays offered, an order packed.
    let status = if let EntityKey::Order(_) = job {
        "packed"
    } else {
        "offered"
    };
    let outcome = on_conn!(conn, c => c.transaction(async move |c| {
        let declined = diesel::update(dispatch_offers::table.filter(
            dispatch_offers::request_kind
                .eq(kind)
                .and(dispatch_offers::request_id.eq(request))
                .and(dispatch_offers::unit_id.eq(unit))
                .and(dispatch_offers::status.eq("offered"))
                .and(dispatch_offers::expires_at.gt(now)),
        ))
        .set((
            dispatch_offers::status.eq("declined"),
            dispatch_offers::decline_reason.eq(reason),
            dispatch_offers::responded_at.eq(now),
            dispatch_offers::version.eq(dispatch_offers::version + 1),
        ))
        .returning(dispatch_offers::id)
        .prepared()
        .get_result::<i64>(c)
        .await
        .optional()?;
        let Some(offer_id) = declined else {
            return Err(EmergencyError::OfferNotFound);
        };
        let command = format!("decline:{offer_id}");
        diesel::insert_into(entity_transitions::table)
            .values(NewTransition {
                entity_type: kind,
                entity_id: request,
                event: "decline",
                from_status: Some(status),
                to_status: status,
                actor_user_id: Some(by_user),
                actor_unit_id: Some(unit),
                reason,
                command_id: Some(&command),
                at: now,
                details: None,
            })
            .prepared()
            .execute(c)
            .await?;
        Ok(())
    }).await);
    match outcome {
        Err(EmergencyError::OfferNotFound) => Err(offer_problem(conn, job, unit, now).await),
        other => other,
    }
}

/// Marks an open offer `status` (`taken`, `expired`).
async fn close_offer(
    conn: &mut Conn,
    job: EntityKey,
    unit: i64,
    status: &str,
    now: Option<NaiveDateTime>,
) -> QueryResult<usize> {
    let now = now.unwrap_or_else(super::now);
    let (kind, request) = (job.kind().as_str(), job.raw_id());
    on_conn!(conn, c => diesel::update(dispatch_offers::table.filter(
            dispatch_offers::request_kind
                .eq(kind)
                .and(dispatch_offers::request_id.eq(request))
                .and(dispatch_offers::unit_id.eq(unit))
                .and(dispatch_offers::status.eq("offered")),
        ))
        .set((dispatch_offers::status.eq(status), dispatch_offers::responded_at.eq(now)))
        .prepared()
        .execute(c)
        .await)
}

/// A dispatcher assigns `unit` to `request` by hand, through the same conditional claim as a crew's
/// acceptance: the unit must be available, the request still unassigned (or offered, or escalated).
/// An open offer to another unit is withdrawn. `command` makes a retried call a no-op.
pub async fn assign_manually(
    conn: &mut Conn,
    request: i64,
    unit: i64,
    by_user: i64,
    command: &str,
) -> Result<Settled, EmergencyError> {
    let now = super::now();
    with_retries(conn, async |conn| {
        on_conn!(conn, c => c.transaction(async move |c| {
            let current = ar::table
                .find(request)
                .select(RequestRow::as_select())
                .first(c)
                .await
                .optional()?
                .ok_or(EmergencyError::RequestNotFound)?;
            if !ASSIGNABLE_STATUSES.contains(&current.status.as_str()) {
                return Err(EmergencyError::RequestState(current.status));
            }
            if current.status == "assigned"
                && let Some(previous) = current.assigned_unit_id
            {
                // Reassignment: the previous unit goes back to available, if it has not set off.
                let released = diesel::update(units::table.find(previous).filter(
                    units::status
                        .eq("assigned")
                        .and(units::request_kind.eq(ENTITY))
                        .and(units::request_id.eq(request)),
                ))
                .set((
                    units::status.eq("available"),
                    units::request_kind.eq(None::<String>),
                    units::request_id.eq(None::<i64>),
                    units::version.eq(units::version + 1),
                    units::updated_at.eq(now),
                ))
                .prepared()
                .execute(c)
                .await?;
                if released == 0 {
                    return Err(EmergencyError::RequestState("assigned, and its unit has set off".to_owned()));
                }
            }
            let claimed = diesel::update(units::table.find(unit).filter(units::status.eq("available")))
                .set((
                    units::status.eq("assigned"),
                    units::request_kind.eq(ENTITY),
                    units::request_id.eq(request),
                    units::version.eq(units::version + 1),
                    units::updated_at.eq(now),
                ))
                .returning(UnitRow::as_returning())
                .prepared()
                .get_result(c)
                .await
                .optional()?;
            let Some(claimed) = claimed else {
                let exists = units::table.find(unit).select(units::id).first::<i64>(c).await.optional()?;
                return Err(if exists.is_some() {
                    EmergencyError::UnitUnavailable
                } else {
                    EmergencyError::UnitNotFound
                });
            };
            let assigned = diesel::update(ar::table.find(request).filter(ar::version.eq(current.version)))
                .set((
                    ar::status.eq("assigned"),
                    ar::assigned_unit_id.eq(unit),
                    ar::notified_at.eq(now),
                    ar::version.eq(ar::version + 1),
                    ar::updated_at.eq(now),
                ))
                .returning(RequestRow::as_returning())
                .prepared()
                .get_result(c)
                .await
                .optional()?
                .ok_or_else(|| EmergencyError::RequestState(CHANGED_MEANWHILE.to_owned()))?;
            diesel::update(dispatch_offers::table.filter(
                dispatch_offers::request_kind
                    .eq(ENTITY)
                    .and(dispatch_offers::request_id.eq(request))
                    .and(dispatch_offers::status.eq("offered")),
            ))
            .set((dispatch_offers::status.eq("taken"), dispatch_offers::responded_at.eq(now)))
            .prepared()
            .execute(c)
            .await?;
            diesel::insert_into(entity_transitions::table)
                .values(NewTransition {
                    entity_type: ENTITY,
                    entity_id: request,
                    event: "manual_assign",
                    from_status: Some(&current.status),
                    to_status: "assigned",
                    actor_user_id: Some(by_user),
                    actor_unit_id: Some(unit),
                    reason: None,
                    command_id: Some(command),
                    at: now,
                    details: None,
                })
                .prepared()
                .execute(c)
                .await?;
            Ok(Settled { job: SettledJob::AmbulanceRequest(Box::new(assigned)), unit: claimed })
        }).await)
    })
    .await
}

/// Units that may be taken for a more urgent call: of one of `kinds`, on their way to (not yet with)
/// a call of category `min_category` or less urgent. Returns (unit, its request, that request's
/// category).
pub async fn preemptable(
    conn: &mut Conn,
    kinds: &[&'static str],
    min_category: i32,
) -> QueryResult<Vec<(i64, i64, i32)>> {
    let kinds = kinds.to_vec();
    on_conn!(conn, c => units::table
        .inner_join(ar::table.on(units::request_id.eq(ar::id.nullable())))
        .filter(units::request_kind.eq(ENTITY))
        .filter(units::kind.eq_any(kinds))
        .filter(units::status.eq_any(["assigned", "en_route"]))
        .filter(ar::status.eq_any(["assigned", "en_route"]))
        .filter(ar::assigned_unit_id.eq(units::id.nullable()))
        .filter(ar::category.ge(min_category))
        .limit(500)
        .select((units::id, ar::id, ar::category))
        .load(c)
        .await)
}

/// Calls of this category or less urgent may lose their unit to a more urgent call; never 1 or 2.
pub const PREEMPTABLE_FROM_CATEGORY: i32 = 3;

/// What a preemption changed.
#[derive(Debug, Clone)]
pub struct Preemption {
    /// The urgent request, now assigned to the unit.
    pub urgent: RequestRow,
    /// The request the unit was taken from, back in the queue, leased to the preempting node.
    pub requeued: RequestRow,
    /// Its status before.
    pub requeued_from: String,
    /// The urgent request's status before.
    pub urgent_from: String,
    /// The unit, now assigned to the urgent request.
    pub unit: UnitRow,
}

/// Takes `unit` from the less urgent request it is on its way to and gives it to `urgent`, in one
/// transaction of conditional writes: the other request goes back to `queued` (its call time kept, its
/// notified and en-route times cleared, leased to `node` which dispatches it again), the unit's claim
/// moves, the urgent request is assigned, and both timelines record it. Refused — nothing written —
/// when any of them moved meanwhile (the unit reached the patient, the urgent call was taken or
/// cancelled), or when the machines forbid it.
pub async fn preempt(
    conn: &mut Conn,
    urgent: i64,
    unit: i64,
    node: &str,
    lease_until: NaiveDateTime,
) -> Result<Preemption, EmergencyError> {
    // A row read here may be written by another transaction before this one's conditional writes (the
    // dispatcher recording the urgent call's wait, the crew setting off): that is no reason to give up,
    // so the transaction is run again on fresh rows, a few times.
    let mut attempts = 0;
    loop {
        attempts += 1;
        match preempt_once(conn, urgent, unit, node, lease_until).await {
            Err(EmergencyError::RequestState(state)) if state == CHANGED_MEANWHILE && attempts < 4 => {
                tokio::task::yield_now().await;
            }
            other => return other,
        }
    }
}

/// What [`preempt`] reports when a row it read was written meanwhile.
const CHANGED_MEANWHILE: &str = "changed meanwhile";

async fn preempt_once(
    conn: &mut Conn,
    urgent: i64,
    unit: i64,
    node: &str,
    lease_until: NaiveDateTime,
) -> Result<Preemption, EmergencyError> {
    use onemedi_actors::{
        ids::UnitId,
        machines::{AmbulanceEvent, AmbulanceStatus},
    };
    let now = super::now();
    let node = node.to_owned();
    with_retries(conn, async |conn| {
        let node = node.clone();
        on_conn!(conn, c => c.transaction(async move |c| {
            let high = ar::table
                .find(urgent)
                .select(RequestRow::as_select())
                .first(c)
                .await
                .optional()?
                .ok_or(EmergencyError::RequestNotFound)?;
            let taken = units::table
                .find(unit)
                .select(UnitRow::as_select())
                .first(c)
                .await
                .optional()?
                .ok_or(EmergencyError::UnitNotFound)?;
            let (Some(ENTITY), Some(low_id)) = (taken.request_kind.as_deref(), taken.request_id) else {
                return Err(EmergencyError::UnitUnavailable);
            };
            let low = ar::table
                .find(low_id)
                .select(RequestRow::as_select())
                .first(c)
                .await
                .optional()?
                .ok_or(EmergencyError::UnitUnavailable)?;
            if low.category <= high.category
                || low.category < PREEMPTABLE_FROM_CATEGORY
                || low.assigned_unit_id != Some(unit)
            {
                return Err(EmergencyError::UnitUnavailable);
            }
            let machine = |row: &RequestRow| {
                super::entity_store::ambulance_status(&row.status, row.assigned_unit_id)
                    .ok_or_else(|| EmergencyError::RequestState(row.status.clone()))
            };
            let (low_state, high_state) = (machine(&low)?, machine(&high)?);
            if low_state.transition(&AmbulanceEvent::Preempt) != Ok(AmbulanceStatus::Queued) {
                return Err(EmergencyError::UnitUnavailable);
            }
            if !matches!(high.status.as_str(), "requested" | "offered" | "queued" | "no_unit_available" | "escalated")
                || high_state.transition(&AmbulanceEvent::Assign(UnitId(unit))).is_err()
            {
                return Err(EmergencyError::RequestState(high.status.clone()));
            }
            let requeued = diesel::update(ar::table.find(low.id).filter(ar::version.eq(low.version)))
                .set((
                    ar::status.eq("queued"),
                    ar::assigned_unit_id.eq(None::<i64>),
                    ar::notified_at.eq(None::<NaiveDateTime>),
                    ar::en_route_at.eq(None::<NaiveDateTime>),
                    ar::dispatch_node.eq(node.clone()),
                    ar::dispatch_lease_until.eq(lease_until),
                    ar::version.eq(ar::version + 1),
                    ar::updated_at.eq(now),
                ))
                .returning(RequestRow::as_returning())
                .get_result(c)
                .await
                .optional()?
                .ok_or_else(|| EmergencyError::RequestState(CHANGED_MEANWHILE.to_owned()))?;
            let moved = diesel::update(units::table.find(unit).filter(
                units::request_kind
                    .eq(ENTITY)
                    .and(units::request_id.eq(low.id))
                    .and(units::status.eq_any(["assigned", "en_route"])),
            ))
            .set((
                units::status.eq("assigned"),
                units::request_id.eq(high.id),
                units::version.eq(units::version + 1),
                units::updated_at.eq(now),
            ))
            .returning(UnitRow::as_returning())
            .get_result(c)
            .await
            .optional()?
            .ok_or(EmergencyError::UnitUnavailable)?;
            let assigned = diesel::update(ar::table.find(high.id).filter(ar::version.eq(high.version)))
                .set((
                    ar::status.eq("assigned"),
                    ar::assigned_unit_id.eq(unit),
                    ar::notified_at.eq(now),
                    ar::version.eq(ar::version + 1),
                    ar::updated_at.eq(now),
                ))
                .returning(RequestRow::as_returning())
                .get_result(c)
                .await
                .optional()?
                .ok_or_else(|| EmergencyError::RequestState(CHANGED_MEANWHILE.to_owned()))?;
            diesel::update(dispatch_offers::table.filter(
                dispatch_offers::request_kind
                    .eq(ENTITY)
                    .and(dispatch_offers::request_id.eq(high.id))
                    .and(dispatch_offers::status.eq("offered")),
            ))
            .set((dispatch_offers::status.eq("taken"), dispatch_offers::responded_at.eq(now)))
            .execute(c)
            .await?;
            let to_low = format!("unit {} taken for category {} call {}", taken.call_sign, high.category, high.id);
            let to_high = format!(
                "preempted unit {} from category {} call {}",
                taken.call_sign, low.category, low.id
            );
            for (row, from, to, event, reason) in [
                (&low, low.status.as_str(), "queued", "preempt", to_low),
                (&high, high.status.as_str(), "assigned", "assign", to_high),
            ] {
                diesel::insert_into(entity_transitions::table)
                    .values(NewTransition {
                        entity_type: ENTITY,
                        entity_id: row.id,
                        event,
                        from_status: Some(from),
                        to_status: to,
                        actor_user_id: None,
                        actor_unit_id: Some(unit),
                        reason: Some(&reason),
                        command_id: Some(&format!("preempt:{}:{}:{}", row.id, unit, row.version)),
                        at: now,
                        details: None,
                    })
                    .execute(c)
                    .await?;
            }
            Ok(Preemption {
                urgent: assigned,
                requeued,
                requeued_from: low.status,
                urgent_from: high.status,
                unit: moved,
            })
        }).await)
    })
    .await
}

/// The unit `user` crews (the lowest id if several).
pub async fn unit_of_crew(conn: &mut Conn, user: i64) -> QueryResult<Option<i64>> {
    on_conn!(conn, c => unit_crew::table
        .filter(unit_crew::user_id.eq(user))
        .order(unit_crew::unit_id.asc())
        .select(unit_crew::unit_id)
        .first::<i64>(c)
        .await)
    .optional()
}

/// The active unit `user` crews (the lowest id if several), as the websocket picks it.
pub async fn active_unit_of_crew(conn: &mut Conn, user: i64) -> QueryResult<Option<i64>> {
    on_conn!(conn, c => unit_crew::table
        .inner_join(units::table)
        .filter(unit_crew::user_id.eq(user))
        .filter(units::is_active.eq(true))
        .order(units::id.asc())
        .select(units::id)
        .first::<i64>(c)
        .await)
    .optional()
}

/// Records why a request was called off.
pub async fn set_cancel_reason(conn: &mut Conn, request: i64, reason: Option<&str>) -> QueryResult<usize> {
    on_conn!(conn, c => diesel::update(ar::table.find(request).filter(ar::status.eq("cancelled")))
        .set(ar::cancel_reason.eq(reason))
        .prepared()
        .execute(c)
        .await)
}

/// A row of the hospitals a crew may take a patient to.
#[derive(Debug, Clone, Queryable)]
pub struct HospitalCapacity {
    pub id: i64,
    pub name: String,
    pub lat: f64,
    pub lng: f64,
    pub beds_emergency_available: i32,
    pub beds_icu_available: i32,
    pub beds_general_available: i32,
}

/// Emergency-capable active hospitals inside a box around a point (bounded).
pub async fn hospitals_near(
    conn: &mut Conn,
    lat: f64,
    lng: f64,
    half_side_deg: f64,
) -> QueryResult<Vec<HospitalCapacity>> {
    on_conn!(conn, c => hospitals::table
        .filter(hospitals::is_active.eq(true).and(hospitals::emergency_capable.eq(true)))
        .filter(hospitals::lat.between(lat - half_side_deg, lat + half_side_deg))
        .filter(hospitals::lng.between(lng - half_side_deg, lng + half_side_deg))
        .limit(200)
        .select((
            hospitals::id,
            hospitals::name,
            hospitals::lat,
            hospitals::lng,
            hospitals::beds_emergency_available,
            hospitals::beds_icu_available,
            hospitals::beds_general_available,
        ))
        .load(c)
        .await)
}

/// Records the hospital a crew is taking the patient to (while on scene or transporting).
pub async fn set_destination(conn: &mut Conn, request: i64, hospital: i64) -> Result<(), EmergencyError> {
    let now = super::now();
    let exists = on_conn!(conn, c => hospitals::table
        .find(hospital)
        .filter(hospitals::is_active.eq(true))
        .select(hospitals::id)
        .first::<i64>(c)
        .await)
    .optional()?;
    if exists.is_none() {
        return Err(EmergencyError::Db(diesel::result::Error::NotFound));
    }
    let changed = on_conn!(conn, c => diesel::update(
            ar::table.find(request).filter(ar::status.eq_any(["on_scene", "transporting"])),
        )
        .set((ar::destination_hospital_id.eq(hospital), ar::updated_at.eq(now)))
        .prepared()
        .execute(c)
        .await)?;
    if changed == 0 {
        return Err(EmergencyError::RequestState("not on scene".to_owned()));
    }
    Ok(())
}

/// Every ambulance for the board, with its crew; bounded.
pub async fn board_units(conn: &mut Conn) -> QueryResult<Vec<UnitRow>> {
    on_conn!(conn, c => units::table
        .filter(units::kind.eq_any(["als", "bls"]).and(units::is_active.eq(true)))
        .order(units::id.asc())
        .limit(1000)
        .select(UnitRow::as_select())
        .load(c)
        .await)
}

/// Requests that are not over, oldest call first; bounded.
pub async fn open_requests(conn: &mut Conn) -> QueryResult<Vec<RequestRow>> {
    on_conn!(conn, c => ar::table
        .filter(ar::status.ne_all(FINAL_STATUSES))
        .order(ar::call_received_at.asc())
        .limit(1000)
        .select(RequestRow::as_select())
        .load(c)
        .await)
}

/// Most requests one response-time figure is computed over.
const MAX_RESPONSE_TIMES: i64 = 100_000;

/// `(category, call received, on scene, status)` of one ambulance request.
pub type ResponseTime = (i32, NaiveDateTime, Option<NaiveDateTime>, String);

/// The [`ResponseTime`]s of requests received since `since`.
pub async fn response_times(conn: &mut Conn, since: NaiveDateTime) -> QueryResult<Vec<ResponseTime>> {
    on_conn!(conn, c => ar::table
        .filter(ar::call_received_at.ge(since))
        .order(ar::id.asc())
        .limit(MAX_RESPONSE_TIMES)
        .select((ar::category, ar::call_received_at, ar::on_scene_at, ar::status))
        .load(c)
        .await)
}

/// The [`ResponseTime`]s of requests received in `[from, until)`; bounded.
pub async fn response_times_between(
    conn: &mut Conn,
    from: NaiveDateTime,
    until: NaiveDateTime,
) -> QueryResult<Vec<ResponseTime>> {
    on_conn!(conn, c => ar::table
        .filter(ar::call_received_at.ge(from).and(ar::call_received_at.lt(until)))
        .order(ar::id.asc())
        .limit(MAX_RESPONSE_TIMES)
        .select((ar::category, ar::call_received_at, ar::on_scene_at, ar::status))
        .load(c)
        .await)
}

/// Records a breach warning once per request: the timeline's unique command id decides which node
/// announces it. Returns `true` for the caller that recorded it.
pub async fn record_breach_warning(conn: &mut Conn, request: &RequestRow, reason: &str) -> QueryResult<bool> {
    let now = super::now();
    let inserted = on_conn!(conn, c => diesel::insert_into(entity_transitions::table)
        .values(NewTransition {
            entity_type: ENTITY,
            entity_id: request.id,
            event: "breach_predicted",
            from_status: Some(&request.status),
            to_status: &request.status,
            actor_user_id: None,
            actor_unit_id: None,
            reason: Some(reason),
            command_id: Some("breach_predicted"),
            at: now,
            details: None,
        })
        .prepared()
        .execute(c)
        .await);
    match inserted {
        Ok(_) => Ok(true),
        Err(diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)) => {
            Ok(false)
        }
        Err(error) => Err(error),
    }
}
