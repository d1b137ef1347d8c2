//! Doctors, their weekly schedules, generated slots and appointments. A slot is claimed by one
//! conditional write on its row (hold, then book); the partial unique index on live appointments per slot
//! is the last line of defence.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate, NaiveDateTime, TimeDelta};
use diesel::{prelude::*, result::DatabaseErrorKind};
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::{
    Conn, Retryable,
    emergency::NewTransition,
    schema::{
        appointments as ap, doctor_schedules as ds, doctor_slots as sl, doctors, entity_transitions, users,
    },
    with_retries,
};
use crate::on_conn;

/// `entity_transitions.entity_type` of appointments.
pub const ENTITY: &str = "appointment";
/// Schedules store minutes after local midnight in India (UTC+05:30, no daylight saving).
pub const IST_OFFSET: TimeDelta = TimeDelta::minutes(330);
/// Slot ids handled per `IN (…)` list (well under either backend's bound-parameter limit).
const ID_CHUNK: usize = 500;
/// Expired holds released per sweep run.
const SWEEP_BATCH: i64 = 100;
/// Appointment statuses that still occupy their slot.
pub const LIVE_STATUSES: [&str; 2] = [PENDING_PAYMENT, CONFIRMED];
/// An appointment booked for online payment, holding its slot until paid or lapsed.
pub const PENDING_PAYMENT: &str = "pending_payment";
pub const CONFIRMED: &str = "confirmed";

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = doctors)]
pub struct DoctorRow {
    pub id: i64,
    pub user_id: i64,
    pub hospital_id: Option<i64>,
    pub specialty: String,
    pub qualifications: String,
    pub experience_years: i32,
    pub languages: String,
    pub fee_paise: i64,
    pub video_enabled: bool,
    pub rating: f64,
    pub rating_count: i32,
    pub bio: Option<String>,
    pub is_active: bool,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sl)]
pub struct SlotRow {
    pub id: i64,
    pub doctor_id: i64,
    pub slot_start: NaiveDateTime,
    pub slot_end: NaiveDateTime,
    pub mode: String,
    pub status: String,
    pub held_by: Option<i64>,
    pub hold_expires_at: Option<NaiveDateTime>,
    pub version: i64,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = ap)]
pub struct AppointmentRow {
    pub id: i64,
    pub slot_id: i64,
    pub user_id: i64,
    pub doctor_id: i64,
    pub patient_name: String,
    pub reason: Option<String>,
    pub mode: String,
    pub status: String,
    pub fee_paise: i64,
    /// The captured payment, for an appointment paid online.
    pub payment_id: Option<i64>,
    pub cancel_reason: Option<String>,
    pub cancelled_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

/// One weekly window of a schedule, validated.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// 0 = Monday .. 6 = Sunday.
    pub weekday: i32,
    pub start_minute: i32,
    pub end_minute: i32,
    pub slot_minutes: i32,
    pub mode: &'static str,
}

/// Filters of the doctor list; every one optional.
#[derive(Debug, Clone, Default)]
pub struct DoctorFilter {
    pub specialty: Option<String>,
    pub hospital_id: Option<i64>,
    pub max_fee_paise: Option<i64>,
    pub min_rating: Option<f64>,
    /// Only doctors with a bookable slot in `[from, to)` (UTC).
    pub available: Option<(NaiveDateTime, NaiveDateTime)>,
}

/// A booking to confirm, validated.
#[derive(Debug, Clone)]
pub struct NewBooking {
    pub slot_id: i64,
    pub user_id: i64,
    pub mode: &'static str,
    /// Cash on delivery confirms at once; online payment waits for the payment.
    pub status: &'static str,
    pub patient_name: String,
    pub reason: Option<String>,
}

