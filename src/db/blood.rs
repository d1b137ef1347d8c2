//! Blood requests: reservation of compatible bank stock (one conditional write per stock line), donor
//! profiles, the search for eligible compatible donors in widening H3 rings, pledges and cancellation.
//! Every change to a request is one transaction; events are published by the caller after it commits.

use std::time::Duration;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use h3o::CellIndex;
use serde::Serialize;
use utoipa::ToSchema;

use super::{
    Conn,
    donors::{DONOR_RESOLUTION, DonorProfile, donor_cell},
    schema::{
        blood_banks, blood_pledges, blood_requests, blood_reservations, blood_stock, donor_profiles,
        entity_transitions, notifications, users,
    },
};
use crate::db::emergency::NewTransition;
use crate::{
    domain::{
        LatLng,
        blood::{
            BloodGroup, Component, RequestStatus, Urgency, compatible, donor_eligible, donor_groups,
            latest_eligible_donation,
        },
    },
    on_conn,
};

/// `entity_transitions.entity_type` of blood requests.
pub const ENTITY: &str = "blood_request";
/// Banks farther than this from the request are not asked for stock.
pub const MAX_RESERVE_RADIUS_M: f64 = 50_000.0;
/// Most stock lines considered for one request.
const MAX_STOCK_CANDIDATES: i64 = 500;
/// The widening rings (grid distance k) searched for donors, ≈ 2.5, 5, 10 and 20 km at resolution 7.
pub const DONOR_RINGS: [u32; 4] = [1, 2, 4, 8];
/// Donors asked per missing unit (not every donor asked comes).
pub const DONORS_PER_MISSING_UNIT: usize = 3;
/// Most donors notified for one request.
pub const MAX_DONORS_NOTIFIED: usize = 30;
/// Most donor rows read per ring.
const MAX_DONORS_SCANNED: i64 = 500;
/// How often a transaction is re-run after a serialization failure, deadlock or lost version race.
const MAX_ATTEMPTS: u32 = 5;
const RETRY_BACKOFF: Duration = Duration::from_millis(10);

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = blood_requests)]
pub struct BloodRequest {
    pub id: i64,
    pub requester_user_id: i64,
    pub patient_name: String,
    pub contact_phone: String,
    pub blood_group: String,
    pub component: String,
    pub units_needed: i32,
    pub hospital_id: Option<i64>,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    pub urgency: String,
    pub expires_at: NaiveDateTime,
    pub notes: Option<String>,
    pub status: String,
    pub units_reserved: i32,
    pub units_pledged: i32,
    pub fulfilled_at: Option<NaiveDateTime>,
    pub cancelled_at: Option<NaiveDateTime>,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl BloodRequest {
    fn stored_status(&self) -> Result<RequestStatus, BloodError> {
        RequestStatus::parse(&self.status).ok_or(BloodError::Corrupt("status"))
    }
}

/// A validated new request; `point` is the hospital's location when a hospital was named.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub requester: i64,
    pub patient_name: String,
    pub contact_phone: String,
    pub group: BloodGroup,
    pub component: Component,
    pub units: i32,
    pub hospital_id: Option<i64>,
    pub point: LatLng,
    pub urgency: Urgency,
    pub notes: Option<String>,
}

/// Units of one bank's stock held for a request.
#[derive(Debug, Clone, Serialize, ToSchema, Queryable)]
pub struct Reservation {
    pub id: i64,
    pub blood_bank_id: i64,
    pub bank_name: String,
    pub blood_group: String,
    pub component: String,
    pub units: i32,
    pub status: String,
    pub expires_at: NaiveDateTime,
}

/// A donor told about a request.
#[derive(Debug, Clone, Copy)]
pub struct NotifiedDonor {
    pub user_id: i64,
    pub distance_m: f64,
}

/// What creating a request did.
#[derive(Debug)]
pub struct Created {
    pub request: BloodRequest,
    pub reservations: Vec<Reservation>,
    pub notified: Vec<NotifiedDonor>,
}

