//! Home lab collections: booking, the offer of a collection to a phlebotomist and the capacity claim
//! that settles it, the lifecycle (through the actors' `LabStatus` transition function), the
//! collector's day and the at-risk check. Every exclusive step is one conditional write.

use chrono::{NaiveDate, NaiveDateTime, TimeDelta};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use onemedi_actors::{
    ids::UnitId,
    machines::{LabEvent, LabStatus, TransitionError},
};
use serde::Serialize;
use utoipa::ToSchema;

use super::{
    Conn, Retryable,
    emergency::NewTransition,
    schema::{
        addresses, dispatch_offers, entity_transitions, lab_collection_items as items, lab_collections as lc,
        lab_tests, phlebotomist_window_loads as loads, phlebotomists as ph, units,
    },
    with_retries,
};
use crate::on_conn;

/// The `entity_type` of lab collections in `entity_transitions` and `dispatch_offers.request_kind`.
pub const ENTITY: &str = "lab_collection";

/// The collection windows a customer may book, India time (`HH:MM-HH:MM`).
pub const WINDOWS: [&str; 8] = [
    "06:00-08:00",
    "07:00-09:00",
    "08:00-10:00",
    "09:00-11:00",
    "10:00-12:00",
    "12:00-14:00",
    "14:00-16:00",
    "16:00-18:00",
];

/// A window's start and end in minutes after local midnight; `None` for a window not in [`WINDOWS`].
pub fn window_minutes(window: &str) -> Option<(i32, i32)> {
    if !WINDOWS.contains(&window) {
        return None;
    }
    let minutes = |hhmm: &str| -> Option<i32> {
        let (h, m) = hhmm.split_once(':')?;
        Some(h.parse::<i32>().ok()? * 60 + m.parse::<i32>().ok()?)
    };
    let (start, end) = window.split_once('-')?;
    Some((minutes(start)?, minutes(end)?))
}

/// How long a sample type stays fit for analysis between collection and the lab, in hours, carried in
/// the collector's cool box (2–8 °C) and unprocessed. A test's own `stability_hours` may be shorter
/// (it wins); this table caps what the catalog may claim for its sample type.
///
/// - blood: EDTA whole blood for a complete blood count is stable about 24 h (ICSH guidance, e.g.
///   Zandecki et al., Int J Lab Hematol 2007;29:4–20); serum/plasma chemistry wants separation within
///   2 h (CLSI GP44-A4), which tests such as ESR or glucose carry as their own shorter hours.
/// - urine: routine urinalysis within 2 h at room temperature, up to 24 h refrigerated (CLSI GP16-A3).
/// - stool and sputum: unpreserved specimens within 2 h for culture and microscopy (Miller et al., IDSA/
///   ASM guide to utilization of the microbiology laboratory, Clin Infect Dis 2018;67:e1–e94).
/// - swab in viral transport medium: up to 72 h at 2–8 °C (CDC interim guidelines for clinical
///   specimens, 2020).
/// - saliva: 24 h refrigerated is the conservative figure used for saliva assays.
/// - mixed (packages): bounded by the shortest member, which the package's own hours carry; 24 h cap.
pub const SAMPLE_STABILITY_HOURS: [(&str, i32); 7] = [
    ("blood", 24),
    ("urine", 24),
    ("stool", 2),
    ("sputum", 2),
    ("swab", 72),
    ("saliva", 24),
    ("mixed", 24),
];

/// A test's effective stability window in minutes: its own hours, capped by its sample type's.
pub fn stability_minutes(sample_type: &str, test_hours: i32) -> i32 {
    let cap = SAMPLE_STABILITY_HOURS
        .iter()
        .find(|(kind, _)| *kind == sample_type)
        .map_or(2, |(_, hours)| *hours);
    test_hours.clamp(1, cap.max(1)) * 60
}