/// Why a slot or appointment write did not happen. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum SlotError {
    #[error("no such slot")]
    SlotNotFound,
    #[error("the slot is not available")]
    Unavailable,
    #[error("the slot is not held by you, or your hold expired")]
    NotHeld,
    #[error("the slot does not offer `{0}` consultations")]
    ModeNotOffered(&'static str),
    #[error("no such appointment")]
    AppointmentNotFound,
    #[error("the appointment cannot be cancelled from `{0}`")]
    AppointmentState(String),
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

impl Retryable for SlotError {
    fn db_error(&self) -> Option<&diesel::result::Error> {
        match self {
            Self::Db(error) => Some(error),
            _ => None,
        }
    }
}

/// UTC bounds of a local (IST) calendar day.
pub fn local_day(date: NaiveDate) -> (NaiveDateTime, NaiveDateTime) {
    let start = date.and_time(chrono::NaiveTime::MIN) - IST_OFFSET;
    (start, start + TimeDelta::days(1))
}

/// Today's date in India.
pub fn local_today(now: NaiveDateTime) -> NaiveDate {
    (now + IST_OFFSET).date()
}

/// The slots `windows` give on `days` local days from `from`, starting after `now`: (start, end, mode).
pub fn slots_of(
    windows: &[Window],
    from: NaiveDate,
    days: u32,
    now: NaiveDateTime,
) -> Vec<(NaiveDateTime, NaiveDateTime, &'static str)> {
    let mut out = Vec::new();
    for date in from.iter_days().take(days as usize) {
        let (midnight, _) = local_day(date);
        let weekday = i32::try_from(date.weekday().num_days_from_monday()).unwrap_or(-1);
        for w in windows
            .iter()
            .filter(|w| w.weekday == weekday && w.slot_minutes > 0)
        {
            let mut minute = w.start_minute;
            while minute + w.slot_minutes <= w.end_minute {
                let start = midnight + TimeDelta::minutes(i64::from(minute));
                if start > now {
                    out.push((
                        start,
                        start + TimeDelta::minutes(i64::from(w.slot_minutes)),
                        w.mode,
                    ));
                }
                minute += w.slot_minutes;
            }
        }
    }
    out
}

/// A slot to insert: (doctor id, start, end, mode).
type NewSlot = (i64, NaiveDateTime, NaiveDateTime, &'static str);

/// Inserts `&[NewSlot]` on the concrete connection `$c` (inside `on_conn!`), skipping slots that exist;
/// evaluates to how many were added. One statement per slot: Diesel has no multi-row insert with
/// ON CONFLICT on SQLite; callers run it in a transaction so the round trips stay cheap.
macro_rules! insert_slots {
    ($c:ident, $slots:expr, $now:expr) => {{
        let mut added = 0;
        for &(doctor, start, end, mode) in $slots {
            added += diesel::insert_into(sl::table)
                .values((
                    sl::doctor_id.eq(doctor),
                    sl::slot_start.eq(start),
                    sl::slot_end.eq(end),
                    sl::mode.eq(mode),
                    sl::created_at.eq($now),
                    sl::updated_at.eq($now),
                ))
                .on_conflict((sl::doctor_id, sl::slot_start))
                .do_nothing()
                .execute($c)
                .await?;
        }
        added
    }};
}

// -------------------------------------------------------------------------------------------- doctors

/// Active doctors matching `filter` with their names, by rating then id.
pub async fn list(
    conn: &mut Conn,
    filter: &DoctorFilter,
    now: NaiveDateTime,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<(DoctorRow, String)>, i64)> {
    macro_rules! filtered {
        ($query:expr) => {{
            let mut query = $query.filter(doctors::is_active.eq(true));
            if let Some(specialty) = &filter.specialty {
                query = query.filter(
                    diesel::dsl::sql::<diesel::sql_types::Bool>("LOWER(doctors.specialty) = ")
                        .bind::<diesel::sql_types::Text, _>(specialty.to_lowercase()),
                );
            }
            if let Some(hospital) = filter.hospital_id {
                query = query.filter(doctors::hospital_id.eq(hospital));
            }
            if let Some(fee) = filter.max_fee_paise {
                query = query.filter(doctors::fee_paise.le(fee));
            }
            if let Some(rating) = filter.min_rating {
                query = query.filter(doctors::rating.ge(rating));
            }
            if let Some((from, to)) = filter.available {
                let from = from.max(now);
                query = query.filter(
                    doctors::id.eq_any(
                        sl::table
                            .filter(sl::slot_start.ge(from).and(sl::slot_start.lt(to)))
                            .filter(
                                sl::status
                                    .eq("open")
                                    .or(sl::status.eq("held").and(sl::hold_expires_at.lt(now))),
                            )
                            .select(sl::doctor_id),
                    ),
                );
            }
            query
        }};
    }
    on_conn!(conn, c => {
        let rows = filtered!(doctors::table.inner_join(users::table).into_boxed())
            .order((doctors::rating.desc(), doctors::id.asc()))
            .limit(limit)
            .offset(offset)
            .select((DoctorRow::as_select(), users::name))
            .load(c)
            .await?;
        let total: i64 = filtered!(doctors::table.inner_join(users::table).into_boxed())
            .count()
            .get_result(c)
            .await?;
        Ok((rows, total))
    })
}

pub async fn find(conn: &mut Conn, id: i64) -> QueryResult<Option<(DoctorRow, String)>> {
    on_conn!(conn, c => doctors::table
        .inner_join(users::table)
        .filter(doctors::id.eq(id).and(doctors::is_active.eq(true)))
        .select((DoctorRow::as_select(), users::name))
        .first(c)
        .await)
    .optional()
}

/// The doctor profile of a user with the role `doctor`.
pub async fn find_by_user(conn: &mut Conn, user_id: i64) -> QueryResult<Option<DoctorRow>> {
    on_conn!(conn, c => doctors::table
        .filter(doctors::user_id.eq(user_id))
        .select(DoctorRow::as_select())
        .first(c)
        .await)
    .optional()
}

/// A doctor's bookable slots (open, or held with a lapsed hold) starting in `[from, to)`, by time.
pub async fn bookable_slots(
    conn: &mut Conn,
    doctor: i64,
    from: NaiveDateTime,
    to: NaiveDateTime,
    now: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<SlotRow>> {
    let from = from.max(now);
    on_conn!(conn, c => sl::table
        .filter(sl::doctor_id.eq(doctor))
        .filter(sl::slot_start.ge(from).and(sl::slot_start.lt(to)))
        .filter(sl::status.eq("open").or(sl::status.eq("held").and(sl::hold_expires_at.lt(now))))
        .order(sl::slot_start.asc())
        .limit(limit)
        .select(SlotRow::as_select())
        .load(c)
        .await)
}

pub async fn find_slot(conn: &mut Conn, id: i64) -> QueryResult<Option<SlotRow>> {
    on_conn!(conn, c => sl::table.find(id).select(SlotRow::as_select()).first(c).await).optional()
}

// ------------------------------------------------------------------------------------------ schedules

/// Inserts the missing slots of every active schedule (of `doctor`, or of every active doctor) for
/// `days` local days from today. Idempotent: UNIQUE (doctor_id, slot_start) skips existing slots.
/// Returns how many slots were added.
pub async fn generate_slots(
    conn: &mut Conn,
    doctor: Option<i64>,
    days: u32,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let schedules: Vec<(i64, i32, i32, i32, i32, String)> = on_conn!(conn, c => {
        let mut query = ds::table
            .inner_join(doctors::table)
            .filter(ds::is_active.eq(true).and(doctors::is_active.eq(true)))
            .select((ds::doctor_id, ds::weekday, ds::start_minute, ds::end_minute, ds::slot_minutes, ds::mode))
            .into_boxed();
        if let Some(doctor) = doctor {
            query = query.filter(ds::doctor_id.eq(doctor));
        }
        query.load(c).await
    })?;
    let mut by_doctor: std::collections::BTreeMap<i64, Vec<Window>> = Default::default();
    for (doctor, weekday, start_minute, end_minute, slot_minutes, mode) in schedules {
        by_doctor.entry(doctor).or_default().push(Window {
            weekday,
            start_minute,
            end_minute,
            slot_minutes,
            mode: static_mode(&mode),
        });
    }
    let mut slots: Vec<NewSlot> = Vec::new();
    for (doctor, windows) in &by_doctor {
        slots.extend(
            slots_of(windows, local_today(now), days, now)
                .into_iter()
                .map(|(start, end, mode)| (*doctor, start, end, mode)),
        );
    }
    // Most runs find every slot in place: read what exists and insert only the rest (the ON CONFLICT
    // still settles a concurrent run on another node).
    let doctor_ids: Vec<i64> = by_doctor.keys().copied().collect();
    let existing: std::collections::HashSet<(i64, NaiveDateTime)> = on_conn!(&mut *conn, c => sl::table
        .filter(sl::doctor_id.eq_any(&doctor_ids).and(sl::slot_start.gt(now)))
        .select((sl::doctor_id, sl::slot_start))
        .load::<(i64, NaiveDateTime)>(c)
        .await)?
    .into_iter()
    .collect();
    slots.retain(|(doctor, start, _, _)| !existing.contains(&(*doctor, *start)));
    if slots.is_empty() {
        return Ok(0);
    }
    let slots = &slots;
    let added = on_conn!(conn, c => c.transaction(async move |c| {
        Ok::<_, diesel::result::Error>(insert_slots!(c, slots, now))
    }).await)?;
    Ok(added)
}

fn static_mode(mode: &str) -> &'static str {
    match mode {
        "in_person" => "in_person",
        "video" => "video",
        _ => "both",
    }
}

/// Replaces a doctor's weekly schedule and brings the next `days` of slots in line, in one transaction:
/// future open slots outside the new schedule are removed (blocked when an old cancelled appointment
/// still refers to them), the new schedule's missing slots are added (their count is returned); held and
/// booked slots are kept, so no booking is lost.
pub async fn replace_schedule(
    conn: &mut Conn,
    doctor: i64,
    windows: &[Window],
    days: u32,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let slots: Vec<NewSlot> = slots_of(windows, local_today(now), days, now)
        .into_iter()
        .map(|(start, end, mode)| (doctor, start, end, mode))
        .collect();
    let wanted: BTreeMap<NaiveDateTime, (NaiveDateTime, &'static str)> = slots
        .iter()
        .map(|&(_, start, end, mode)| (start, (end, mode)))
        .collect();
    let rows: Vec<_> = windows
        .iter()
        .map(|w| {
            (
                ds::doctor_id.eq(doctor),
                ds::weekday.eq(w.weekday),
                ds::start_minute.eq(w.start_minute),
                ds::end_minute.eq(w.end_minute),
                ds::slot_minutes.eq(w.slot_minutes),
                ds::mode.eq(w.mode),
                ds::created_at.eq(now),
                ds::updated_at.eq(now),
            )
        })
        .collect();
    let (rows, wanted, slots) = (&rows, &wanted, &slots);

    on_conn!(conn, c => c.transaction(async move |c| {
        diesel::delete(ds::table.filter(ds::doctor_id.eq(doctor))).execute(c).await?;
        for row in rows {
            diesel::insert_into(ds::table).values(row).execute(c).await?;
        }
        let current: Vec<(i64, NaiveDateTime, NaiveDateTime, String, String)> = sl::table
            .filter(sl::doctor_id.eq(doctor).and(sl::slot_start.gt(now)))
            .select((sl::id, sl::slot_start, sl::slot_end, sl::mode, sl::status))
            .load(c)
            .await?;
        // Held and booked slots stay as they are; nothing new may overlap them.
        let taken: Vec<(NaiveDateTime, NaiveDateTime)> = current
            .iter()
            .filter(|(.., status)| status == "held" || status == "booked")
            .map(|&(_, start, end, ..)| (start, end))
            .collect();
        let clashes = |start: NaiveDateTime, end: NaiveDateTime| {
            taken.iter().any(|&(s, e)| start < e && s < end)
        };
        let mut stale = Vec::new();
        for (id, start, end, mode, status) in &current {
            if status != "open" {
                continue;
            }
            match wanted.get(start) {
                Some(&(new_end, _)) if clashes(*start, new_end) => stale.push(*id),
                Some(&(new_end, new_mode)) if new_end != *end || new_mode != mode => {
                    diesel::update(sl::table.find(*id).filter(sl::status.eq("open")))
                        .set((
                            sl::slot_end.eq(new_end),
                            sl::mode.eq(new_mode),
                            sl::version.eq(sl::version + 1),
                            sl::updated_at.eq(now),
                        ))
                        .execute(c)
                        .await?;
                }
                Some(_) => {}
                None => stale.push(*id),
            }
        }
        let fresh: Vec<NewSlot> = slots
            .iter()
            .copied()
            .filter(|&(_, start, end, _)| !clashes(start, end))
            .collect();
        for ids in stale.chunks(ID_CHUNK) {
            let referenced: Vec<i64> = ap::table
                .filter(ap::slot_id.eq_any(ids))
                .select(ap::slot_id)
                .distinct()
                .load(c)
                .await?;
            let unreferenced: Vec<i64> = ids.iter().copied().filter(|id| !referenced.contains(id)).collect();
            diesel::delete(sl::table.filter(sl::id.eq_any(&unreferenced).and(sl::status.eq("open"))))
                .execute(c)
                .await?;
            diesel::update(sl::table.filter(sl::id.eq_any(&referenced).and(sl::status.eq("open"))))
                .set((sl::status.eq("blocked"), sl::version.eq(sl::version + 1), sl::updated_at.eq(now)))
                .execute(c)
                .await?;
        }
        Ok::<_, diesel::result::Error>(insert_slots!(c, &fresh, now))
    }).await)
}

// ------------------------------------------------------------------------------------- hold and book

/// Holds a slot for `user` until `until`: one conditional write wins for an open slot or a lapsed hold
/// (anyone's). Re-holding one's own live hold changes nothing and answers the hold as it is.
pub async fn hold(
    conn: &mut Conn,
    slot: i64,
    user: i64,
    until: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<SlotRow, SlotError> {
    let claimed = on_conn!(&mut *conn, c => diesel::update(
            sl::table
                .find(slot)
                .filter(sl::slot_start.gt(now))
                .filter(sl::status.eq("open").or(sl::status.eq("held").and(sl::hold_expires_at.lt(now))))
                .filter(sl::doctor_id.eq_any(doctors::table.filter(doctors::is_active.eq(true)).select(doctors::id))),
        )
        .set((
            sl::status.eq("held"),
            sl::held_by.eq(user),
            sl::hold_expires_at.eq(until),
            sl::version.eq(sl::version + 1),
            sl::updated_at.eq(now),
        ))
        .returning(SlotRow::as_returning())
        .get_result(c)
        .await)
    .optional()?;
    if let Some(row) = claimed {
        return Ok(row);
    }
    // Only explains the refusal; the claim above decided it.
    match find_slot(conn, slot).await? {
        None => Err(SlotError::SlotNotFound),
        Some(row)
            if row.status == "held"
                && row.held_by == Some(user)
                && row.hold_expires_at.is_some_and(|t| t >= now)
                && row.slot_start > now =>
        {
            Ok(row)
        }
        Some(_) => Err(SlotError::Unavailable),
    }
}

/// Confirms a booking in one transaction: the caller's live hold becomes `booked` (conditional write),
/// the appointment is inserted (the live-appointment index refuses a second one) and its timeline row
/// written. Any refusal rolls everything back.
pub async fn book(
    conn: &mut Conn,
    new: &NewBooking,
    now: NaiveDateTime,
) -> Result<AppointmentRow, SlotError> {
    with_retries(conn, async |conn| {
        on_conn!(conn, c => c.transaction(async move |c| {
            let slot = diesel::update(
                    sl::table
                        .find(new.slot_id)
                        .filter(sl::status.eq("held"))
                        .filter(sl::held_by.eq(new.user_id))
                        .filter(sl::hold_expires_at.gt(now)),
                )
                .set((
                    sl::status.eq("booked"),
                    sl::hold_expires_at.eq(None::<NaiveDateTime>),
                    sl::version.eq(sl::version + 1),
                    sl::updated_at.eq(now),
                ))
                .returning(SlotRow::as_returning())
                .get_result(c)
                .await
                .optional()?;
            let Some(slot) = slot else {
                let exists = sl::table.find(new.slot_id).select(sl::id).first::<i64>(c).await.optional()?;
                return Err(if exists.is_some() { SlotError::NotHeld } else { SlotError::SlotNotFound });
            };
            let (fee, video) = doctors::table
                .find(slot.doctor_id)
                .select((doctors::fee_paise, doctors::video_enabled))
                .first::<(i64, bool)>(c)
                .await?;
            let offered = slot.mode == "both" || slot.mode == new.mode;
            if !offered || (new.mode == "video" && !video) {
                return Err(SlotError::ModeNotOffered(new.mode));
            }
            let row = diesel::insert_into(ap::table)
                .values((
                    ap::slot_id.eq(slot.id),
                    ap::user_id.eq(new.user_id),
                    ap::doctor_id.eq(slot.doctor_id),
                    ap::patient_name.eq(&new.patient_name),
                    ap::reason.eq(&new.reason),
                    ap::mode.eq(new.mode),
                    ap::status.eq(new.status),
                    ap::fee_paise.eq(fee),
                    ap::created_at.eq(now),
                    ap::updated_at.eq(now),
                ))
                .returning(AppointmentRow::as_returning())
                .get_result(c)
                .await
                .map_err(|e| match e {
                    diesel::result::Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                        SlotError::Unavailable
                    }
                    other => other.into(),
                })?;
            diesel::insert_into(entity_transitions::table)
                .values(NewTransition {
                    entity_type: ENTITY,
                    entity_id: row.id,
                    event: "booked",
                    from_status: None,
                    to_status: new.status,
                    actor_user_id: Some(new.user_id),
                    actor_unit_id: None,
                    reason: None,
                    command_id: Some("book"),
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

/// Cancels `user`'s live appointment and frees its slot, in one transaction of conditional writes.
pub async fn cancel(
    conn: &mut Conn,
    id: i64,
    user: i64,
    reason: Option<&str>,
    now: NaiveDateTime,
) -> Result<AppointmentRow, SlotError> {
    let always = now + TimeDelta::days(36_500);
    cancel_where(conn, id, user, &LIVE_STATUSES, always, Some(user), reason, now).await
}

/// Cancels appointment `id` of `user` if it is in one of `statuses` and was booked before
/// `booked_before`, in one transaction: the appointment, its slot opened again, the timeline row and a
/// full refund of whatever was paid for it (sent by the refund worker).
#[expect(
    clippy::too_many_arguments,
    reason = "one conditional cancellation, its conditions spelled out"
)]
async fn cancel_where(
    conn: &mut Conn,
    id: i64,
    user: i64,
    statuses: &[&str],
    booked_before: NaiveDateTime,
    actor: Option<i64>,
    reason: Option<&str>,
    now: NaiveDateTime,
) -> Result<AppointmentRow, SlotError> {
    with_retries(conn, async |conn| {
        on_conn!(conn, c => c.transaction(async move |c| {
            let cancelled = diesel::update(
                    ap::table
                        .find(id)
                        .filter(ap::user_id.eq(user))
                        .filter(ap::status.eq_any(statuses))
                        .filter(ap::created_at.lt(booked_before)),
                )
                .set((
                    ap::status.eq("cancelled"),
                    ap::cancel_reason.eq(reason),
                    ap::cancelled_at.eq(now),
                    ap::version.eq(ap::version + 1),
                    ap::updated_at.eq(now),
                ))
                .returning(AppointmentRow::as_returning())
                .get_result(c)
                .await
                .optional()?;
            let Some(row) = cancelled else {
                let status = ap::table
                    .filter(ap::id.eq(id).and(ap::user_id.eq(user)))
                    .select(ap::status)
                    .first::<String>(c)
                    .await
                    .optional()?;
                return Err(match status {
                    Some(status) => SlotError::AppointmentState(status),
                    None => SlotError::AppointmentNotFound,
                });
            };
            diesel::update(sl::table.find(row.slot_id).filter(sl::status.eq("booked")))
                .set((
                    sl::status.eq("open"),
                    sl::held_by.eq(None::<i64>),
                    sl::hold_expires_at.eq(None::<NaiveDateTime>),
                    sl::version.eq(sl::version + 1),
                    sl::updated_at.eq(now),
                ))
                .execute(c)
                .await?;
            diesel::insert_into(entity_transitions::table)
                .values(NewTransition {
                    entity_type: ENTITY,
                    entity_id: row.id,
                    event: "cancelled",
                    from_status: None,
                    to_status: "cancelled",
                    actor_user_id: actor,
                    actor_unit_id: None,
                    reason,
                    command_id: Some("cancel"),
                    at: now,
                    details: None,
                })
                .execute(c)
                .await?;
            super::refunds::record_refunds!(
                c,
                super::payments::PURPOSE_APPOINTMENT,
                row.id,
                reason.unwrap_or("appointment cancelled"),
                actor,
                now
            )
            .await?;
            Ok(row)
        }).await)
    })
    .await
}

/// Releases lapsed holds (at most [`SWEEP_BATCH`] per run), each by a conditional write so several
/// nodes sweeping at once release each hold once. Returns (slot id, doctor id, former holder).
/// Cancels appointments booked for online payment and still unpaid `window` after booking, freeing
/// their slots; returns (appointment, slot, doctor, customer) of each. Each cancellation is conditional
/// on the appointment still awaiting payment, so concurrent sweeps lapse it once, and a payment captured
/// after the lapse is refunded by the settlement.
pub async fn lapse_unpaid(
    conn: &mut Conn,
    window: TimeDelta,
    now: NaiveDateTime,
) -> Result<Vec<(i64, i64, i64, i64)>, SlotError> {
    let cutoff = now - window;
    let due: Vec<(i64, i64)> = on_conn!(&mut *conn, c => ap::table
        .filter(ap::status.eq(PENDING_PAYMENT).and(ap::created_at.lt(cutoff)))
        .order(ap::created_at.asc())
        .limit(SWEEP_BATCH)
        .select((ap::id, ap::user_id))
        .load(c)
        .await)?;
    let mut lapsed = Vec::new();
    for (id, user) in due {
        let reason = Some("not paid in time");
        match cancel_where(conn, id, user, &[PENDING_PAYMENT], cutoff, None, reason, now).await {
            Ok(row) => lapsed.push((row.id, row.slot_id, row.doctor_id, row.user_id)),
            // Paid or cancelled meanwhile.
            Err(SlotError::AppointmentState(_) | SlotError::AppointmentNotFound) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(lapsed)
}

pub async fn release_expired_holds(conn: &mut Conn, now: NaiveDateTime) -> QueryResult<Vec<(i64, i64, i64)>> {
    let due: Vec<(i64, i64, Option<i64>)> = on_conn!(&mut *conn, c => sl::table
        .filter(sl::status.eq("held").and(sl::hold_expires_at.lt(now)))
        .order(sl::hold_expires_at.asc())
        .limit(SWEEP_BATCH)
        .select((sl::id, sl::doctor_id, sl::held_by))
        .load(c)
        .await)?;
    let mut released = Vec::new();
    for (id, doctor, holder) in due {
        let Some(holder) = holder else { continue };
        let changed = on_conn!(&mut *conn, c => diesel::update(
                sl::table
                    .find(id)
                    .filter(sl::status.eq("held"))
                    .filter(sl::held_by.eq(holder))
                    .filter(sl::hold_expires_at.lt(now)),
            )
            .set((
                sl::status.eq("open"),
                sl::held_by.eq(None::<i64>),
                sl::hold_expires_at.eq(None::<NaiveDateTime>),
                sl::version.eq(sl::version + 1),
                sl::updated_at.eq(now),
            ))
            .execute(c)
            .await)?;
        if changed == 1 {
            released.push((id, doctor, holder));
        }
    }
    Ok(released)
}

// ------------------------------------------------------------------------------------- appointments

/// An appointment with its slot's times.
pub type AppointmentWithSlot = (AppointmentRow, NaiveDateTime, NaiveDateTime);

/// `user`'s appointments, newest slot first.
pub async fn list_for_user(
    conn: &mut Conn,
    user: i64,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<AppointmentWithSlot>, i64)> {
    on_conn!(conn, c => {
        let rows = ap::table
            .inner_join(sl::table)
            .filter(ap::user_id.eq(user))
            .order((sl::slot_start.desc(), ap::id.desc()))
            .limit(limit)
            .offset(offset)
            .select((AppointmentRow::as_select(), sl::slot_start, sl::slot_end))
            .load(c)
            .await?;
        let total: i64 = ap::table.filter(ap::user_id.eq(user)).count().get_result(c).await?;
        Ok((rows, total))
    })
}

/// A doctor's appointments whose slot starts in `[from, to)`, by time (bounded to `limit`).
pub async fn list_for_doctor(
    conn: &mut Conn,
    doctor: i64,
    from: NaiveDateTime,
    to: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<AppointmentWithSlot>> {
    on_conn!(conn, c => ap::table
        .inner_join(sl::table)
        .filter(ap::doctor_id.eq(doctor))
        .filter(sl::slot_start.ge(from).and(sl::slot_start.lt(to)))
        .order((sl::slot_start.asc(), ap::id.asc()))
        .limit(limit)
        .select((AppointmentRow::as_select(), sl::slot_start, sl::slot_end))
        .load(c)
        .await)
}

/// One appointment of `user`, with its slot's times.
pub async fn find_for_user(conn: &mut Conn, id: i64, user: i64) -> QueryResult<Option<AppointmentWithSlot>> {
    on_conn!(conn, c => ap::table
        .inner_join(sl::table)
        .filter(ap::id.eq(id).and(ap::user_id.eq(user)))
        .select((AppointmentRow::as_select(), sl::slot_start, sl::slot_end))
        .first(c)
        .await)
    .optional()
}