/// Why a blood request change did not happen. Everything it wrote is rolled back.
#[derive(Debug, thiserror::Error)]
pub enum BloodError {
    #[error("no such blood request")]
    NotFound,
    #[error("the request is {0}")]
    Closed(&'static str),
    #[error("no donor profile")]
    NoDonorProfile,
    #[error("the donor may not give now")]
    NotEligible,
    #[error("a {donor} donor cannot give {component} to a {recipient} patient")]
    Incompatible {
        donor: String,
        recipient: String,
        component: &'static str,
    },
    #[error("already pledged")]
    AlreadyPledged,
    #[error("the request changed meanwhile")]
    Conflict,
    #[error("the deadline has not passed")]
    NotDue,
    #[error("stored {0} is not valid")]
    Corrupt(&'static str),
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

fn is_retryable(error: &BloodError) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match error {
        BloodError::Conflict => true,
        BloodError::Db(Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _)) => true,
        // diesel has no kind for 40P01; PostgreSQL's message for it is stable.
        BloodError::Db(Error::DatabaseError(_, info)) => info.message().contains("deadlock detected"),
        _ => false,
    }
}

/// Runs `attempt` (one whole transaction) again while it fails in a way a re-run can fix.
async fn with_retries<T, F>(conn: &mut Conn, mut attempt: F) -> Result<T, BloodError>
where
    F: AsyncFnMut(&mut Conn) -> Result<T, BloodError>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt(conn).await {
            Err(error) if tries < MAX_ATTEMPTS && is_retryable(&error) => {
                tracing::debug!(error = %error, tries, "blood transaction re-run");
                tokio::time::sleep(RETRY_BACKOFF * tries).await;
            }
            other => return other,
        }
    }
}

/// A stock line that may serve a request.
#[derive(Debug, Clone, Queryable)]
struct Candidate {
    stock_id: i64,
    blood_group: String,
    units_available: i32,
    bank_id: i64,
    bank_name: String,
    lat: f64,
    lng: f64,
}

