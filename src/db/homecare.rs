//! Home care: the service catalog, partner profiles, and bookings. A booking takes a place in the nearest
//! able partner's slot window by one conditional write on the window's counter, in the same transaction
//! as the booking row; cancelling gives the place back in the transaction that cancels.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use onemedi_actors::position::Position;
use serde::Serialize;
use utoipa::ToSchema;

use super::{
    Conn, Retryable,
    emergency::NewTransition,
    schema::{
        addresses, care_partner_services as offers, care_partner_window_loads as loads, care_partners as cp,
        entity_transitions, homecare_services as hs, service_bookings as sb, users,
    },
    with_retries,
};
use crate::{
    domain::{Role, care::BookingStatus},
    on_conn,
};

/// The `entity_type` of home-care bookings in `entity_transitions`.
pub const ENTITY: &str = "service_booking";

/// The arrival windows a customer may book, India time (`HH:MM-HH:MM`). They do not overlap, so a
/// partner's capacity per window is a plain count of visits that start in it.
pub const WINDOWS: [&str; 7] = [
    "07:00-09:00",
    "09:00-11:00",
    "11:00-13:00",
    "13:00-15:00",
    "15:00-17:00",
    "17:00-19:00",
    "19:00-21:00",
];

/// The service categories of the catalog (`homecare_services.category`).
pub const CATEGORIES: [&str; 7] = [
    "nursing",
    "physiotherapy",
    "elder_care",
    "doctor_visit",
    "procedure",
    "mother_baby",
    "other",
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

/// A service of the catalog.
#[derive(Debug, Clone, Serialize, ToSchema, Queryable, Selectable)]
#[diesel(table_name = hs)]
pub struct Service {
    pub id: i64,
    pub name: String,
    pub slug: String,
    /// `nursing`, `physiotherapy`, `elder_care`, `doctor_visit`, `procedure`, `mother_baby` or `other`.
    pub category: String,
    pub description: Option<String>,
    pub price_paise: i64,
    /// What the price is for: `visit`, `hour`, `day` or `session`.
    pub price_unit: String,
    /// How long a visit lasts.
    pub duration_minutes: i32,
    pub image_url: Option<String>,
}

/// Active services, in catalog order, optionally of one category; with the total.
pub async fn list_services(
    conn: &mut Conn,
    category: Option<&str>,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<Service>, i64)> {
    on_conn!(conn, c => {
        let filtered = || {
            let mut query = hs::table.filter(hs::is_active.eq(true)).into_boxed();
            if let Some(category) = category {
                query = query.filter(hs::category.eq(category));
            }
            query
        };
        let rows = filtered()
            .order((hs::sort_order.asc(), hs::id.asc()))
            .limit(limit)
            .offset(offset)
            .select(Service::as_select())
            .load(c)
            .await?;
        let total = filtered().count().get_result::<i64>(c).await?;
        Ok((rows, total))
    })
}

/// An active service.
pub async fn find_service(conn: &mut Conn, id: i64) -> QueryResult<Option<Service>> {
    on_conn!(conn, c => hs::table
        .filter(hs::id.eq(id).and(hs::is_active.eq(true)))
        .select(Service::as_select())
        .first(c)
        .await
        .optional())
}

/// A partner's profile.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = cp)]
pub struct Partner {
    pub id: i64,
    pub user_id: i64,
    pub home_lat: f64,
    pub home_lng: f64,
    pub service_radius_km: i32,
    pub work_start_minute: i32,
    pub work_end_minute: i32,
    pub capacity_per_window: i32,
    pub is_active: bool,
}

/// A profile as the partner saves it, validated at the edge.
#[derive(Debug, Clone)]
pub struct PartnerProfile {
    pub home_lat: f64,
    pub home_lng: f64,
    pub service_radius_km: i32,
    pub work_start_minute: i32,
    pub work_end_minute: i32,
    pub capacity_per_window: i32,
    pub is_active: bool,
    pub service_ids: Vec<i64>,
}

pub async fn partner_of_user(conn: &mut Conn, user: i64) -> QueryResult<Option<Partner>> {
    on_conn!(conn, c => cp::table
        .filter(cp::user_id.eq(user))
        .select(Partner::as_select())
        .first(c)
        .await
        .optional())
}

/// The services a partner offers, by id.
pub async fn services_of(conn: &mut Conn, partner: i64) -> QueryResult<Vec<i64>> {
    on_conn!(conn, c => offers::table
        .filter(offers::partner_id.eq(partner))
        .order(offers::service_id.asc())
        .select(offers::service_id)
        .load(c)
        .await)
}

/// Why a home-care write did not happen. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum CareError {
    #[error("address not found")]
    AddressNotFound,
    #[error("service not found")]
    ServiceNotFound,
    #[error("services not offered in the catalog: {0:?}")]
    UnknownServices(Vec<i64>),
    /// No partner who offers the service covers the address in that window.
    #[error("no partner offers this service at this address in this window")]
    NoPartnerNearby,
    /// Partners cover the address, but every one is fully booked in that window.
    #[error("every partner near this address is fully booked in this window")]
    WindowFull,
    #[error("booking not found")]
    NotFound,
    #[error(transparent)]
    Illegal(#[from] crate::domain::care::IllegalMove),
    #[error("the booking changed meanwhile")]
    Conflict,
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

impl Retryable for CareError {
    fn db_error(&self) -> Option<&diesel::result::Error> {
        match self {
            Self::Db(error) => Some(error),
            _ => None,
        }
    }
}

/// Creates or replaces the partner profile of `user` and the services it offers, in one transaction.
pub async fn save_partner(conn: &mut Conn, user: i64, profile: PartnerProfile) -> Result<Partner, CareError> {
    let now = super::now();
    with_retries(conn, async |conn| {
        let profile = profile.clone();
        on_conn!(conn, c => c.transaction(async move |c| {
            let known: Vec<i64> = hs::table
                .filter(hs::id.eq_any(&profile.service_ids).and(hs::is_active.eq(true)))
                .select(hs::id)
                .load(c)
                .await?;
            let unknown: Vec<i64> =
                profile.service_ids.iter().copied().filter(|id| !known.contains(id)).collect();
            if !unknown.is_empty() {
                return Err(CareError::UnknownServices(unknown));
            }
            let values = (
                cp::home_lat.eq(profile.home_lat),
                cp::home_lng.eq(profile.home_lng),
                cp::service_radius_km.eq(profile.service_radius_km),
                cp::work_start_minute.eq(profile.work_start_minute),
                cp::work_end_minute.eq(profile.work_end_minute),
                cp::capacity_per_window.eq(profile.capacity_per_window),
                cp::is_active.eq(profile.is_active),
                cp::updated_at.eq(now),
            );
            let partner = diesel::insert_into(cp::table)
                .values((cp::user_id.eq(user), values, cp::created_at.eq(now)))
                .on_conflict(cp::user_id)
                .do_update()
                .set(values)
                .returning(Partner::as_returning())
                .get_result(c)
                .await?;
            diesel::delete(offers::table.filter(offers::partner_id.eq(partner.id))).execute(c).await?;
            for service in &profile.service_ids {
                diesel::insert_into(offers::table)
                    .values((offers::partner_id.eq(partner.id), offers::service_id.eq(service)))
                    .execute(c)
                    .await?;
            }
            Ok(partner)
        }).await)
    })
    .await
}

/// A stored booking.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sb)]
pub struct BookingRow {
    pub id: i64,
    pub user_id: i64,
    pub service_id: i64,
    pub address_id: Option<i64>,
    pub patient_name: String,
    pub contact_phone: String,
    pub address_text: String,
    pub lat: f64,
    pub lng: f64,
    pub slot_date: NaiveDate,
    pub slot_window: String,
    pub price_paise: i64,
    pub status: String,
    pub partner_user_id: Option<i64>,
    pub assigned_at: Option<NaiveDateTime>,
    pub completed_at: Option<NaiveDateTime>,
    pub cancel_reason: Option<String>,
    pub notes: Option<String>,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A booking request, validated at the edge.
#[derive(Debug, Clone)]
pub struct NewBooking {
    pub user_id: i64,
    pub service_id: i64,
    pub address_id: i64,
    pub slot_date: NaiveDate,
    pub slot_window: String,
    /// Minutes after local midnight of the window's start and end.
    pub window: (i32, i32),
    pub patient_name: Option<String>,
    pub contact_phone: Option<String>,
    pub notes: Option<String>,
}

/// A partner who could take a visit, nearest first.
struct Candidate {
    id: i64,
    user_id: i64,
    distance_m: f64,
}

/// Books a visit in one transaction: the customer's address and the active service are read, the partners
/// who offer the service, work through the whole window and cover the address are ranked by distance, and
/// the nearest with a free place takes it (`booked = booked + 1 WHERE booked < capacity`); then the
/// booking row (`confirmed`, with its partner) and its first timeline row are written. Nothing is written
/// when no partner can take it.
pub async fn book(conn: &mut Conn, booking: NewBooking) -> Result<BookingRow, CareError> {
    let now = super::now();
    with_retries(conn, async |conn| {
        let booking = booking.clone();
        on_conn!(conn, c => c.transaction(async move |c| {
            let (line1, line2, city, pincode, lat, lng) = addresses::table
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
                .ok_or(CareError::AddressNotFound)?;
            let service = hs::table
                .filter(hs::id.eq(booking.service_id).and(hs::is_active.eq(true)))
                .select(Service::as_select())
                .first(c)
                .await
                .optional()?
                .ok_or(CareError::ServiceNotFound)?;
            let (customer_name, customer_phone) = users::table
                .find(booking.user_id)
                .select((users::name, users::phone))
                .first::<(String, Option<String>)>(c)
                .await?;
            let home = Position::new(lat, lng).map_err(|_| CareError::AddressNotFound)?;
            let able: Vec<(i64, i64, f64, f64, i32)> = cp::table
                .inner_join(offers::table)
                .filter(
                    offers::service_id
                        .eq(service.id)
                        .and(cp::is_active.eq(true))
                        .and(cp::work_start_minute.le(booking.window.0))
                        .and(cp::work_end_minute.ge(booking.window.1))
                        .and(cp::user_id.eq_any(
                            users::table
                                .filter(users::role.eq(Role::Partner.as_str()).and(users::is_active.eq(true)))
                                .select(users::id),
                        )),
                )
                .select((cp::id, cp::user_id, cp::home_lat, cp::home_lng, cp::service_radius_km))
                .load(c)
                .await?;
            let mut candidates: Vec<Candidate> = able
                .into_iter()
                .filter_map(|(id, user_id, plat, plng, radius_km)| {
                    let distance_m = Position::new(plat, plng).ok()?.distance_m(home);
                    (distance_m <= f64::from(radius_km) * 1000.0).then_some(Candidate { id, user_id, distance_m })
                })
                .collect();
            if candidates.is_empty() {
                return Err(CareError::NoPartnerNearby);
            }
            candidates.sort_by(|a, b| a.distance_m.total_cmp(&b.distance_m).then(a.id.cmp(&b.id)));
            let mut chosen = None;
            for candidate in &candidates {
                diesel::insert_into(loads::table)
                    .values((
                        loads::partner_id.eq(candidate.id),
                        loads::slot_date.eq(booking.slot_date),
                        loads::slot_window.eq(&booking.slot_window),
                        loads::booked.eq(0),
                        loads::updated_at.eq(now),
                    ))
                    .on_conflict((loads::partner_id, loads::slot_date, loads::slot_window))
                    .do_nothing()
                    .execute(c)
                    .await?;
                // The capacity is read in the same statement, so a partner lowering it meanwhile wins.
                let capacity = cp::table
                    .find(candidate.id)
                    .select(cp::capacity_per_window)
                    .single_value()
                    .assume_not_null();
                let claimed = diesel::update(
                    loads::table
                        .find((candidate.id, booking.slot_date, &booking.slot_window))
                        .filter(loads::booked.lt(capacity)),
                )
                .set((loads::booked.eq(loads::booked + 1), loads::updated_at.eq(now)))
                .execute(c)
                .await?;
                if claimed == 1 {
                    chosen = Some(candidate);
                    break;
                }
            }
            let Some(partner) = chosen else {
                return Err(CareError::WindowFull);
            };
            let address_text = match line2 {
                Some(line2) => format!("{line1}, {line2}, {city} {pincode}"),
                None => format!("{line1}, {city} {pincode}"),
            };
            let row = diesel::insert_into(sb::table)
                .values((
                    sb::user_id.eq(booking.user_id),
                    sb::service_id.eq(service.id),
                    sb::address_id.eq(booking.address_id),
                    sb::patient_name.eq(booking.patient_name.clone().unwrap_or(customer_name)),
                    sb::contact_phone.eq(booking.contact_phone.clone().or(customer_phone).unwrap_or_default()),
                    sb::address_text.eq(&address_text),
                    sb::lat.eq(lat),
                    sb::lng.eq(lng),
                    sb::slot_date.eq(booking.slot_date),
                    sb::slot_window.eq(&booking.slot_window),
                    sb::price_paise.eq(service.price_paise),
                    sb::status.eq(BookingStatus::Confirmed.as_str()),
                    sb::partner_user_id.eq(partner.user_id),
                    sb::assigned_at.eq(now),
                    sb::notes.eq(&booking.notes),
                    sb::created_at.eq(now),
                    sb::updated_at.eq(now),
                ))
                .returning(BookingRow::as_returning())
                .get_result(c)
                .await?;
            let details = serde_json::json!({
                "partner_user_id": partner.user_id,
                "distance_m": partner.distance_m.round(),
            })
            .to_string();
            diesel::insert_into(entity_transitions::table)
                .values(NewTransition {
                    entity_type: ENTITY,
                    entity_id: row.id,
                    event: "book",
                    from_status: None,
                    to_status: BookingStatus::Confirmed.as_str(),
                    actor_user_id: Some(booking.user_id),
                    actor_unit_id: None,
                    reason: None,
                    command_id: None,
                    at: now,
                    details: Some(details),
                })
                .execute(c)
                .await?;
            Ok(row)
        }).await)
    })
    .await
}

pub async fn find(conn: &mut Conn, id: i64) -> QueryResult<Option<BookingRow>> {
    on_conn!(conn, c => sb::table.find(id).select(BookingRow::as_select()).first(c).await.optional())
}

/// Whose bookings a list shows.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    /// The customer's own.
    Customer(i64),
    /// The ones assigned to this partner user.
    Partner(i64),
    /// Every booking (staff).
    All,
}

/// Bookings in `scope`, newest first, with the total.
pub async fn list(
    conn: &mut Conn,
    scope: Scope,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<BookingRow>, i64)> {
    on_conn!(conn, c => {
        let scoped = || {
            let query = sb::table.into_boxed();
            match scope {
                Scope::Customer(user) => query.filter(sb::user_id.eq(user)),
                Scope::Partner(user) => query.filter(sb::partner_user_id.eq(user)),
                Scope::All => query,
            }
        };
        let rows = scoped()
            .order((sb::created_at.desc(), sb::id.desc()))
            .limit(limit)
            .offset(offset)
            .select(BookingRow::as_select())
            .load(c)
            .await?;
        let total = scoped().count().get_result::<i64>(c).await?;
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

/// A partner's place count in one window (0 when nothing was booked there).
pub async fn window_load(conn: &mut Conn, partner: i64, date: NaiveDate, window: &str) -> QueryResult<i32> {
    on_conn!(conn, c => loads::table
        .find((partner, date, window))
        .select(loads::booked)
        .first::<i32>(c)
        .await
        .optional()
        .map(Option::unwrap_or_default))
}

/// One lifecycle step to apply.
#[derive(Debug, Clone)]
pub struct Step {
    pub booking: i64,
    pub to: BookingStatus,
    pub actor_user: i64,
    pub reason: Option<String>,
}

/// A step applied: the row before and after.
#[derive(Debug, Clone)]
pub struct Stepped {
    pub before: BookingRow,
    pub after: BookingRow,
}

/// Applies one step in one transaction: the transition function decides legality, the update is
/// conditional on the version read, a cancellation gives the partner's place in the window back, and the
/// timeline row is written.
pub async fn step(conn: &mut Conn, step: Step) -> Result<Stepped, CareError> {
    let now = super::now();
    with_retries(conn, async |conn| {
        let step = step.clone();
        on_conn!(conn, c => c.transaction(async move |c| {
            let before = sb::table
                .find(step.booking)
                .select(BookingRow::as_select())
                .first(c)
                .await
                .optional()?
                .ok_or(CareError::NotFound)?;
            let from = BookingStatus::parse(&before.status).ok_or(CareError::Conflict)?;
            let to = from.transition(step.to)?;
            let cancelling = to == BookingStatus::Cancelled;
            let after = diesel::update(sb::table.find(step.booking).filter(
                sb::version.eq(before.version).and(sb::status.eq(&before.status)),
            ))
            .set((
                sb::status.eq(to.as_str()),
                sb::completed_at.eq(if to == BookingStatus::Completed { Some(now) } else { before.completed_at }),
                sb::cancel_reason.eq(if cancelling { step.reason.clone() } else { before.cancel_reason.clone() }),
                sb::version.eq(sb::version + 1),
                sb::updated_at.eq(now),
            ))
            .returning(BookingRow::as_returning())
            .get_result(c)
            .await
            .optional()?
            .ok_or(CareError::Conflict)?;
            if cancelling && from.holds_capacity() && let Some(partner_user) = before.partner_user_id {
                let partner = cp::table.filter(cp::user_id.eq(partner_user)).select(cp::id);
                diesel::update(loads::table.filter(
                    loads::partner_id
                        .eq_any(partner)
                        .and(loads::slot_date.eq(before.slot_date))
                        .and(loads::slot_window.eq(&before.slot_window))
                        .and(loads::booked.gt(0)),
                ))
                .set((loads::booked.eq(loads::booked - 1), loads::updated_at.eq(now)))
                .execute(c)
                .await?;
            }
            diesel::insert_into(entity_transitions::table)
                .values(NewTransition {
                    entity_type: ENTITY,
                    entity_id: step.booking,
                    event: to.as_str(),
                    from_status: Some(from.as_str()),
                    to_status: to.as_str(),
                    actor_user_id: Some(step.actor_user),
                    actor_unit_id: None,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_do_not_overlap_and_unknown_windows_are_refused() {
        assert_eq!(window_minutes("09:00-11:00"), Some((540, 660)));
        assert_eq!(window_minutes("09:00-10:00"), None);
        let mut previous_end = 0;
        for window in WINDOWS {
            let (start, end) = window_minutes(window).unwrap();
            assert!(start < end && start >= previous_end);
            previous_end = end;
        }
    }
}
