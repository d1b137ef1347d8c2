//! `/services`: the home-care catalog, partner profiles and bookings. A booking is given at once to the
//! nearest partner who offers the service, works the whole window, covers the address and has a place left
//! in that window; when nobody can, the customer gets 409 `no_partner_available` straight away (with the
//! reason) so they can pick another window — nothing is left pending. Bookings are seen by their customer,
//! their partner and staff; anyone else gets 404.

use actix_web::{HttpResponse, get, post, put, web};
use chrono::{NaiveDate, NaiveDateTime, TimeDelta};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::{Page, PageQuery, Problems, ReasonBody};
use crate::{
    auth::AuthUser,
    db::{
        self,
        doctors::{IST_OFFSET, local_today},
        homecare::{
            self as care, BookingRow, CATEGORIES, CareError, NewBooking, PartnerProfile, Scope, Service,
            Step, WINDOWS, window_minutes,
        },
        orders::Transition,
    },
    domain::{LatLng, Phone, Role, care::BookingStatus},
    error::{ApiError, ErrorBody, ErrorCode},
    state::AppState,
};

/// How far ahead a visit may be booked, days.
pub const BOOKING_HORIZON_DAYS: i64 = 30;
/// Longest notes for the partner.
const MAX_NOTES_CHARS: usize = 500;
/// Longest cancellation reason.
const MAX_REASON_CHARS: usize = 500;
/// Most services one partner may offer.
const MAX_PARTNER_SERVICES: usize = 50;

impl From<CareError> for ApiError {
    fn from(error: CareError) -> Self {
        match error {
            CareError::AddressNotFound => ApiError::field("address_id", "no such address"),
            CareError::ServiceNotFound => ApiError::field("service_id", "no such service"),
            CareError::UnknownServices(ids) => ApiError::new(
                ErrorCode::ValidationFailed,
                "some services are not in the catalog",
            )
            .with_details(json!({ "service_ids": ids })),
            CareError::NoPartnerNearby => ApiError::new(
                ErrorCode::NoPartnerAvailable,
                "no partner offers this service at your address in this window; try another window or day",
            )
            .with_details(json!({ "reason": "no_partner_nearby" })),
            CareError::WindowFull => ApiError::new(
                ErrorCode::NoPartnerAvailable,
                "every partner near you is fully booked in this window; try another window or day",
            )
            .with_details(json!({ "reason": "window_full" })),
            CareError::NotFound => ApiError::not_found("booking"),
            CareError::Illegal(illegal) => ApiError::new(ErrorCode::InvalidTransition, illegal.to_string()),
            CareError::Conflict => ApiError::new(
                ErrorCode::Conflict,
                "the booking changed meanwhile; reload it and try again",
            ),
            CareError::Db(error) => error.into(),
        }
    }
}

fn is_staff(auth: &AuthUser) -> bool {
    matches!(auth.role, Role::Staff | Role::Admin)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ServiceQuery {
    /// One of `nursing`, `physiotherapy`, `elder_care`, `doctor_visit`, `procedure`, `mother_baby`, `other`.
    pub category: Option<String>,
    pub page: Option<u32>,
    pub per_page: Option<u32>,
}

/// The home-care catalog, in catalog order.
#[utoipa::path(
    tag = "home care",
    params(ServiceQuery),
    responses(
        (status = 200, body = Page<Service>),
        (status = 400, description = "validation_failed (category, page)", body = ErrorBody),
    )
)]
#[get("/services")]
pub async fn list_services(
    state: web::Data<AppState>,
    query: web::Query<ServiceQuery>,
) -> Result<web::Json<Page<Service>>, ApiError> {
    let query = query.into_inner();
    let page = PageQuery {
        page: query.page,
        per_page: query.per_page,
    }
    .validate()?;
    let category = query.category.as_deref().map(str::trim);
    if let Some(category) = category
        && !CATEGORIES.contains(&category)
    {
        return Err(ApiError::field(
            "category",
            format!("must be one of {}", CATEGORIES.join(", ")),
        ));
    }
    let mut conn = state.db.read().await?;
    let (rows, total) = care::list_services(&mut conn, category, page.limit(), page.offset()).await?;
    Ok(web::Json(page.wrap(rows, total)))
}