/// Creates a request in one transaction: the row, a reservation per compatible stock line (nearest
/// bank first, exact group before other compatible groups) each claimed by
/// `units_available = units_available - n WHERE units_available >= n`, and — when stock falls short —
/// a notification row for each eligible compatible donor found in widening H3 rings.
pub async fn create(conn: &mut Conn, new: &NewRequest) -> Result<Created, BloodError> {
    with_retries(conn, async |conn| {
        let now = super::now();
        let today = now.date();
        on_conn!(conn, c => c.transaction(async move |c| {
            let groups = donor_groups(new.component, new.group);
            let group_names: Vec<&str> = groups.iter().map(|g| g.as_str()).collect();
            let request = diesel::insert_into(blood_requests::table)
                .values((
                    blood_requests::requester_user_id.eq(new.requester),
                    blood_requests::patient_name.eq(&new.patient_name),
                    blood_requests::contact_phone.eq(&new.contact_phone),
                    blood_requests::blood_group.eq(new.group.as_str()),
                    blood_requests::component.eq(new.component.as_str()),
                    blood_requests::units_needed.eq(new.units),
                    blood_requests::hospital_id.eq(new.hospital_id),
                    blood_requests::lat.eq(new.point.lat()),
                    blood_requests::lng.eq(new.point.lng()),
                    blood_requests::h3_cell.eq(donor_cell(new.point)),
                    blood_requests::urgency.eq(new.urgency.as_str()),
                    blood_requests::expires_at.eq(now + new.urgency.lifetime()),
                    blood_requests::notes.eq(new.notes.as_deref()),
                    blood_requests::created_at.eq(now),
                    blood_requests::updated_at.eq(now),
                ))
                .returning(BloodRequest::as_returning())
                .get_result(c)
                .await?;

            let bbox = new.point.bounding_box(MAX_RESERVE_RADIUS_M);
            let mut candidates: Vec<(usize, f64, Candidate)> = blood_stock::table
                .inner_join(blood_banks::table)
                .filter(blood_stock::component.eq(new.component.as_str()))
                .filter(blood_stock::blood_group.eq_any(&group_names))
                .filter(blood_stock::units_available.gt(0))
                .filter(blood_banks::is_active.eq(true))
                .filter(blood_banks::lat.between(bbox.min_lat, bbox.max_lat))
                .filter(blood_banks::lng.between(bbox.min_lng, bbox.max_lng))
                .order(blood_stock::id.asc())
                .limit(MAX_STOCK_CANDIDATES)
                .select((
                    blood_stock::id,
                    blood_stock::blood_group,
                    blood_stock::units_available,
                    blood_banks::id,
                    blood_banks::name,
                    blood_banks::lat,
                    blood_banks::lng,
                ))
                .load::<Candidate>(c)
                .await?
                .into_iter()
                .filter_map(|cand| {
                    let preference = group_names.iter().position(|g| *g == cand.blood_group)?;
                    let distance = LatLng::parse(cand.lat, cand.lng).ok()?.distance_m(new.point);
                    (distance <= MAX_RESERVE_RADIUS_M).then_some((preference, distance, cand))
                })
                .collect();
            candidates.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)).then(a.2.stock_id.cmp(&b.2.stock_id)));

            let hold_until = now + new.urgency.hold();
            let mut reserved = 0;
            let mut reservations = Vec::new();
            for (_, _, cand) in &candidates {
                let missing = new.units - reserved;
                if missing <= 0 {
                    break;
                }
                // The candidate's count may be stale: claim what it showed, and after a lost race
                // claim once more what is left now.
                let mut want = missing.min(cand.units_available);
                let mut claimed = 0;
                for _ in 0..2 {
                    if want <= 0 {
                        break;
                    }
                    let won = diesel::update(blood_stock::table.filter(
                        blood_stock::id.eq(cand.stock_id).and(blood_stock::units_available.ge(want)),
                    ))
                    .set((
                        blood_stock::units_available.eq(blood_stock::units_available - want),
                        blood_stock::units_reserved.eq(blood_stock::units_reserved + want),
                        blood_stock::version.eq(blood_stock::version + 1),
                        blood_stock::updated_at.eq(now),
                    ))
                    .execute(c)
                    .await?;
                    if won == 1 {
                        claimed = want;
                        break;
                    }
                    let left: i32 = blood_stock::table
                        .find(cand.stock_id)
                        .select(blood_stock::units_available)
                        .first(c)
                        .await?;
                    want = missing.min(left);
                }
                if claimed == 0 {
                    continue;
                }
                let id = diesel::insert_into(blood_reservations::table)
                    .values((
                        blood_reservations::request_id.eq(request.id),
                        blood_reservations::blood_stock_id.eq(cand.stock_id),
                        blood_reservations::reserved_units.eq(claimed),
                        blood_reservations::expires_at.eq(hold_until),
                        blood_reservations::created_at.eq(now),
                        blood_reservations::updated_at.eq(now),
                    ))
                    .returning(blood_reservations::id)
                    .get_result::<i64>(c)
                    .await?;
                reserved += claimed;
                reservations.push(Reservation {
                    id,
                    blood_bank_id: cand.bank_id,
                    bank_name: cand.bank_name.clone(),
                    blood_group: cand.blood_group.clone(),
                    component: new.component.as_str().to_owned(),
                    units: claimed,
                    status: "held".to_owned(),
                    expires_at: hold_until,
                });
            }

            let status = RequestStatus::for_counts(new.units, reserved, 0);
            let request = if reserved > 0 {
                diesel::update(blood_requests::table.find(request.id))
                    .set((
                        blood_requests::units_reserved.eq(reserved),
                        blood_requests::status.eq(status.as_str()),
                        blood_requests::version.eq(blood_requests::version + 1),
                    ))
                    .returning(BloodRequest::as_returning())
                    .get_result(c)
                    .await?
            } else {
                request
            };
            diesel::insert_into(entity_transitions::table)
                .values(NewTransition {
                    entity_type: ENTITY,
                    entity_id: request.id,
                    event: "created",
                    from_status: None,
                    to_status: status.as_str(),
                    actor_user_id: Some(new.requester),
                    details: Some(serde_json::json!({ "units_reserved": reserved }).to_string()),
                    at: now,
                    actor_unit_id: None,
                    reason: None,
                    command_id: None,
                })
                .execute(c)
                .await?;

            let mut notified = Vec::new();
            let missing = usize::try_from(new.units - reserved).unwrap_or(0);
            let wanted = (missing * DONORS_PER_MISSING_UNIT).min(MAX_DONORS_NOTIFIED);
            if wanted > 0 && let Some(centre) = h3o::LatLng::new(new.point.lat(), new.point.lng())
                .ok()
                .map(|p| p.to_cell(DONOR_RESOLUTION))
            {
                let donor_names: Vec<&str> = BloodGroup::ALL
                    .into_iter()
                    .filter(|&donor| compatible(new.component, new.group, donor))
                    .map(BloodGroup::as_str)
                    .collect();
                let cutoff = latest_eligible_donation(today);
                for k in DONOR_RINGS {
                    if notified.len() >= wanted {
                        break;
                    }
                    let cells: Vec<i64> = centre
                        .grid_disk::<Vec<CellIndex>>(k)
                        .into_iter()
                        .filter_map(|cell| i64::try_from(u64::from(cell)).ok())
                        .collect();
                    let seen: Vec<i64> = notified.iter().map(|d: &NotifiedDonor| d.user_id).collect();
                    let rows: Vec<(i64, String, Option<NaiveDate>, bool, f64, f64)> = donor_profiles::table
                        .inner_join(users::table)
                        .filter(donor_profiles::h3_cell.eq_any(&cells))
                        .filter(donor_profiles::blood_group.eq_any(&donor_names))
                        .filter(donor_profiles::available.eq(true))
                        .filter(donor_profiles::last_donation_date.is_null().or(donor_profiles::last_donation_date.le(cutoff)))
                        .filter(donor_profiles::user_id.ne(new.requester))
                        .filter(donor_profiles::user_id.ne_all(&seen))
                        .filter(users::is_active.eq(true))
                        .order(donor_profiles::user_id.asc())
                        .limit(MAX_DONORS_SCANNED)
                        .select((
                            donor_profiles::user_id,
                            donor_profiles::blood_group,
                            donor_profiles::last_donation_date,
                            donor_profiles::available,
                            donor_profiles::lat,
                            donor_profiles::lng,
                        ))
                        .load(c)
                        .await?;
                    // The SQL filter is repeated with the domain rules: a donor who is not eligible
                    // and compatible is never told.
                    let mut ring: Vec<NotifiedDonor> = rows
                        .into_iter()
                        .filter(|(_, group, last, available, _, _)| {
                            BloodGroup::parse(group).is_some_and(|g| compatible(new.component, new.group, g))
                                && donor_eligible(*available, *last, today)
                        })
                        .filter_map(|(user_id, _, _, _, lat, lng)| {
                            let at = LatLng::parse(lat, lng).ok()?;
                            Some(NotifiedDonor { user_id, distance_m: at.distance_m(new.point) })
                        })
                        .collect();
                    ring.sort_by(|a, b| a.distance_m.total_cmp(&b.distance_m).then(a.user_id.cmp(&b.user_id)));
                    ring.truncate(wanted - notified.len());
                    notified.extend(ring);
                }
                let title = format!("{} {} needed nearby", new.group, new.component.as_str().replace('_', " "));
                for donor in &notified {
                    let data = serde_json::json!({
                        "request_id": request.id,
                        "blood_group": new.group.as_str(),
                        "component": new.component.as_str(),
                        "urgency": new.urgency.as_str(),
                        "distance_m": donor.distance_m.round() as i64,
                    })
                    .to_string();
                    diesel::insert_into(notifications::table)
                        .values((
                            notifications::user_id.eq(donor.user_id),
                            notifications::kind.eq("blood_request_nearby"),
                            notifications::title.eq(&title),
                            notifications::body.eq(format!(
                                "A patient {:.1} km from you needs {} unit(s). Pledge in the app if you can donate.",
                                donor.distance_m / 1000.0,
                                new.units - reserved
                            )),
                            notifications::data.eq(data),
                            notifications::created_at.eq(now),
                        ))
                        .execute(c)
                        .await?;
                }
            }
            Ok(Created { request, reservations, notified })
        }).await)
    })
    .await
}