/// A stored collection.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = lc)]
pub struct CollectionRow {
    pub id: i64,
    pub user_id: i64,
    pub address_id: Option<i64>,
    pub patient_name: String,
    pub patient_age: Option<i32>,
    pub patient_gender: Option<String>,
    pub contact_phone: String,
    pub address_text: String,
    pub lat: f64,
    pub lng: f64,
    pub slot_date: NaiveDate,
    pub slot_window: String,
    pub status: String,
    pub phlebotomist_id: Option<i64>,
    pub unassigned_reason: Option<String>,
    pub total_paise: i64,
    pub assigned_at: Option<NaiveDateTime>,
    pub collected_at: Option<NaiveDateTime>,
    pub at_lab_at: Option<NaiveDateTime>,
    pub report_path: Option<String>,
    pub report_ready_at: Option<NaiveDateTime>,
    pub cancel_reason: Option<String>,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl CollectionRow {
    /// The state machine's view of the row (the machine's unit slot carries the phlebotomist's id).
    pub fn machine(&self) -> Option<LabStatus> {
        let with = |make: fn(UnitId) -> LabStatus| self.phlebotomist_id.map(|p| make(UnitId(p)));
        match self.status.as_str() {
            "booked" => Some(LabStatus::Booked),
            "unassigned" => Some(LabStatus::Unassigned),
            "assigned" => with(LabStatus::Assigned),
            "en_route" => with(LabStatus::EnRoute),
            "collected" => with(LabStatus::Collected),
            "at_lab" => Some(LabStatus::AtLab),
            "report_ready" => Some(LabStatus::ReportReady),
            "cancelled" => Some(LabStatus::Cancelled),
            _ => None,
        }
    }

    /// When the shortest-lived sample expires, once collected (`stability_minutes` from
    /// [`collection_stability`]).
    pub fn sample_deadline(&self, stability_minutes: i32) -> Option<NaiveDateTime> {
        self.collected_at?
            .checked_add_signed(TimeDelta::minutes(i64::from(stability_minutes)))
    }
}

/// A collection's stability window in minutes: its shortest-lived sample's.
pub fn collection_stability(items: &[CollectionItem]) -> i32 {
    items
        .iter()
        .map(|item| stability_minutes(&item.sample_type, item.stability_hours))
        .min()
        .unwrap_or(120)
}

/// The timeline's command id of the at-risk alert: unique per collection, so it is raised once.
pub const AT_RISK_COMMAND: &str = "alert:at_risk";

/// One test of a collection, priced and typed as it was at booking.
#[derive(Debug, Clone, Serialize, ToSchema, Queryable, Selectable)]
#[diesel(table_name = items)]
pub struct CollectionItem {
    pub lab_test_id: i64,
    pub test_name: String,
    pub sample_type: String,
    pub stability_hours: i32,
    pub price_paise: i64,
}

/// A booking, validated at the edge.
#[derive(Debug, Clone)]
pub struct NewBooking {
    pub user_id: i64,
    pub address_id: i64,
    pub test_ids: Vec<i64>,
    pub patient_name: String,
    pub patient_age: i32,
    pub patient_gender: Option<String>,
    pub contact_phone: String,
    pub slot_date: NaiveDate,
    pub slot_window: String,
}

/// Why a collection write did not happen. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("tests not available for home collection: {0:?}")]
    TestsUnavailable(Vec<i64>),
    #[error("address not found")]
    AddressNotFound,
    #[error("collection not found")]
    NotFound,
    #[error(transparent)]
    Illegal(#[from] TransitionError),
    #[error("the collection changed meanwhile")]
    Conflict,
    #[error("no offer of this collection to your unit")]
    OfferNotFound,
    #[error("the offer lapsed")]
    OfferExpired,
    #[error("the offer is closed")]
    OfferClosed,
    #[error("the collector has no capacity left in this window")]
    CollectorFull,
    #[error("the unit is not a phlebotomist's")]
    NotCollector,
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

impl Retryable for LabError {
    fn db_error(&self) -> Option<&diesel::result::Error> {
        match self {
            Self::Db(error) => Some(error),
            _ => None,
        }
    }
}

/// Books a collection in one transaction: the tests (active, collectable at home) priced from their
/// rows, the customer's own address copied in, the items and the first timeline row.
pub async fn book(conn: &mut Conn, booking: NewBooking) -> Result<CollectionRow, LabError> {
    let now = super::now();
    with_retries(conn, async |conn| {
        let booking = booking.clone();
        on_conn!(conn, c => c.transaction(async move |c| {
            let address = addresses::table
                .filter(addresses::id.eq(booking.address_id).and(addresses::user_id.eq(booking.user_id)))
                .select((
                    addresses::line1,
                    addresses::line2,
                    addresses::city,
                    addresses::pincode,
                    addresses::lat,
                    addresses::lng,
                ))
                .first::<(String, Option<String>, String, String, f64, f64)>(c)
                .await
                .optional()?
                .ok_or(LabError::AddressNotFound)?;
            let tests = lab_tests::table
                .filter(
                    lab_tests::id
                        .eq_any(&booking.test_ids)
                        .and(lab_tests::is_active.eq(true))
                        .and(lab_tests::home_collection.eq(true)),
                )
                .select((
                    lab_tests::id,
                    lab_tests::name,
                    lab_tests::sample_type,
                    lab_tests::stability_hours,
                    lab_tests::price_paise,
                ))
                .load::<(i64, String, String, i32, i64)>(c)
                .await?;
            let missing: Vec<i64> = booking
                .test_ids
                .iter()
                .copied()
                .filter(|id| !tests.iter().any(|t| t.0 == *id))
                .collect();
            if !missing.is_empty() {
                return Err(LabError::TestsUnavailable(missing));
            }
            let total: i64 = tests.iter().map(|t| t.4).sum();
            let (line1, line2, city, pincode, lat, lng) = address;
            let address_text = match line2 {
                Some(line2) => format!("{line1}, {line2}, {city} {pincode}"),
                None => format!("{line1}, {city} {pincode}"),
            };
            let row = diesel::insert_into(lc::table)
                .values((
                    lc::user_id.eq(booking.user_id),
                    lc::address_id.eq(booking.address_id),
                    lc::patient_name.eq(&booking.patient_name),
                    lc::patient_age.eq(booking.patient_age),
                    lc::patient_gender.eq(&booking.patient_gender),
                    lc::contact_phone.eq(&booking.contact_phone),
                    lc::address_text.eq(&address_text),
                    lc::lat.eq(lat),
                    lc::lng.eq(lng),
                    lc::slot_date.eq(booking.slot_date),
                    lc::slot_window.eq(&booking.slot_window),
                    lc::status.eq("booked"),
                    lc::total_paise.eq(total),
                    lc::created_at.eq(now),
                    lc::updated_at.eq(now),
                ))
                .returning(CollectionRow::as_returning())
                .get_result(c)
                .await?;
            for (test_id, name, sample_type, hours, price) in &tests {
                diesel::insert_into(items::table)
                    .values((
                        items::lab_collection_id.eq(row.id),
                        items::lab_test_id.eq(test_id),
                        items::test_name.eq(name),
                        items::sample_type.eq(sample_type),
                        items::stability_hours.eq(hours),
                        items::price_paise.eq(price),
                        items::created_at.eq(now),
                    ))
                    .execute(c)
                    .await?;
            }
            diesel::insert_into(entity_transitions::table)
                .values(NewTransition {
                    entity_type: ENTITY,
                    entity_id: row.id,
                    event: "book",
                    from_status: None,
                    to_status: "booked",
                    actor_user_id: Some(booking.user_id),
                    actor_unit_id: None,
                    reason: None,
                    command_id: None,
                    at: now,
                    details: None,
                })
                .execute(c)
                .await?;
            Ok(row)
        }).await)
    })
    .await
}

pub async fn find(conn: &mut Conn, id: i64) -> QueryResult<Option<CollectionRow>> {
    on_conn!(conn, c => lc::table.find(id).select(CollectionRow::as_select()).first(c).await.optional())
}

pub async fn items_of(conn: &mut Conn, id: i64) -> QueryResult<Vec<CollectionItem>> {
    on_conn!(conn, c => items::table
        .filter(items::lab_collection_id.eq(id))
        .order(items::id.asc())
        .select(CollectionItem::as_select())
        .load(c)
        .await)
}

/// A customer's collections, newest first, with the total.
pub async fn list_own(
    conn: &mut Conn,
    user: i64,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<CollectionRow>, i64)> {
    on_conn!(conn, c => {
        let rows = lc::table
            .filter(lc::user_id.eq(user))
            .order((lc::created_at.desc(), lc::id.desc()))
            .limit(limit)
            .offset(offset)
            .select(CollectionRow::as_select())
            .load(c)
            .await?;
        let total = lc::table.filter(lc::user_id.eq(user)).count().get_result::<i64>(c).await?;
        Ok((rows, total))
    })
}

pub async fn timeline(conn: &mut Conn, id: i64) -> QueryResult<Vec<super::orders::Transition>> {
    on_conn!(conn, c => entity_transitions::table
        .filter(entity_transitions::entity_type.eq(ENTITY).and(entity_transitions::entity_id.eq(id)))
        .order((entity_transitions::at.asc(), entity_transitions::id.asc()))
        .select(super::orders::Transition::as_select())
        .load(c)
        .await)
}

/// A phlebotomist as assignment and routing see them.
#[derive(Debug, Clone, Queryable)]
pub struct Collector {
    pub id: i64,
    pub user_id: i64,
    pub unit_id: i64,
    pub home_lat: f64,
    pub home_lng: f64,
    pub work_start_minute: i32,
    pub work_end_minute: i32,
    pub capacity_per_window: i32,
}

type CollectorColumns = (
    ph::id,
    ph::user_id,
    diesel::dsl::AssumeNotNull<ph::unit_id>,
    ph::home_lat,
    ph::home_lng,
    ph::work_start_minute,
    ph::work_end_minute,
    ph::capacity_per_window,
);

fn collector_columns() -> CollectorColumns {
    (
        ph::id,
        ph::user_id,
        ph::unit_id.assume_not_null(),
        ph::home_lat,
        ph::home_lng,
        ph::work_start_minute,
        ph::work_end_minute,
        ph::capacity_per_window,
    )
}

/// The active phlebotomist record of `user`, if they have one with a unit.
pub async fn collector_of_user(conn: &mut Conn, user: i64) -> QueryResult<Option<Collector>> {
    on_conn!(conn, c => ph::table
        .filter(ph::user_id.eq(user).and(ph::is_active.eq(true)).and(ph::unit_id.is_not_null()))
        .select(collector_columns())
        .first::<Collector>(c)
        .await
        .optional())
}

/// A feasible collector for a collection and how full their window is.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub collector: Collector,
    pub assigned: i32,
}

/// Collectors who could take `row`: active, on an active unit that is not off duty, working hours
/// containing the window, capacity left in that window (as read now; the accept's conditional write
/// is what decides), and no closed offer of this collection in the current round (`exclude`).
pub async fn candidates(
    conn: &mut Conn,
    row: &CollectionRow,
    exclude: &[i64],
) -> QueryResult<Vec<Candidate>> {
    let Some((start, end)) = window_minutes(&row.slot_window) else {
        return Ok(Vec::new());
    };
    let exclude = exclude.to_vec();
    let (date, window) = (row.slot_date, row.slot_window.clone());
    on_conn!(conn, c => {
        let collectors = ph::table
            .inner_join(units::table.on(units::id.nullable().eq(ph::unit_id)))
            .filter(
                ph::is_active
                    .eq(true)
                    .and(units::is_active.eq(true))
                    .and(units::status.ne_all(["off_duty", "unavailable"]))
                    .and(ph::work_start_minute.le(start))
                    .and(ph::work_end_minute.ge(end))
                    .and(ph::id.ne_all(&exclude)),
            )
            .order(ph::id.asc())
            .limit(500)
            .select(collector_columns())
            .load::<Collector>(c)
            .await?;
        let ids: Vec<i64> = collectors.iter().map(|p| p.id).collect();
        let used = loads::table
            .filter(
                loads::phlebotomist_id
                    .eq_any(&ids)
                    .and(loads::slot_date.eq(date))
                    .and(loads::slot_window.eq(&window)),
            )
            .select((loads::phlebotomist_id, loads::assigned))
            .load::<(i64, i32)>(c)
            .await?;
        Ok(collectors
            .into_iter()
            .map(|collector| {
                let assigned = used.iter().find(|u| u.0 == collector.id).map_or(0, |u| u.1);
                Candidate { collector, assigned }
            })
            .filter(|c| c.assigned < c.collector.capacity_per_window)
            .collect())
    })
}

/// Whether an offer of this collection is open (unanswered and unexpired) at `now`.
pub async fn open_offer(conn: &mut Conn, collection: i64, now: NaiveDateTime) -> QueryResult<Option<i64>> {
    on_conn!(conn, c => dispatch_offers::table
        .filter(
            dispatch_offers::request_kind
                .eq(ENTITY)
                .and(dispatch_offers::request_id.eq(collection))
                .and(dispatch_offers::status.eq("offered"))
                .and(dispatch_offers::expires_at.gt(now)),
        )
        .select(dispatch_offers::unit_id)
        .first::<i64>(c)
        .await
        .optional())
}

/// One offer to make.
#[derive(Debug, Clone, Copy)]
pub struct NewOffer {
    pub collection: i64,
    /// The collection's version as read; the offer is refused if it moved.
    pub version: i64,
    pub unit: i64,
    pub distance_m: f64,
    pub eta_seconds: i32,
    pub at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

/// Records an offer: bumps the collection's version (still booked, unchanged since read) and opens
/// the offer row, in one transaction. `false` when the collection moved meanwhile.
pub async fn make_offer(conn: &mut Conn, offer: NewOffer) -> Result<bool, LabError> {
    let outcome = with_retries(conn, async |conn| {
        on_conn!(conn, c => c.transaction(async move |c| {
            let bumped = diesel::update(lc::table.find(offer.collection).filter(
                lc::version
                    .eq(offer.version)
                    .and(lc::status.eq_any(["booked", "unassigned"])),
            ))
            .set((lc::version.eq(lc::version + 1), lc::updated_at.eq(offer.at)))
            .execute(c)
            .await?;
            if bumped == 0 {
                return Err(LabError::Conflict);
            }
            diesel::insert_into(dispatch_offers::table)
                .values((
                    dispatch_offers::request_kind.eq(ENTITY),
                    dispatch_offers::request_id.eq(offer.collection),
                    dispatch_offers::unit_id.eq(offer.unit),
                    dispatch_offers::status.eq("offered"),
                    dispatch_offers::distance_m.eq(offer.distance_m),
                    dispatch_offers::eta_seconds.eq(offer.eta_seconds),
                    dispatch_offers::offered_at.eq(offer.at),
                    dispatch_offers::expires_at.eq(offer.expires_at),
                ))
                .on_conflict((
                    dispatch_offers::request_kind,
                    dispatch_offers::request_id,
                    dispatch_offers::unit_id,
                ))
                .do_update()
                .set((
                    dispatch_offers::status.eq("offered"),
                    dispatch_offers::distance_m.eq(offer.distance_m),
                    dispatch_offers::eta_seconds.eq(offer.eta_seconds),
                    dispatch_offers::offered_at.eq(offer.at),
                    dispatch_offers::expires_at.eq(offer.expires_at),
                    dispatch_offers::responded_at.eq(None::<NaiveDateTime>),
                    dispatch_offers::decline_reason.eq(None::<String>),
                    dispatch_offers::version.eq(dispatch_offers::version + 1),
                ))
                .execute(c)
                .await?;
            Ok(())
        }).await)
    })
    .await;
    match outcome {
        Ok(()) => Ok(true),
        Err(LabError::Conflict) => Ok(false),
        Err(error) => Err(error),
    }
}

/// The offer's status and expiry.
pub async fn offer_state(
    conn: &mut Conn,
    collection: i64,
    unit: i64,
) -> QueryResult<Option<(String, NaiveDateTime)>> {
    on_conn!(conn, c => dispatch_offers::table
        .filter(
            dispatch_offers::request_kind
                .eq(ENTITY)
                .and(dispatch_offers::request_id.eq(collection))
                .and(dispatch_offers::unit_id.eq(unit)),
        )
        .select((dispatch_offers::status, dispatch_offers::expires_at))
        .first::<(String, NaiveDateTime)>(c)
        .await
        .optional())
}

/// Closes an unanswered offer whose time is up (`offered` → `to`); `true` if this call closed it.
pub async fn close_offer(
    conn: &mut Conn,
    collection: i64,
    unit: i64,
    to: &'static str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let closed = on_conn!(conn, c => diesel::update(dispatch_offers::table.filter(
            dispatch_offers::request_kind
                .eq(ENTITY)
                .and(dispatch_offers::request_id.eq(collection))
                .and(dispatch_offers::unit_id.eq(unit))
                .and(dispatch_offers::status.eq("offered")),
        ))
        .set((
            dispatch_offers::status.eq(to),
            dispatch_offers::responded_at.eq(now),
            dispatch_offers::version.eq(dispatch_offers::version + 1),
        ))
        .execute(c)
        .await)?;
    Ok(closed == 1)
}

