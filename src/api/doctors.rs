//! `/doctors`: the doctor directory with bookable slots, a doctor's weekly schedule and day, slot holds
//! and appointments. A slot is claimed by conditional writes on its row; an appointment the caller may
//! not see answers 404.

use actix_web::{HttpResponse, get, post, put, web};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Page, PageQuery, Problems, ReasonBody};
use crate::{
    auth::AuthUser,
    db::doctors::{
        self, AppointmentWithSlot, DoctorFilter, DoctorRow, NewBooking, SlotError, SlotRow, Window,
    },
    domain::Role,
    error::{ApiError, ErrorBody, ErrorCode},
    state::AppState,
};

/// Longest free text (notes, reasons, specialty filter).
const MAX_TEXT_CHARS: usize = 500;
/// Days of open slots a doctor's page shows without `?date=`.
const DEFAULT_SLOT_DAYS: i64 = 7;
/// Most slots one doctor page lists.
const MAX_SLOTS: i64 = 500;
/// Most appointments one doctor's day lists.
const MAX_DAY_APPOINTMENTS: i64 = 200;
/// Most weekly windows in a schedule.
const MAX_WINDOWS: usize = 28;
/// Shortest and longest slot, minutes.
const SLOT_MINUTES: std::ops::RangeInclusive<i32> = 5..=240;

impl From<SlotError> for ApiError {
    fn from(error: SlotError) -> Self {
        match error {
            SlotError::SlotNotFound => ApiError::not_found("slot"),
            SlotError::AppointmentNotFound => ApiError::not_found("appointment"),
            SlotError::Unavailable | SlotError::NotHeld => {
                ApiError::new(ErrorCode::SlotUnavailable, error.to_string())
            }
            SlotError::ModeNotOffered(_) => ApiError::field("mode", error.to_string()),
            SlotError::AppointmentState(_) => ApiError::new(ErrorCode::InvalidTransition, error.to_string()),
            SlotError::Db(e) => e.into(),
        }
    }
}

fn utc(at: NaiveDateTime) -> DateTime<Utc> {
    at.and_utc()
}

fn parse_date(p: &mut Problems, field: &str, raw: Option<&str>) -> Option<NaiveDate> {
    let raw = raw?;
    let parsed = crate::domain::dates::parse_day(raw);
    if parsed.is_none() {
        p.add(field, "must be a date as YYYY-MM-DD between 1900 and 2199");
    }
    parsed
}

// -------------------------------------------------------------------------------------------- views

#[derive(Debug, Serialize, ToSchema)]
pub struct DoctorView {
    pub id: i64,
    pub name: String,
    pub specialty: String,
    pub qualifications: String,
    pub experience_years: i32,
    pub languages: Vec<String>,
    pub fee_paise: i64,
    pub video_enabled: bool,
    pub rating: f64,
    pub rating_count: i32,
    pub hospital_id: Option<i64>,
    pub bio: Option<String>,
}

fn doctor_view(row: DoctorRow, name: String) -> DoctorView {
    DoctorView {
        id: row.id,
        name,
        languages: serde_json::from_str(&row.languages).unwrap_or_default(),
        specialty: row.specialty,
        qualifications: row.qualifications,
        experience_years: row.experience_years,
        fee_paise: row.fee_paise,
        video_enabled: row.video_enabled,
        rating: row.rating,
        rating_count: row.rating_count,
        hospital_id: row.hospital_id,
        bio: row.bio,
    }
}

/// A bookable slot.
#[derive(Debug, Serialize, ToSchema)]
pub struct SlotView {
    pub id: i64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// `in_person`, `video` or `both`.
    pub mode: String,
}