/// A donor pledges units: checked again here (profile, eligibility, compatibility), one pledge per
/// donor per request (unique key), and the request's count moved by a version-conditional update.
pub async fn pledge(
    conn: &mut Conn,
    request_id: i64,
    donor: i64,
    units: i32,
) -> Result<BloodRequest, BloodError> {
    with_retries(conn, async |conn| {
        let now = super::now();
        on_conn!(conn, c => c.transaction(async move |c| {
            let request = blood_requests::table
                .find(request_id)
                .select(BloodRequest::as_select())
                .first(c)
                .await
                .optional()?
                .ok_or(BloodError::NotFound)?;
            let from = request.stored_status()?;
            if !from.accepts_pledges() || request.expires_at <= now {
                return Err(BloodError::Closed(if request.expires_at <= now { "expired" } else { from.as_str() }));
            }
            let profile = donor_profiles::table
                .filter(donor_profiles::user_id.eq(donor))
                .select(DonorProfile::as_select())
                .first(c)
                .await
                .optional()?
                .ok_or(BloodError::NoDonorProfile)?;
            let recipient = BloodGroup::parse(&request.blood_group).ok_or(BloodError::Corrupt("blood group"))?;
            let component = Component::parse(&request.component).ok_or(BloodError::Corrupt("component"))?;
            let donor_group = BloodGroup::parse(&profile.blood_group).ok_or(BloodError::Corrupt("donor group"))?;
            if !compatible(component, recipient, donor_group) {
                return Err(BloodError::Incompatible {
                    donor: donor_group.as_str().to_owned(),
                    recipient: recipient.as_str().to_owned(),
                    component: component.as_str(),
                });
            }
            if !donor_eligible(profile.available, profile.last_donation_date, now.date()) {
                return Err(BloodError::NotEligible);
            }
            let missing = request.units_needed - request.units_reserved - request.units_pledged;
            let units = units.min(missing).max(1);
            diesel::insert_into(blood_pledges::table)
                .values((
                    blood_pledges::request_id.eq(request_id),
                    blood_pledges::donor_user_id.eq(donor),
                    blood_pledges::pledged_units.eq(units),
                    blood_pledges::created_at.eq(now),
                    blood_pledges::updated_at.eq(now),
                ))
                .execute(c)
                .await
                .map_err(|e| match e {
                    diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _) => {
                        BloodError::AlreadyPledged
                    }
                    other => BloodError::Db(other),
                })?;
            let pledged = request.units_pledged + units;
            let to = RequestStatus::for_counts(request.units_needed, request.units_reserved, pledged);
            let updated = diesel::update(blood_requests::table.filter(
                blood_requests::id.eq(request_id).and(blood_requests::version.eq(request.version)),
            ))
            .set((
                blood_requests::units_pledged.eq(pledged),
                blood_requests::status.eq(to.as_str()),
                blood_requests::fulfilled_at.eq((to == RequestStatus::Fulfilled).then_some(now)),
                blood_requests::version.eq(blood_requests::version + 1),
                blood_requests::updated_at.eq(now),
            ))
            .returning(BloodRequest::as_returning())
            .get_result(c)
            .await
            .optional()?
            .ok_or(BloodError::Conflict)?;
            diesel::insert_into(entity_transitions::table)
                .values(NewTransition {
                    entity_type: ENTITY,
                    entity_id: request_id,
                    event: "pledged",
                    from_status: Some(from.as_str()),
                    to_status: to.as_str(),
                    actor_user_id: Some(donor),
                    details: Some(serde_json::json!({ "units": units }).to_string()),
                    at: now,
                    actor_unit_id: None,
                    reason: None,
                    command_id: None,
                })
                .execute(c)
                .await?;
            Ok(updated)
        }).await)
    })
    .await
}