/// One service of the catalog.
#[utoipa::path(
    tag = "home care",
    params(("id" = i64, Path, description = "Service id")),
    responses((status = 200, body = Service), (status = 404, description = "not_found", body = ErrorBody))
)]
#[get("/services/{id}")]
pub async fn get_service(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<web::Json<Service>, ApiError> {
    let mut conn = state.db.read().await?;
    let service = care::find_service(&mut conn, *id)
        .await?
        .ok_or_else(|| ApiError::not_found("service"))?;
    Ok(web::Json(service))
}

/// A partner's profile: where they start from, how far they travel, when they work, how many visits they
/// take per window, and what they offer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartnerProfileBody {
    pub home_lat: f64,
    pub home_lng: f64,
    /// How far from home the partner travels, 1–100 km.
    pub service_radius_km: i32,
    /// Start of the working day, `HH:MM` India time.
    pub work_start: String,
    /// End of the working day, `HH:MM` (`24:00` allowed).
    pub work_end: String,
    /// Visits the partner takes per booking window, 1–50.
    pub capacity_per_window: i32,
    /// Services offered (ids from `/services`).
    pub service_ids: Vec<i64>,
    /// False pauses new bookings; existing ones stay.
    #[serde(default = "active_by_default")]
    pub is_active: bool,
}

fn active_by_default() -> bool {
    true
}

/// A partner's saved profile.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartnerProfileView {
    pub id: i64,
    pub user_id: i64,
    pub home_lat: f64,
    pub home_lng: f64,
    pub service_radius_km: i32,
    pub work_start: String,
    pub work_end: String,
    pub capacity_per_window: i32,
    pub service_ids: Vec<i64>,
    pub is_active: bool,
}

fn hhmm(minute: i32) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

fn parse_hhmm(text: &str) -> Option<i32> {
    let (h, m) = text.trim().split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m) = (h.parse::<i32>().ok()?, m.parse::<i32>().ok()?);
    (((0..=23).contains(&h) && (0..=59).contains(&m)) || (h == 24 && m == 0)).then_some(h * 60 + m)
}

fn only_partner(auth: &AuthUser) -> Result<(), ApiError> {
    if auth.role == Role::Partner {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::Forbidden,
            "only a home-care partner has a profile",
        ))
    }
}

async fn profile_view(state: &AppState, partner: care::Partner) -> Result<PartnerProfileView, ApiError> {
    let mut conn = state.db.read().await?;
    let service_ids = care::services_of(&mut conn, partner.id).await?;
    Ok(PartnerProfileView {
        id: partner.id,
        user_id: partner.user_id,
        home_lat: partner.home_lat,
        home_lng: partner.home_lng,
        service_radius_km: partner.service_radius_km,
        work_start: hhmm(partner.work_start_minute),
        work_end: hhmm(partner.work_end_minute),
        capacity_per_window: partner.capacity_per_window,
        service_ids,
        is_active: partner.is_active,
    })
}

/// The calling partner's profile.
#[utoipa::path(
    tag = "home care",
    responses(
        (status = 200, body = PartnerProfileView),
        (status = 403, description = "forbidden (not a partner)", body = ErrorBody),
        (status = 404, description = "not_found (no profile yet)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/services/partner-profile")]
pub async fn get_partner_profile(
    state: web::Data<AppState>,
    auth: AuthUser,
) -> Result<web::Json<PartnerProfileView>, ApiError> {
    only_partner(&auth)?;
    let mut conn = state.db.read().await?;
    let partner = care::partner_of_user(&mut conn, auth.id.0)
        .await?
        .ok_or_else(|| ApiError::not_found("partner profile"))?;
    drop(conn);
    Ok(web::Json(profile_view(&state, partner).await?))
}