/// Notes why nobody was found (the collection stays booked and the sweep retries it).
pub async fn note_unassigned(conn: &mut Conn, collection: i64, reason: &str) -> QueryResult<bool> {
    let now = super::now();
    let noted = on_conn!(conn, c => diesel::update(
            lc::table.find(collection).filter(lc::status.eq_any(["booked", "unassigned"])),
        )
        .set((lc::unassigned_reason.eq(reason), lc::updated_at.eq(now)))
        .execute(c)
        .await)?;
    Ok(noted == 1)
}

/// Why an offer could not be answered, from what became of its row.
async fn offer_problem(conn: &mut Conn, collection: i64, unit: i64, now: NaiveDateTime) -> LabError {
    match offer_state(conn, collection, unit).await {
        Err(error) => error.into(),
        Ok(None) => LabError::OfferNotFound,
        Ok(Some((status, expires_at))) => match status.as_str() {
            "expired" => LabError::OfferExpired,
            "offered" if expires_at <= now => LabError::OfferExpired,
            _ => LabError::OfferClosed,
        },
    }
}

/// A settled acceptance.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub collection: CollectionRow,
    pub from: String,
    pub collector: i64,
}

/// The crew of `unit` accepts the open offer of `collection`, in one transaction: the offer `offered`
/// (unexpired) → `accepted`; the collector's load for the window claimed by
/// `assigned = assigned + 1 WHERE assigned < capacity`; the collection `booked` → `assigned` under its
/// version; the timeline row. Any conditional write that misses rolls everything back. When the
/// collector is full, the offer is closed as `taken` so the cascade moves on.
pub async fn accept_offer(
    conn: &mut Conn,
    collection: i64,
    unit: i64,
    user: i64,
) -> Result<Accepted, LabError> {
    let now = super::now();
    let outcome = with_retries(conn, async |conn| {
        on_conn!(conn, c => c.transaction(async move |c| {
            let offer = diesel::update(dispatch_offers::table.filter(
                dispatch_offers::request_kind
                    .eq(ENTITY)
                    .and(dispatch_offers::request_id.eq(collection))
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
            .get_result::<i64>(c)
            .await
            .optional()?
            .ok_or(LabError::OfferNotFound)?;
            let collector = ph::table
                .filter(ph::unit_id.eq(unit).and(ph::is_active.eq(true)))
                .select((ph::id, ph::capacity_per_window))
                .first::<(i64, i32)>(c)
                .await
                .optional()?
                .ok_or(LabError::NotCollector)?;
            let row = lc::table
                .find(collection)
                .select(CollectionRow::as_select())
                .first(c)
                .await
                .optional()?
                .ok_or(LabError::OfferClosed)?;
            let from = row.machine().ok_or(LabError::OfferClosed)?;
            let to = from.transition(&LabEvent::Assign(UnitId(collector.0))).map_err(|_| LabError::OfferClosed)?;
            diesel::insert_into(loads::table)
                .values((
                    loads::phlebotomist_id.eq(collector.0),
                    loads::slot_date.eq(row.slot_date),
                    loads::slot_window.eq(&row.slot_window),
                    loads::assigned.eq(0),
                    loads::updated_at.eq(now),
                ))
                .on_conflict((loads::phlebotomist_id, loads::slot_date, loads::slot_window))
                .do_nothing()
                .execute(c)
                .await?;
            let claimed = diesel::update(loads::table.find((collector.0, row.slot_date, &row.slot_window)).filter(
                loads::assigned.lt(collector.1),
            ))
            .set((loads::assigned.eq(loads::assigned + 1), loads::updated_at.eq(now)))
            .execute(c)
            .await?;
            if claimed == 0 {
                return Err(LabError::CollectorFull);
            }
            let assigned = diesel::update(lc::table.find(collection).filter(
                lc::version.eq(row.version).and(lc::status.eq(from.name())),
            ))
            .set((
                lc::status.eq(to.name()),
                lc::phlebotomist_id.eq(collector.0),
                lc::assigned_at.eq(now),
                lc::unassigned_reason.eq(None::<String>),
                lc::version.eq(lc::version + 1),
                lc::updated_at.eq(now),
            ))
            .returning(CollectionRow::as_returning())
            .get_result(c)
            .await
            .optional()?
            .ok_or(LabError::OfferClosed)?;
            let command = format!("accept:{offer}");
            diesel::insert_into(entity_transitions::table)
                .values(NewTransition {
                    entity_type: ENTITY,
                    entity_id: collection,
                    event: "assign",
                    from_status: Some(from.name()),
                    to_status: to.name(),
                    actor_user_id: Some(user),
                    actor_unit_id: Some(unit),
                    reason: None,
                    command_id: Some(&command),
                    at: now,
                    details: None,
                })
                .execute(c)
                .await?;
            Ok(Accepted { collection: assigned, from: from.name().to_owned(), collector: collector.0 })
        }).await)
    })
    .await;
    match outcome {
        Err(LabError::OfferNotFound) => Err(offer_problem(conn, collection, unit, now).await),
        Err(LabError::CollectorFull) => {
            close_offer(conn, collection, unit, "taken", now).await?;
            Err(LabError::CollectorFull)
        }
        other => other,
    }
}

/// The crew of `unit` turns down the open offer of `collection`.
pub async fn decline_offer(
    conn: &mut Conn,
    collection: i64,
    unit: i64,
    reason: Option<&str>,
) -> Result<(), LabError> {
    let now = super::now();
    let declined = on_conn!(conn, c => diesel::update(dispatch_offers::table.filter(
            dispatch_offers::request_kind
                .eq(ENTITY)
                .and(dispatch_offers::request_id.eq(collection))
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
        .execute(c)
        .await)?;
    if declined == 0 {
        return Err(offer_problem(conn, collection, unit, now).await);
    }
    Ok(())
}

/// One lifecycle step to apply.
#[derive(Debug, Clone)]
pub struct Step {
    pub collection: i64,
    pub event: LabEvent,
    pub actor_user: Option<i64>,
    pub actor_unit: Option<i64>,
    pub reason: Option<String>,
    /// Stored with `publish_report`.
    pub report_path: Option<String>,
}

/// A step applied: the row before and after.
#[derive(Debug, Clone)]
pub struct Stepped {
    pub before: CollectionRow,
    pub after: CollectionRow,
}

/// Applies one lifecycle event in one transaction: the transition function decides legality, the
/// update is conditional on the version read, the times are set once, the timeline row is written. A
/// cancellation of an assigned collection gives the collector's window its place back and closes any
/// open offer.
pub async fn step(conn: &mut Conn, step: Step) -> Result<Stepped, LabError> {
    let now = super::now();
    with_retries(conn, async |conn| {
        let step = step.clone();
        on_conn!(conn, c => c.transaction(async move |c| {
            let before = lc::table
                .find(step.collection)
                .select(CollectionRow::as_select())
                .first(c)
                .await
                .optional()?
                .ok_or(LabError::NotFound)?;
            let from = before.machine().ok_or(LabError::Conflict)?;
            let to = from.transition(&step.event)?;
            let stamp = |current: Option<NaiveDateTime>, when: bool| if when { current.or(Some(now)) } else { current };
            let cancelling = matches!(to, LabStatus::Cancelled);
            let after = diesel::update(lc::table.find(step.collection).filter(
                lc::version.eq(before.version).and(lc::status.eq(&before.status)),
            ))
            .set((
                lc::status.eq(to.name()),
                lc::collected_at.eq(stamp(before.collected_at, matches!(to, LabStatus::Collected(_)))),
                lc::at_lab_at.eq(stamp(before.at_lab_at, matches!(to, LabStatus::AtLab))),
                lc::report_ready_at.eq(stamp(before.report_ready_at, matches!(to, LabStatus::ReportReady))),
                lc::report_path.eq(step.report_path.clone().or(before.report_path.clone())),
                lc::cancel_reason.eq(if cancelling { step.reason.clone() } else { before.cancel_reason.clone() }),
                lc::version.eq(lc::version + 1),
                lc::updated_at.eq(now),
            ))
            .returning(CollectionRow::as_returning())
            .get_result(c)
            .await
            .optional()?
            .ok_or(LabError::Conflict)?;
            if cancelling {
                if let (LabStatus::Assigned(_) | LabStatus::EnRoute(_), Some(collector)) = (from, before.phlebotomist_id) {
                    diesel::update(loads::table.find((collector, before.slot_date, &before.slot_window)).filter(
                        loads::assigned.gt(0),
                    ))
                    .set((loads::assigned.eq(loads::assigned - 1), loads::updated_at.eq(now)))
                    .execute(c)
                    .await?;
                }
                diesel::update(dispatch_offers::table.filter(
                    dispatch_offers::request_kind
                        .eq(ENTITY)
                        .and(dispatch_offers::request_id.eq(step.collection))
                        .and(dispatch_offers::status.eq("offered")),
                ))
                .set((dispatch_offers::status.eq("expired"), dispatch_offers::responded_at.eq(now)))
                .execute(c)
                .await?;
            }
            diesel::insert_into(entity_transitions::table)
                .values(NewTransition {
                    entity_type: ENTITY,
                    entity_id: step.collection,
                    event: step.event.name(),
                    from_status: Some(from.name()),
                    to_status: to.name(),
                    actor_user_id: step.actor_user,
                    actor_unit_id: step.actor_unit,
                    reason: step.reason.as_deref(),
                    command_id: None,
                    at: now,
                    details: None,
                })
                .execute(c)
                .await?;
            Ok(Stepped { before, after })
        }).await)
    })
    .await
}

/// A collector's collections on `date` that still have a stop or a drop ahead of them.
pub async fn day_of(conn: &mut Conn, collector: i64, date: NaiveDate) -> QueryResult<Vec<CollectionRow>> {
    on_conn!(conn, c => lc::table
        .filter(
            lc::phlebotomist_id
                .eq(collector)
                .and(lc::slot_date.eq(date))
                .and(lc::status.eq_any(["assigned", "en_route", "collected"])),
        )
        .order(lc::id.asc())
        .limit(200)
        .select(CollectionRow::as_select())
        .load(c)
        .await)
}

/// Collected samples not yet alerted on (the at-risk check filters them by deadline).
pub async fn collected_unalerted(conn: &mut Conn, limit: i64) -> QueryResult<Vec<CollectionRow>> {
    use diesel::dsl::{exists, not};
    on_conn!(conn, c => lc::table
        .filter(lc::status.eq("collected"))
        .filter(not(exists(
            entity_transitions::table.filter(
                entity_transitions::entity_type
                    .eq(ENTITY)
                    .and(entity_transitions::entity_id.eq(lc::id))
                    .and(entity_transitions::command_id.eq(AT_RISK_COMMAND)),
            ),
        )))
        .order(lc::collected_at.asc())
        .limit(limit)
        .select(CollectionRow::as_select())
        .load(c)
        .await)
}

/// Records the at-risk alert in the timeline; the unique command id makes this a claim, so `true` is
/// answered to exactly one caller however many nodes sweep at once.
pub async fn mark_alerted(conn: &mut Conn, collection: i64, now: NaiveDateTime) -> QueryResult<bool> {
    let inserted = on_conn!(conn, c => diesel::insert_into(entity_transitions::table)
        .values(NewTransition {
            entity_type: ENTITY,
            entity_id: collection,
            event: "at_risk",
            from_status: Some("collected"),
            to_status: "collected",
            actor_user_id: None,
            actor_unit_id: None,
            reason: Some("the sample is close to its stability deadline and not at the lab"),
            command_id: Some(AT_RISK_COMMAND),
            at: now,
            details: None,
        })
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

/// Booked collections nobody took, untouched since `before`, for today or later.
pub async fn stranded(
    conn: &mut Conn,
    today: NaiveDate,
    before: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<CollectionRow>> {
    on_conn!(conn, c => lc::table
        .filter(
            lc::status
                .eq_any(["booked", "unassigned"])
                .and(lc::slot_date.ge(today))
                .and(lc::updated_at.lt(before)),
        )
        .order(lc::updated_at.asc())
        .limit(limit)
        .select(CollectionRow::as_select())
        .load(c)
        .await)
}

/// Takes over a stranded collection for a new round of offers: one conditional version bump, so one
/// node of several sweeping at once wins.
pub async fn adopt(conn: &mut Conn, collection: i64, version: i64) -> QueryResult<bool> {
    let now = super::now();
    let adopted = on_conn!(conn, c => diesel::update(lc::table.find(collection).filter(
            lc::version.eq(version).and(lc::status.eq_any(["booked", "unassigned"])),
        ))
        .set((lc::version.eq(lc::version + 1), lc::updated_at.eq(now)))
        .execute(c)
        .await)?;
    Ok(adopted == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_and_unknown_windows_are_refused() {
        assert_eq!(window_minutes("07:00-09:00"), Some((420, 540)));
        assert_eq!(window_minutes("07:00-09:30"), None);
        assert_eq!(window_minutes(""), None);
        for window in WINDOWS {
            let (start, end) = window_minutes(window).unwrap();
            assert!(start < end);
        }
    }

    #[test]
    fn a_test_cannot_claim_more_stability_than_its_sample_type_allows() {
        assert_eq!(stability_minutes("blood", 72), 24 * 60);
        assert_eq!(stability_minutes("blood", 4), 4 * 60);
        assert_eq!(stability_minutes("stool", 24), 2 * 60);
        assert_eq!(stability_minutes("unknown", 24), 2 * 60);
    }
}