/// Cancels a request: its status by a version-conditional update, each held reservation released
/// (`held → released`, then its units moved back to `units_available`), open pledges cancelled.
pub async fn cancel(conn: &mut Conn, request_id: i64, actor: i64) -> Result<BloodRequest, BloodError> {
    close(conn, request_id, Some(actor), RequestStatus::Cancelled).await
}

/// Expires a request whose deadline has passed, releasing its holds like a cancellation (the holds
/// become `expired`). `NotDue` when the deadline is still ahead.
pub async fn expire(conn: &mut Conn, request_id: i64) -> Result<BloodRequest, BloodError> {
    close(conn, request_id, None, RequestStatus::Expired).await
}

/// Ends a live request as `to` (cancelled or expired) and gives its held stock back.
async fn close(
    conn: &mut Conn,
    request_id: i64,
    actor: Option<i64>,
    to: RequestStatus,
) -> Result<BloodRequest, BloodError> {
    let (event, hold_status) = match to {
        RequestStatus::Expired => ("expired", "expired"),
        _ => ("cancelled", "released"),
    };
    with_retries(conn, async |conn| {
        let now = super::now();
        on_conn!(conn, c => c.transaction(async move |c| {
            let request = blood_requests::table
                .find(request_id)
                .select(BloodRequest::as_select())
                .first(c)
                .await
                .optional()?
                .ok_or(BloodError::NotFound)?;
            let from = request.stored_status()?;
            if !from.may_cancel() {
                return Err(BloodError::Closed(from.as_str()));
            }
            if to == RequestStatus::Expired && request.expires_at > now {
                return Err(BloodError::NotDue);
            }
            let updated = diesel::update(blood_requests::table.filter(
                blood_requests::id.eq(request_id).and(blood_requests::version.eq(request.version)),
            ))
            .set((
                blood_requests::status.eq(to.as_str()),
                (to == RequestStatus::Cancelled).then_some(blood_requests::cancelled_at.eq(now)),
                blood_requests::version.eq(blood_requests::version + 1),
                blood_requests::updated_at.eq(now),
            ))
            .returning(BloodRequest::as_returning())
            .get_result(c)
            .await
            .optional()?
            .ok_or(BloodError::Conflict)?;
            let mut held: Vec<(i64, i64, i32)> = blood_reservations::table
                .filter(blood_reservations::request_id.eq(request_id).and(blood_reservations::status.eq("held")))
                .select((blood_reservations::id, blood_reservations::blood_stock_id, blood_reservations::reserved_units))
                .load(c)
                .await?;
            // Stock rows in id order, like every other multi-row claim, so concurrent writers cannot deadlock.
            held.sort_by_key(|&(id, stock, _)| (stock, id));
            let mut released = 0;
            for (id, stock, units) in held {
                let won = diesel::update(blood_reservations::table.filter(
                    blood_reservations::id.eq(id).and(blood_reservations::status.eq("held")),
                ))
                .set((
                    blood_reservations::status.eq(hold_status),
                    blood_reservations::released_at.eq(now),
                    blood_reservations::version.eq(blood_reservations::version + 1),
                    blood_reservations::updated_at.eq(now),
                ))
                .execute(c)
                .await?;
                if won == 0 {
                    continue;
                }
                let back = diesel::update(blood_stock::table.filter(
                    blood_stock::id.eq(stock).and(blood_stock::units_reserved.ge(units)),
                ))
                .set((
                    blood_stock::units_available.eq(blood_stock::units_available + units),
                    blood_stock::units_reserved.eq(blood_stock::units_reserved - units),
                    blood_stock::version.eq(blood_stock::version + 1),
                    blood_stock::updated_at.eq(now),
                ))
                .execute(c)
                .await?;
                if back == 0 {
                    return Err(BloodError::Corrupt("stock reserved count"));
                }
                released += units;
            }
            diesel::update(blood_pledges::table.filter(
                blood_pledges::request_id.eq(request_id).and(blood_pledges::status.eq("pledged")),
            ))
            .set((blood_pledges::status.eq("cancelled"), blood_pledges::updated_at.eq(now)))
            .execute(c)
            .await?;
            diesel::insert_into(entity_transitions::table)
                .values(NewTransition {
                    entity_type: ENTITY,
                    entity_id: request_id,
                    event,
                    from_status: Some(from.as_str()),
                    to_status: to.as_str(),
                    actor_user_id: actor,
                    details: Some(serde_json::json!({ "units_released": released }).to_string()),
                    at: now,
                    actor_unit_id: None,
                    reason: None,
                    command_id: None,
                })
                .execute(c)
                .await?;
            Ok(updated)
        }).await)
    })
    .await
}