/// Creates or replaces the calling partner's profile and offered services.
#[utoipa::path(
    tag = "home care",
    request_body = PartnerProfileBody,
    responses(
        (status = 200, body = PartnerProfileView),
        (status = 400, description = "validation_failed", body = ErrorBody),
        (status = 403, description = "forbidden (not a partner)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[put("/services/partner-profile")]
pub async fn save_partner_profile(
    state: web::Data<AppState>,
    auth: AuthUser,
    body: web::Json<PartnerProfileBody>,
) -> Result<web::Json<PartnerProfileView>, ApiError> {
    only_partner(&auth)?;
    let body = body.into_inner();
    let mut p = Problems::default();
    p.check("home", LatLng::parse(body.home_lat, body.home_lng));
    if !(1..=100).contains(&body.service_radius_km) {
        p.add("service_radius_km", "must be between 1 and 100");
    }
    if !(1..=50).contains(&body.capacity_per_window) {
        p.add("capacity_per_window", "must be between 1 and 50");
    }
    let start = parse_hhmm(&body.work_start);
    let end = parse_hhmm(&body.work_end);
    match (start, end) {
        (None, _) => p.add("work_start", "must be HH:MM"),
        (_, None) => p.add("work_end", "must be HH:MM"),
        (Some(start), Some(end)) if start >= end || start >= 24 * 60 => {
            p.add("work_end", "must be after work_start")
        }
        _ => {}
    }
    let mut service_ids = body.service_ids.clone();
    service_ids.sort_unstable();
    service_ids.dedup();
    if body.service_ids.is_empty() || body.service_ids.len() > MAX_PARTNER_SERVICES {
        p.add(
            "service_ids",
            format!("between 1 and {MAX_PARTNER_SERVICES} services"),
        );
    } else if service_ids.len() != body.service_ids.len() || service_ids.iter().any(|id| *id <= 0) {
        p.add("service_ids", "must be distinct positive ids");
    }
    p.finish()?;
    let (Some(start), Some(end)) = (start, end) else {
        return Err(ApiError::internal(anyhow::anyhow!("validated hours missing")));
    };
    let mut conn = state.db.write().await?;
    let partner = care::save_partner(
        &mut conn,
        auth.id.0,
        PartnerProfile {
            home_lat: body.home_lat,
            home_lng: body.home_lng,
            service_radius_km: body.service_radius_km,
            work_start_minute: start,
            work_end_minute: end,
            capacity_per_window: body.capacity_per_window,
            is_active: body.is_active,
            service_ids,
        },
    )
    .await?;
    drop(conn);
    Ok(web::Json(profile_view(&state, partner).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BookBody {
    pub service_id: i64,
    /// One of the caller's addresses.
    pub address_id: i64,
    /// The visit day, `YYYY-MM-DD` (India time), today up to 30 days ahead.
    pub date: String,
    /// The arrival window, one of `07:00-09:00`, `09:00-11:00`, … `19:00-21:00`.
    pub window: String,
    /// For the partner (at most 500 characters).
    pub notes: Option<String>,
    /// Who is cared for; defaults to the account's name.
    pub patient_name: Option<String>,
    /// Whom the partner calls; defaults to the account's phone.
    pub phone: Option<String>,
}

/// A home-care booking; `timeline` is filled on the single-booking answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct BookingView {
    pub id: i64,
    pub service_id: i64,
    /// `confirmed`, `en_route`, `in_progress`, `completed` or `cancelled`.
    pub status: String,
    pub date: NaiveDate,
    pub window: String,
    pub price_paise: i64,
    pub patient_name: String,
    pub phone: String,
    pub address_id: Option<i64>,
    pub address: String,
    pub lat: f64,
    pub lng: f64,
    /// The assigned partner's user id.
    pub partner_user_id: Option<i64>,
    pub assigned_at: Option<NaiveDateTime>,
    pub completed_at: Option<NaiveDateTime>,
    pub notes: Option<String>,
    pub cancel_reason: Option<String>,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<Transition>,
}

impl BookingView {
    fn new(row: BookingRow, timeline: Vec<Transition>) -> Self {
        Self {
            id: row.id,
            service_id: row.service_id,
            status: row.status,
            date: row.slot_date,
            window: row.slot_window,
            price_paise: row.price_paise,
            patient_name: row.patient_name,
            phone: row.contact_phone,
            address_id: row.address_id,
            address: row.address_text,
            lat: row.lat,
            lng: row.lng,
            partner_user_id: row.partner_user_id,
            assigned_at: row.assigned_at,
            completed_at: row.completed_at,
            notes: row.notes,
            cancel_reason: row.cancel_reason,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
            timeline,
        }
    }
}

/// The UTC instant a local (IST) minute of `date` falls on.
fn local_minute(date: NaiveDate, minute: i32) -> NaiveDateTime {
    date.and_time(chrono::NaiveTime::MIN) + TimeDelta::minutes(i64::from(minute)) - IST_OFFSET
}

/// Books a home visit, assigned at once to the nearest partner with a place in the window.
#[utoipa::path(
    tag = "home care",
    request_body = BookBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key book once")),
    responses(
        (status = 201, body = BookingView, description = "confirmed, with its partner"),
        (status = 400, description = "validation_failed (service, address, date, window, notes)", body = ErrorBody),
        (status = 409, description = "no_partner_available: details.reason is no_partner_nearby or window_full; nothing was booked", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/services/bookings")]
pub async fn book(
    state: web::Data<AppState>,
    auth: AuthUser,
    body: web::Json<BookBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut p = Problems::default();
    if body.service_id <= 0 {
        p.add("service_id", "must be a positive id");
    }
    if body.address_id <= 0 {
        p.add("address_id", "must be a positive id");
    }
    let now = db::now();
    let today = local_today(now);
    let date = crate::domain::dates::parse_day(&body.date);
    let window_text = body.window.trim().to_owned();
    let window = window_minutes(&window_text);
    match date {
        None => p.add("date", "must be a date such as 2026-12-01"),
        Some(date) if date < today => p.add("date", "must not be in the past"),
        Some(date) if date > today + TimeDelta::days(BOOKING_HORIZON_DAYS) => {
            p.add("date", format!("must be within {BOOKING_HORIZON_DAYS} days"))
        }
        Some(_) => {}
    }
    match (date, window) {
        (_, None) => p.add("window", format!("must be one of {}", WINDOWS.join(", "))),
        (Some(date), Some((start, _))) if local_minute(date, start) <= now => {
            p.add("window", "this window has already started")
        }
        _ => {}
    }
    let notes = body
        .notes
        .as_deref()
        .and_then(|n| p.text("notes", n, MAX_NOTES_CHARS));
    let patient_name = body
        .patient_name
        .as_deref()
        .and_then(|n| p.text("patient_name", n, 100));
    let phone = match body.phone.as_deref() {
        Some(raw) => p.check("phone", Phone::parse(raw)).map(|p| p.as_str().to_owned()),
        None => None,
    };
    p.finish()?;
    let (Some(date), Some(window)) = (date, window) else {
        return Err(ApiError::internal(anyhow::anyhow!(
            "validated booking fields missing"
        )));
    };
    let mut conn = state.db.write().await?;
    let row = care::book(
        &mut conn,
        NewBooking {
            user_id: auth.id.0,
            service_id: body.service_id,
            address_id: body.address_id,
            slot_date: date,
            slot_window: window_text,
            window,
            patient_name,
            contact_phone: phone,
            notes,
        },
    )
    .await?;
    let timeline = care::timeline(&mut conn, row.id).await?;
    drop(conn);
    announce(&state, None, &row, "book").await;
    Ok(HttpResponse::Created().json(BookingView::new(row, timeline)))
}

/// Publishes, after commit, a booking's change to its customer and its partner (`user:{id}` topics).
async fn announce(state: &AppState, from: Option<&str>, row: &BookingRow, event: &str) {
    let mut topics = vec![format!("user:{}", row.user_id)];
    if let Some(partner) = row.partner_user_id {
        topics.push(format!("user:{partner}"));
    }
    let payload = json!({
        "type": "service_booking_status_changed",
        "v": 1,
        "booking_id": row.id,
        "from": from,
        "to": row.status,
        "event": event,
        "version": row.version,
        "at": chrono::Utc::now(),
    });
    state.bus.publish(&topics, payload).await;
}

/// The caller's bookings, newest first: a customer's own, a partner's assigned ones, staff see all.
#[utoipa::path(
    tag = "home care",
    params(PageQuery),
    responses((status = 200, body = Page<BookingView>), (status = 400, description = "validation_failed", body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/services/bookings")]
pub async fn list_bookings(
    state: web::Data<AppState>,
    auth: AuthUser,
    page: web::Query<PageQuery>,
) -> Result<web::Json<Page<BookingView>>, ApiError> {
    let page = page.validate()?;
    let scope = match auth.role {
        Role::Staff | Role::Admin => Scope::All,
        Role::Partner => Scope::Partner(auth.id.0),
        _ => Scope::Customer(auth.id.0),
    };
    let mut conn = state.db.read().await?;
    let (rows, total) = care::list(&mut conn, scope, page.limit(), page.offset()).await?;
    let views = rows
        .into_iter()
        .map(|row| BookingView::new(row, Vec::new()))
        .collect();
    Ok(web::Json(page.wrap(views, total)))
}

/// The booking if the caller may see it: its customer, its partner, or staff.
async fn visible(state: &AppState, auth: &AuthUser, id: i64) -> Result<BookingRow, ApiError> {
    let mut conn = state.db.read().await?;
    let row = care::find(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found("booking"))?;
    let partner = auth.role == Role::Partner && row.partner_user_id == Some(auth.id.0);
    if row.user_id == auth.id.0 || partner || is_staff(auth) {
        Ok(row)
    } else {
        Err(ApiError::not_found("booking"))
    }
}

/// One booking with its timeline.
#[utoipa::path(
    tag = "home care",
    params(("id" = i64, Path, description = "Booking id")),
    responses((status = 200, body = BookingView), (status = 404, description = "not_found (also someone else's)", body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/services/bookings/{id}")]
pub async fn get_booking(
    state: web::Data<AppState>,
    auth: AuthUser,
    id: web::Path<i64>,
) -> Result<web::Json<BookingView>, ApiError> {
    let row = visible(&state, &auth, *id).await?;
    let mut conn = state.db.read().await?;
    let timeline = care::timeline(&mut conn, row.id).await?;
    Ok(web::Json(BookingView::new(row, timeline)))
}

async fn apply(state: &AppState, step: Step) -> Result<web::Json<BookingView>, ApiError> {
    let mut conn = state.db.write().await?;
    let stepped = care::step(&mut conn, step).await?;
    let timeline = care::timeline(&mut conn, stepped.after.id).await?;
    drop(conn);
    let event = stepped.after.status.clone();
    announce(state, Some(&stepped.before.status), &stepped.after, &event).await;
    Ok(web::Json(BookingView::new(stepped.after, timeline)))
}

/// Cancels a visit before it starts (its customer, or staff); the partner's place in the window is freed.
#[utoipa::path(
    tag = "home care",
    params(("id" = i64, Path, description = "Booking id")),
    request_body = ReasonBody,
    responses(
        (status = 200, body = BookingView),
        (status = 400, description = "validation_failed (reason)", body = ErrorBody),
        (status = 404, description = "not_found (also someone else's)", body = ErrorBody),
        (status = 409, description = "invalid_transition (started, done or cancelled), conflict", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/services/bookings/{id}/cancel")]
pub async fn cancel_booking(
    state: web::Data<AppState>,
    auth: AuthUser,
    id: web::Path<i64>,
    body: crate::api::body::OptionalJson<ReasonBody>,
) -> Result<web::Json<BookingView>, ApiError> {
    let reason = body.into_inner().and_then(|b| b.reason);
    let mut p = Problems::default();
    let reason = reason.and_then(|r| p.text("reason", &r, MAX_REASON_CHARS));
    p.finish()?;
    let row = visible(&state, &auth, *id).await?;
    if row.user_id != auth.id.0 && !is_staff(&auth) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "only the customer or staff may cancel a visit",
        ));
    }
    let step = Step {
        booking: row.id,
        to: BookingStatus::Cancelled,
        actor_user: auth.id.0,
        reason,
    };
    apply(&state, step).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusBody {
    /// `en_route`, `in_progress` or `completed`.
    pub status: String,
}

/// The assigned partner (or staff) moves the visit on: `confirmed` → `en_route` → `in_progress` →
/// `completed`, one step at a time.
#[utoipa::path(
    tag = "home care",
    params(("id" = i64, Path, description = "Booking id")),
    request_body = StatusBody,
    responses(
        (status = 200, body = BookingView),
        (status = 400, description = "validation_failed", body = ErrorBody),
        (status = 403, description = "forbidden (not a partner or staff)", body = ErrorBody),
        (status = 404, description = "not_found (or not assigned to you)", body = ErrorBody),
        (status = 409, description = "invalid_transition, conflict", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[put("/services/bookings/{id}/status")]
pub async fn set_status(
    state: web::Data<AppState>,
    auth: AuthUser,
    id: web::Path<i64>,
    body: web::Json<StatusBody>,
) -> Result<web::Json<BookingView>, ApiError> {
    if auth.role != Role::Partner && !is_staff(&auth) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "only the assigned partner or staff",
        ));
    }
    let to = match BookingStatus::parse(body.status.trim()) {
        Some(to @ (BookingStatus::EnRoute | BookingStatus::InProgress | BookingStatus::Completed)) => to,
        _ => {
            return Err(ApiError::field(
                "status",
                "must be en_route, in_progress or completed",
            ));
        }
    };
    let row = visible(&state, &auth, *id).await?;
    if !is_staff(&auth) && row.partner_user_id != Some(auth.id.0) {
        return Err(ApiError::not_found("booking"));
    }
    let step = Step {
        booking: row.id,
        to,
        actor_user: auth.id.0,
        reason: None,
    };
    apply(&state, step).await
}