fn slot_view(row: SlotRow) -> SlotView {
    SlotView {
        id: row.id,
        start: utc(row.slot_start),
        end: utc(row.slot_end),
        mode: row.mode,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DoctorDetail {
    #[serde(flatten)]
    pub doctor: DoctorView,
    /// Bookable slots of the next 7 days, or of `?date=`, by time.
    pub slots: Vec<SlotView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AppointmentView {
    pub id: i64,
    pub slot_id: i64,
    pub doctor_id: i64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub mode: String,
    /// `pending_payment`, `confirmed`, `completed`, `cancelled` or `no_show`.
    pub status: String,
    pub fee_paise: i64,
    /// Paid online (`POST /payments/create-order` {appointment_id}, then the checkout); a cancelled paid
    /// appointment is refunded in full.
    pub paid_online: bool,
    pub patient_name: String,
    pub reason: Option<String>,
    pub cancel_reason: Option<String>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

fn appointment_view((row, start, end): AppointmentWithSlot) -> AppointmentView {
    AppointmentView {
        id: row.id,
        slot_id: row.slot_id,
        doctor_id: row.doctor_id,
        start: utc(start),
        end: utc(end),
        mode: row.mode,
        status: row.status,
        fee_paise: row.fee_paise,
        paid_online: row.payment_id.is_some(),
        patient_name: row.patient_name,
        reason: row.reason,
        cancel_reason: row.cancel_reason,
        cancelled_at: row.cancelled_at.map(utc),
        created_at: utc(row.created_at),
    }
}

// ------------------------------------------------------------------------------------------ directory

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct DoctorListQuery {
    pub page: Option<u32>,
    pub per_page: Option<u32>,
    /// Exact specialty, any case (e.g. `cardiologist`).
    pub specialty: Option<String>,
    pub hospital_id: Option<i64>,
    pub max_fee_paise: Option<i64>,
    /// 0 to 5.
    pub min_rating: Option<f64>,
    /// Only doctors with a bookable slot on this date (India), `YYYY-MM-DD`.
    pub available_on: Option<String>,
}

/// Active doctors, best rated first.
#[utoipa::path(
    tag = "doctors",
    params(DoctorListQuery),
    responses((status = 200, body = Page<DoctorView>), (status = 400, description = "validation_failed", body = ErrorBody))
)]
#[get("/doctors")]
pub async fn list_doctors(
    state: web::Data<AppState>,
    query: web::Query<DoctorListQuery>,
) -> Result<web::Json<Page<DoctorView>>, ApiError> {
    let page = PageQuery {
        page: query.page,
        per_page: query.per_page,
    }
    .validate()?;
    let mut p = Problems::default();
    let specialty = query
        .specialty
        .as_deref()
        .and_then(|s| p.text("specialty", s, 100));
    if query.max_fee_paise.is_some_and(|fee| fee < 0) {
        p.add("max_fee_paise", "must not be negative");
    }
    if query.min_rating.is_some_and(|r| !(0.0..=5.0).contains(&r)) {
        p.add("min_rating", "must be between 0 and 5");
    }
    let date = parse_date(&mut p, "available_on", query.available_on.as_deref());
    p.finish()?;
    let filter = DoctorFilter {
        specialty,
        hospital_id: query.hospital_id,
        max_fee_paise: query.max_fee_paise,
        min_rating: query.min_rating,
        available: date.map(doctors::local_day),
    };
    let mut conn = state.db.read().await?;
    let (rows, total) =
        doctors::list(&mut conn, &filter, crate::db::now(), page.limit(), page.offset()).await?;
    let items = rows
        .into_iter()
        .map(|(row, name)| doctor_view(row, name))
        .collect();
    Ok(web::Json(page.wrap(items, total)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct DateQuery {
    /// A date in India, `YYYY-MM-DD`.
    pub date: Option<String>,
}

/// A doctor with their bookable slots for the next 7 days (or for `?date=`).
#[utoipa::path(
    tag = "doctors",
    params(("id" = i64, Path, description = "Doctor id"), DateQuery),
    responses((status = 200, body = DoctorDetail), (status = 404, description = "not_found", body = ErrorBody))
)]
#[get("/doctors/{id}")]
pub async fn get_doctor(
    state: web::Data<AppState>,
    id: web::Path<i64>,
    query: web::Query<DateQuery>,
) -> Result<web::Json<DoctorDetail>, ApiError> {
    let mut p = Problems::default();
    let date = parse_date(&mut p, "date", query.date.as_deref());
    p.finish()?;
    let now = crate::db::now();
    let (from, to) = match date {
        Some(date) => doctors::local_day(date),
        None => (now, now + TimeDelta::days(DEFAULT_SLOT_DAYS)),
    };
    let mut conn = state.db.read().await?;
    let (row, name) = doctors::find(&mut conn, *id)
        .await?
        .ok_or_else(|| ApiError::not_found("doctor"))?;
    let slots = doctors::bookable_slots(&mut conn, row.id, from, to, now, MAX_SLOTS).await?;
    Ok(web::Json(DoctorDetail {
        doctor: doctor_view(row, name),
        slots: slots.into_iter().map(slot_view).collect(),
    }))
}

// ----------------------------------------------------------------------------------- doctor's own

async fn own_doctor(state: &AppState, auth: &AuthUser) -> Result<DoctorRow, ApiError> {
    if auth.role != Role::Doctor {
        return Err(ApiError::forbidden());
    }
    let mut conn = state.db.read().await?;
    doctors::find_by_user(&mut conn, auth.id.0)
        .await?
        .ok_or_else(|| ApiError::not_found("doctor profile"))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowBody {
    /// 0 = Monday .. 6 = Sunday.
    pub weekday: i32,
    /// Local time (India) the window opens, `HH:MM`.
    pub start: String,
    /// Local time the window closes, `HH:MM` (`24:00` for midnight).
    pub end: String,
    /// `in_person`, `video` or `both` (default).
    pub mode: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleBody {
    /// Length of every slot, 5 to 240 minutes.
    pub slot_minutes: i32,
    /// At most 28 weekly windows; windows of one weekday must not overlap.
    pub windows: Vec<WindowBody>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleSaved {
    pub windows: usize,
    /// Slots added by this change (existing ones are kept).
    pub slots_added: usize,
}

fn parse_minute(raw: &str) -> Option<i32> {
    let (h, m) = raw.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    let minute = h * 60 + m;
    ((0..60).contains(&m) && (0..=1440).contains(&minute)).then_some(minute)
}

fn parse_mode(raw: Option<&str>) -> Option<&'static str> {
    match raw {
        None | Some("both") => Some("both"),
        Some("in_person") => Some("in_person"),
        Some("video") => Some("video"),
        Some(_) => None,
    }
}

/// A doctor replaces their weekly schedule; future open slots follow it at once (held and booked
/// slots are kept).
#[utoipa::path(
    tag = "doctors",
    request_body = ScheduleBody,
    responses(
        (status = 200, body = ScheduleSaved),
        (status = 400, description = "validation_failed", body = ErrorBody),
        (status = 403, description = "forbidden", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[put("/doctors/me/schedule")]
pub async fn put_schedule(
    state: web::Data<AppState>,
    auth: AuthUser,
    body: web::Json<ScheduleBody>,
) -> Result<web::Json<ScheduleSaved>, ApiError> {
    let doctor = own_doctor(&state, &auth).await?;
    let mut p = Problems::default();
    if !SLOT_MINUTES.contains(&body.slot_minutes) {
        p.add("slot_minutes", "must be between 5 and 240");
    }
    if body.windows.len() > MAX_WINDOWS {
        p.add("windows", format!("at most {MAX_WINDOWS} windows"));
    }
    let mut windows = Vec::new();
    for (i, w) in body.windows.iter().take(MAX_WINDOWS).enumerate() {
        let field = format!("windows[{i}]");
        let start = parse_minute(&w.start).filter(|m| *m < 1440);
        let end = parse_minute(&w.end);
        let mode = parse_mode(w.mode.as_deref());
        match (start, end, mode) {
            _ if !(0..=6).contains(&w.weekday) => p.add(&field, "weekday must be 0 (Monday) to 6 (Sunday)"),
            (None, _, _) | (_, None, _) => p.add(&field, "start and end must be HH:MM"),
            (_, _, None) => p.add(&field, "mode must be in_person, video or both"),
            (Some(s), Some(e), Some(mode)) if e > s => windows.push(Window {
                weekday: w.weekday,
                start_minute: s,
                end_minute: e,
                slot_minutes: body.slot_minutes,
                mode,
            }),
            _ => p.add(&field, "end must be after start"),
        }
    }
    for (i, a) in windows.iter().enumerate() {
        let overlaps = windows[..i].iter().any(|b| {
            a.weekday == b.weekday && a.start_minute < b.end_minute && b.start_minute < a.end_minute
        });
        if overlaps {
            p.add("windows", "windows of one weekday overlap");
        }
    }
    p.finish()?;
    let mut conn = state.db.write().await?;
    let added = doctors::replace_schedule(
        &mut conn,
        doctor.id,
        &windows,
        state.settings.care.horizon_days(),
        crate::db::now(),
    )
    .await?;
    Ok(web::Json(ScheduleSaved {
        windows: windows.len(),
        slots_added: added,
    }))
}

/// A doctor's appointments on a day (India; default today), by time.
#[utoipa::path(
    tag = "doctors",
    params(DateQuery),
    responses((status = 200, body = Vec<AppointmentView>), (status = 403, description = "forbidden", body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/doctors/me/day")]
pub async fn my_day(
    state: web::Data<AppState>,
    auth: AuthUser,
    query: web::Query<DateQuery>,
) -> Result<web::Json<Vec<AppointmentView>>, ApiError> {
    let mut p = Problems::default();
    let date = parse_date(&mut p, "date", query.date.as_deref());
    p.finish()?;
    let doctor = own_doctor(&state, &auth).await?;
    let date = date.unwrap_or_else(|| doctors::local_today(crate::db::now()));
    let (from, to) = doctors::local_day(date);
    let mut conn = state.db.read().await?;
    let rows = doctors::list_for_doctor(&mut conn, doctor.id, from, to, MAX_DAY_APPOINTMENTS).await?;
    Ok(web::Json(rows.into_iter().map(appointment_view).collect()))
}

// -------------------------------------------------------------------------------------- hold & book

#[derive(Debug, Serialize, ToSchema)]
pub struct HoldView {
    pub slot_id: i64,
    pub doctor_id: i64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Confirm before this time, or anyone may take the slot.
    pub held_until: DateTime<Utc>,
}

fn require_customer(auth: &AuthUser) -> Result<(), ApiError> {
    if auth.role == Role::Customer {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
}

/// Events on the slot's and the customer's topics, after commit.
async fn announce_slot(state: &AppState, slot: i64, doctor: i64, user: i64, status: &str) {
    let event = serde_json::json!({
        "type": "slot_status",
        "v": crate::bus::EVENT_VERSION,
        "slot_id": slot,
        "doctor_id": doctor,
        "status": status,
        "at": Utc::now(),
    });
    state
        .bus
        .publish(&[format!("doctor_slot:{slot}"), format!("user:{user}")], event)
        .await;
}

/// A customer holds a slot for `care.slot_hold_secs` (5 minutes by default). Holding one's own live
/// hold again answers it unchanged.
#[utoipa::path(
    tag = "doctors",
    params(("id" = i64, Path, description = "Slot id")),
    responses(
        (status = 200, body = HoldView),
        (status = 404, description = "not_found", body = ErrorBody),
        (status = 409, description = "slot_unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/doctors/slots/{id}/hold")]
pub async fn hold_slot(
    state: web::Data<AppState>,
    auth: AuthUser,
    id: web::Path<i64>,
) -> Result<web::Json<HoldView>, ApiError> {
    require_customer(&auth)?;
    let now = crate::db::now();
    let until = now + state.settings.care.slot_hold();
    let mut conn = state.db.write().await?;
    let row = doctors::hold(&mut conn, *id, auth.id.0, until, now).await?;
    drop(conn);
    announce_slot(&state, row.id, row.doctor_id, auth.id.0, "held").await;
    let held_until = row.hold_expires_at.unwrap_or(until);
    Ok(web::Json(HoldView {
        slot_id: row.id,
        doctor_id: row.doctor_id,
        start: utc(row.slot_start),
        end: utc(row.slot_end),
        held_until: utc(held_until),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BookBody {
    pub slot_id: i64,
    /// `in_person` or `video`; the slot must offer it.
    pub mode: String,
    /// `cod` (confirmed at once) or `razorpay` (pending until paid).
    pub payment_method: String,
    /// What the visit is about, up to 500 characters.
    pub notes: Option<String>,
    /// The patient, if not the account holder.
    pub patient_name: Option<String>,
}

/// Confirms the caller's live hold as an appointment, all or nothing.
#[utoipa::path(
    tag = "doctors",
    request_body = BookBody,
    responses(
        (status = 201, body = AppointmentView),
        (status = 400, description = "validation_failed", body = ErrorBody),
        (status = 404, description = "not_found", body = ErrorBody),
        (status = 409, description = "slot_unavailable (not held by the caller, or the hold lapsed)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/doctors/appointments")]
pub async fn book(
    state: web::Data<AppState>,
    auth: AuthUser,
    body: web::Json<BookBody>,
) -> Result<HttpResponse, ApiError> {
    require_customer(&auth)?;
    let mut p = Problems::default();
    let mode = match body.mode.as_str() {
        "in_person" => Some("in_person"),
        "video" => Some("video"),
        _ => {
            p.add("mode", "must be in_person or video");
            None
        }
    };
    let status = match body.payment_method.as_str() {
        "cod" => Some("confirmed"),
        "razorpay" => Some("pending_payment"),
        _ => {
            p.add("payment_method", "must be cod or razorpay");
            None
        }
    };
    let reason = body
        .notes
        .as_deref()
        .and_then(|n| p.text("notes", n, MAX_TEXT_CHARS));
    let patient = body
        .patient_name
        .as_deref()
        .and_then(|n| p.check("patient_name", crate::domain::PersonName::parse(n)))
        .map(crate::domain::PersonName::into_inner);
    p.finish()?;
    let (Some(mode), Some(status)) = (mode, status) else {
        return Err(ApiError::internal(anyhow::anyhow!(
            "validated booking fields missing"
        )));
    };
    let mut conn = state.db.write().await?;
    let patient_name = match patient {
        Some(name) => name,
        None => crate::db::users::find(&mut conn, auth.id.0)
            .await?
            .map(|u| u.name)
            .ok_or_else(|| ApiError::unauthorized("unknown user"))?,
    };
    let new = NewBooking {
        slot_id: body.slot_id,
        user_id: auth.id.0,
        mode,
        status,
        patient_name,
        reason,
    };
    let now = crate::db::now();
    let row = doctors::book(&mut conn, &new, now).await?;
    let view = doctors::find_for_user(&mut conn, row.id, auth.id.0)
        .await?
        .map(appointment_view)
        .ok_or_else(|| ApiError::not_found("appointment"))?;
    drop(conn);
    announce_slot(&state, row.slot_id, row.doctor_id, auth.id.0, "booked").await;
    state.notifier.appointment_booked(row.id);
    Ok(HttpResponse::Created().json(view))
}

/// The caller's appointments, latest slot first.
#[utoipa::path(
    tag = "doctors",
    params(PageQuery),
    responses((status = 200, body = Page<AppointmentView>)),
    security(("bearer" = []))
)]
#[get("/doctors/appointments")]
pub async fn list_appointments(
    state: web::Data<AppState>,
    auth: AuthUser,
    query: web::Query<PageQuery>,
) -> Result<web::Json<Page<AppointmentView>>, ApiError> {
    let page = query.validate()?;
    let mut conn = state.db.read().await?;
    let (rows, total) = doctors::list_for_user(&mut conn, auth.id.0, page.limit(), page.offset()).await?;
    Ok(web::Json(
        page.wrap(rows.into_iter().map(appointment_view).collect(), total),
    ))
}

/// One of the caller's appointments.
#[utoipa::path(
    tag = "doctors",
    params(("id" = i64, Path, description = "Appointment id")),
    responses((status = 200, body = AppointmentView), (status = 404, description = "not_found", body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/doctors/appointments/{id}")]
pub async fn get_appointment(
    state: web::Data<AppState>,
    auth: AuthUser,
    id: web::Path<i64>,
) -> Result<web::Json<AppointmentView>, ApiError> {
    let mut conn = state.db.read().await?;
    let row = doctors::find_for_user(&mut conn, *id, auth.id.0)
        .await?
        .ok_or_else(|| ApiError::not_found("appointment"))?;
    Ok(web::Json(appointment_view(row)))
}

/// The customer cancels their appointment; its slot opens again.
#[utoipa::path(
    tag = "doctors",
    params(("id" = i64, Path, description = "Appointment id")),
    request_body = ReasonBody,
    responses(
        (status = 200, body = AppointmentView),
        (status = 404, description = "not_found", body = ErrorBody),
        (status = 409, description = "invalid_transition (already cancelled or over)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/doctors/appointments/{id}/cancel")]
pub async fn cancel_appointment(
    state: web::Data<AppState>,
    auth: AuthUser,
    id: web::Path<i64>,
    body: crate::api::body::OptionalJson<ReasonBody>,
) -> Result<web::Json<AppointmentView>, ApiError> {
    let mut p = Problems::default();
    let reason = body
        .as_ref()
        .and_then(|b| b.reason.as_deref())
        .and_then(|r| p.text("reason", r, MAX_TEXT_CHARS));
    p.finish()?;
    let mut conn = state.db.write().await?;
    let row = doctors::cancel(&mut conn, *id, auth.id.0, reason.as_deref(), crate::db::now()).await?;
    let view = doctors::find_for_user(&mut conn, row.id, auth.id.0)
        .await?
        .map(appointment_view)
        .ok_or_else(|| ApiError::not_found("appointment"))?;
    drop(conn);
    announce_slot(&state, row.slot_id, row.doctor_id, auth.id.0, "open").await;
    if row.payment_id.is_some() {
        // A paid appointment's refund was recorded with the cancellation; send it now.
        crate::refunds::kick(&state);
    }
    Ok(web::Json(view))
}

// ------------------------------------------------------------------------------------------ upkeep

/// Sets lapsed holds back to open, cancels appointments left unpaid past the payment window (opening
/// their slots), and announces each slot. Run periodically on every node; each release is conditional,
/// so concurrent sweeps release a hold or lapse an appointment once.
pub async fn sweep_expired_holds(state: &AppState) -> Result<usize, ApiError> {
    let now = crate::db::now();
    let mut conn = state.db.write().await?;
    let released = doctors::release_expired_holds(&mut conn, now).await?;
    let lapsed = doctors::lapse_unpaid(&mut conn, state.settings.care.payment_window(), now).await?;
    drop(conn);
    for (slot, doctor, holder) in &released {
        announce_slot(state, *slot, *doctor, *holder, "open").await;
    }
    for (appointment, slot, doctor, customer) in &lapsed {
        tracing::info!(appointment, "unpaid appointment lapsed");
        announce_slot(state, *slot, *doctor, *customer, "open").await;
    }
    Ok(released.len() + lapsed.len())
}

/// Fills in the slots of every schedule for the configured horizon (idempotent).
pub async fn generate_all_slots(state: &AppState) -> Result<usize, ApiError> {
    let mut conn = state.db.write().await?;
    Ok(doctors::generate_slots(
        &mut conn,
        None,
        state.settings.care.horizon_days(),
        crate::db::now(),
    )
    .await?)
}