/// Most requests or holds handled per sweep.
pub const SWEEP_BATCH: i64 = 100;

/// Live requests whose deadline has passed, and held reservations of live requests whose hold has
/// lapsed (oldest first, at most [`SWEEP_BATCH`] of each).
pub async fn due(conn: &mut Conn, now: NaiveDateTime) -> QueryResult<(Vec<i64>, Vec<i64>)> {
    let live = ["open", "partially_reserved", "reserved", "fulfilled"];
    on_conn!(conn, c => {
        let requests = blood_requests::table
            .filter(blood_requests::status.eq_any(live))
            .filter(blood_requests::expires_at.le(now))
            .order(blood_requests::expires_at.asc())
            .limit(SWEEP_BATCH)
            .select(blood_requests::id)
            .load(c)
            .await?;
        let holds = blood_reservations::table
            .inner_join(blood_requests::table)
            .filter(blood_reservations::status.eq("held"))
            .filter(blood_reservations::expires_at.le(now))
            .filter(blood_requests::status.eq_any(live))
            .filter(blood_requests::expires_at.gt(now))
            .order(blood_reservations::expires_at.asc())
            .limit(SWEEP_BATCH)
            .select(blood_reservations::id)
            .load(c)
            .await?;
        Ok((requests, holds))
    })
}

/// Ends a lapsed hold of a live request: `held → expired` (conditional), its units back to the bank,
/// and the request's reserved count and status recomputed with a version-conditional update. `None`
/// when the hold is no longer held, not yet due, or its request has ended.
pub async fn lapse_hold(conn: &mut Conn, reservation_id: i64) -> Result<Option<BloodRequest>, BloodError> {
    with_retries(conn, async |conn| {
        let now = super::now();
        on_conn!(conn, c => c.transaction(async move |c| {
            let hold: Option<(i64, i64, i32)> = blood_reservations::table
                .filter(blood_reservations::id.eq(reservation_id))
                .filter(blood_reservations::status.eq("held"))
                .filter(blood_reservations::expires_at.le(now))
                .select((blood_reservations::request_id, blood_reservations::blood_stock_id, blood_reservations::reserved_units))
                .first(c)
                .await
                .optional()?;
            let Some((request_id, stock, units)) = hold else {
                return Ok(None);
            };
            let request = blood_requests::table
                .find(request_id)
                .select(BloodRequest::as_select())
                .first(c)
                .await?;
            let from = request.stored_status()?;
            if !from.may_cancel() {
                return Ok(None);
            }
            let won = diesel::update(blood_reservations::table.filter(
                blood_reservations::id.eq(reservation_id).and(blood_reservations::status.eq("held")),
            ))
            .set((
                blood_reservations::status.eq("expired"),
                blood_reservations::released_at.eq(now),
                blood_reservations::version.eq(blood_reservations::version + 1),
                blood_reservations::updated_at.eq(now),
            ))
            .execute(c)
            .await?;
            if won == 0 {
                return Ok(None);
            }
            let back = diesel::update(blood_stock::table.filter(
                blood_stock::id.eq(stock).and(blood_stock::units_reserved.ge(units)),
            ))
            .set((
                blood_stock::units_available.eq(blood_stock::units_available + units),
                blood_stock::units_reserved.eq(blood_stock::units_reserved - units),
                blood_stock::version.eq(blood_stock::version + 1),
                blood_stock::updated_at.eq(now),
            ))
            .execute(c)
            .await?;
            if back == 0 {
                return Err(BloodError::Corrupt("stock reserved count"));
            }
            let reserved = (request.units_reserved - units).max(0);
            let to = RequestStatus::for_counts(request.units_needed, reserved, request.units_pledged);
            let updated = diesel::update(blood_requests::table.filter(
                blood_requests::id.eq(request_id).and(blood_requests::version.eq(request.version)),
            ))
            .set((
                blood_requests::units_reserved.eq(reserved),
                blood_requests::status.eq(to.as_str()),
                blood_requests::version.eq(blood_requests::version + 1),
                blood_requests::updated_at.eq(now),
            ))
            .returning(BloodRequest::as_returning())
            .get_result(c)
            .await
            .optional()?
            .ok_or(BloodError::Conflict)?;
            diesel::insert_into(entity_transitions::table)
                .values(NewTransition {
                    entity_type: ENTITY,
                    entity_id: request_id,
                    event: "hold_expired",
                    from_status: Some(from.as_str()),
                    to_status: to.as_str(),
                    actor_user_id: None,
                    details: Some(serde_json::json!({ "reservation_id": reservation_id, "units": units }).to_string()),
                    at: now,
                    actor_unit_id: None,
                    reason: None,
                    command_id: None,
                })
                .execute(c)
                .await?;
            Ok(Some(updated))
        }).await)
    })
    .await
}

pub async fn find(conn: &mut Conn, id: i64) -> QueryResult<Option<BloodRequest>> {
    on_conn!(conn, c => blood_requests::table
        .find(id)
        .select(BloodRequest::as_select())
        .first(c)
        .await
        .optional())
}

/// The request's reservations with their banks, oldest first.
pub async fn reservations(conn: &mut Conn, request_id: i64) -> QueryResult<Vec<Reservation>> {
    on_conn!(conn, c => blood_reservations::table
        .inner_join(blood_stock::table.inner_join(blood_banks::table))
        .filter(blood_reservations::request_id.eq(request_id))
        .order(blood_reservations::id.asc())
        .select((
            blood_reservations::id,
            blood_banks::id,
            blood_banks::name,
            blood_stock::blood_group,
            blood_stock::component,
            blood_reservations::reserved_units,
            blood_reservations::status,
            blood_reservations::expires_at,
        ))
        .load(c)
        .await)
}

/// Live pledges (pledged or donated) to a request.
pub async fn pledge_count(conn: &mut Conn, request_id: i64) -> QueryResult<i64> {
    Ok(pledge_counts(conn, &[request_id])
        .await?
        .get(&request_id)
        .copied()
        .unwrap_or(0))
}

/// Live pledges per request, for a page of requests in one query (requests without any are absent).
pub async fn pledge_counts(
    conn: &mut Conn,
    request_ids: &[i64],
) -> QueryResult<std::collections::HashMap<i64, i64>> {
    let rows: Vec<(i64, i64)> = on_conn!(conn, c => blood_pledges::table
        .filter(blood_pledges::request_id.eq_any(request_ids))
        .filter(blood_pledges::status.eq_any(["pledged", "donated"]))
        .group_by(blood_pledges::request_id)
        .select((blood_pledges::request_id, diesel::dsl::count_star()))
        .load(c)
        .await)?;
    Ok(rows.into_iter().collect())
}

/// One page of requests, newest first: one requester's, or everyone's when `requester` is None.
pub async fn list(
    conn: &mut Conn,
    requester: Option<i64>,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<BloodRequest>, i64)> {
    on_conn!(conn, c => {
        let mut rows = blood_requests::table.select(BloodRequest::as_select()).into_boxed();
        let mut count = blood_requests::table.count().into_boxed();
        if let Some(user) = requester {
            rows = rows.filter(blood_requests::requester_user_id.eq(user));
            count = count.filter(blood_requests::requester_user_id.eq(user));
        }
        let rows = rows
            .order((blood_requests::created_at.desc(), blood_requests::id.desc()))
            .limit(limit)
            .offset(offset)
            .load(c)
            .await?;
        Ok((rows, count.get_result(c).await?))
    })
}
