//! Home lab collections: booking (`/lab-tests/book`), the customer's collections and cancellation, the
//! phlebotomist's steps and day route, report upload (staff/partner, PDF checked by content) and the
//! report itself (owner and staff only; staff reads audited). Anyone else asking for a collection gets
//! 404, so its existence is not revealed.

use actix_multipart::Multipart;
use actix_web::{HttpRequest, HttpResponse, get, http::header, post, put, web};
use chrono::{NaiveDate, NaiveDateTime, TimeDelta};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use futures_util::StreamExt;
use onemedi_actors::{
    ids::UnitId,
    machines::{Agent, LabEvent},
    position::Position,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use super::{Page, PageQuery, Problems, ReasonBody, audit_entry, prescriptions};
use crate::{
    auth::AuthUser,
    db::{
        self, audit,
        doctors::{IST_OFFSET, local_today},
        lab_collections::{
            self as lab, CollectionItem, CollectionRow, NewBooking, Step, WINDOWS, window_minutes,
        },
        orders::Transition,
        schema::users,
    },
    dispatch::{
        lab::{announce_step, assign, lab_error},
        lab_route::{self, Plan, PlannedCollection},
    },
    domain::{Phone, Role},
    error::{ApiError, ErrorBody, ErrorCode},
    on_conn,
    state::AppState,
};

/// Most tests in one booking.
pub const MAX_TESTS_PER_BOOKING: usize = 20;
/// Largest report file.
pub const MAX_REPORT_BYTES: usize = 10 * 1024 * 1024;
/// Longest cancellation reason.
const MAX_REASON_CHARS: usize = 500;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlotBody {
    /// The collection day, `YYYY-MM-DD` (India time), from today to the booking horizon.
    pub date: String,
    /// One of the fixed windows, e.g. `07:00-09:00`.
    pub window: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatientBody {
    pub name: String,
    pub age: i32,
    /// `female`, `male` or `other`.
    pub gender: Option<String>,
    /// Whom the phlebotomist calls; defaults to the account's phone.
    pub phone: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BookBody {
    pub test_ids: Vec<i64>,
    /// One of the caller's addresses.
    pub address_id: i64,
    pub slot: SlotBody,
    pub patient: PatientBody,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SlotView {
    pub date: NaiveDate,
    pub window: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PatientView {
    pub name: String,
    pub age: Option<i32>,
    pub gender: Option<String>,
    pub phone: String,
}

/// A lab collection; `items` and `timeline` are filled on the single-collection answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct CollectionView {
    pub id: i64,
    pub status: String,
    pub slot: SlotView,
    pub patient: PatientView,
    pub address_id: Option<i64>,
    pub address: String,
    pub lat: f64,
    pub lng: f64,
    pub total_paise: i64,
    /// The distinct sample types the tests need.
    pub sample_types: Vec<String>,
    /// The shortest stability window among the samples, minutes.
    pub stability_minutes: i32,
    pub phlebotomist_id: Option<i64>,
    /// Why nobody is assigned yet (the booking is retried).
    pub unassigned_reason: Option<String>,
    pub assigned_at: Option<NaiveDateTime>,
    pub collected_at: Option<NaiveDateTime>,
    /// When the shortest-lived sample expires, once collected.
    pub sample_deadline: Option<NaiveDateTime>,
    pub at_lab_at: Option<NaiveDateTime>,
    pub report_ready_at: Option<NaiveDateTime>,
    pub report_available: bool,
    pub cancel_reason: Option<String>,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub items: Vec<CollectionItem>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<Transition>,
}

impl CollectionView {
    fn new(row: CollectionRow, items: Vec<CollectionItem>, timeline: Vec<Transition>) -> Self {
        let mut sample_types: Vec<String> = items.iter().map(|i| i.sample_type.clone()).collect();
        sample_types.sort();
        sample_types.dedup();
        let stability = lab::collection_stability(&items);
        let sample_deadline = row.sample_deadline(stability);
        Self {
            id: row.id,
            status: row.status,
            slot: SlotView {
                date: row.slot_date,
                window: row.slot_window,
            },
            patient: PatientView {
                name: row.patient_name,
                age: row.patient_age,
                gender: row.patient_gender,
                phone: row.contact_phone,
            },
            address_id: row.address_id,
            address: row.address_text,
            lat: row.lat,
            lng: row.lng,
            total_paise: row.total_paise,
            sample_types,
            stability_minutes: stability,
            phlebotomist_id: row.phlebotomist_id,
            unassigned_reason: row.unassigned_reason,
            assigned_at: row.assigned_at,
            collected_at: row.collected_at,
            sample_deadline,
            at_lab_at: row.at_lab_at,
            report_ready_at: row.report_ready_at,
            report_available: row.report_path.is_some(),
            cancel_reason: row.cancel_reason,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
            items,
            timeline,
        }
    }
}

fn is_staff(auth: &AuthUser) -> bool {
    matches!(auth.role, Role::Staff | Role::Admin)
}

/// The UTC instant a local (IST) minute of `date` falls on.
fn local_minute(date: NaiveDate, minute: i32) -> NaiveDateTime {
    date.and_time(chrono::NaiveTime::MIN) + TimeDelta::minutes(i64::from(minute)) - IST_OFFSET
}

/// Books a home sample collection; a phlebotomist is then offered it (see `collector:{id}`).
#[utoipa::path(
    tag = "lab tests",
    request_body = BookBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key book once")),
    responses(
        (status = 201, body = CollectionView),
        (status = 400, description = "validation_failed (tests, address, slot, patient)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/lab-tests/book")]
pub async fn book(
    state: web::Data<AppState>,
    auth: AuthUser,
    body: web::Json<BookBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut p = Problems::default();
    let mut test_ids = body.test_ids.clone();
    test_ids.sort_unstable();
    test_ids.dedup();
    if body.test_ids.is_empty() || body.test_ids.len() > MAX_TESTS_PER_BOOKING {
        p.add("test_ids", format!("between 1 and {MAX_TESTS_PER_BOOKING} tests"));
    } else if test_ids.len() != body.test_ids.len() || test_ids.iter().any(|id| *id <= 0) {
        p.add("test_ids", "must be distinct positive ids");
    }
    if body.address_id <= 0 {
        p.add("address_id", "must be a positive id");
    }
    let now = db::now();
    let today = local_today(now);
    let horizon = state.settings.lab.horizon_days();
    let date = crate::domain::dates::parse_day(&body.slot.date);
    let window = window_minutes(body.slot.window.trim());
    match date {
        None => p.add("slot.date", "must be a date such as 2026-12-01"),
        Some(date) if date < today => p.add("slot.date", "must not be in the past"),
        Some(date) if date > today + TimeDelta::days(horizon) => {
            p.add("slot.date", format!("must be within {horizon} days"))
        }
        Some(_) => {}
    }
    match (date, window) {
        (_, None) => p.add("slot.window", format!("must be one of {}", WINDOWS.join(", "))),
        (Some(date), Some((start, _))) if local_minute(date, start) <= now => {
            p.add("slot.window", "this window has already started")
        }
        _ => {}
    }
    let name = p.text("patient.name", &body.patient.name, 100);
    if !(0..=130).contains(&body.patient.age) {
        p.add("patient.age", "must be between 0 and 130");
    }
    let gender = body.patient.gender.as_deref().map(str::trim);
    if gender.is_some_and(|g| !["female", "male", "other"].contains(&g)) {
        p.add("patient.gender", "must be female, male or other");
    }
    let phone = match body.patient.phone.as_deref() {
        Some(raw) => p
            .check("patient.phone", Phone::parse(raw))
            .map(|p| p.as_str().to_owned()),
        None => None,
    };
    p.finish()?;
    let (Some(name), Some(date)) = (name, date) else {
        return Err(ApiError::internal(anyhow::anyhow!(
            "validated booking fields missing"
        )));
    };
    let mut conn = state.db.write().await?;
    let phone = match phone {
        Some(phone) => phone,
        None => on_conn!(&mut conn, c => users::table
            .find(auth.id.0)
            .select(users::phone)
            .first::<Option<String>>(c)
            .await)?
        .unwrap_or_default(),
    };
    let row = lab::book(
        &mut conn,
        NewBooking {
            user_id: auth.id.0,
            address_id: body.address_id,
            test_ids: body.test_ids,
            patient_name: name,
            patient_age: body.patient.age,
            patient_gender: gender.map(str::to_owned),
            contact_phone: phone,
            slot_date: date,
            slot_window: body.slot.window.trim().to_owned(),
        },
    )
    .await
    .map_err(lab_error)?;
    let items = lab::items_of(&mut conn, row.id).await?;
    drop(conn);
    assign(state.clone(), row.id);
    Ok(HttpResponse::Created().json(CollectionView::new(row, items, Vec::new())))
}

/// The caller's collections, newest first.
#[utoipa::path(
    tag = "lab tests",
    params(PageQuery),
    responses((status = 200, body = Page<CollectionView>)),
    security(("bearer" = []))
)]
#[get("/lab-collections")]
pub async fn list_own(
    state: web::Data<AppState>,
    auth: AuthUser,
    page: web::Query<PageQuery>,
) -> Result<web::Json<Page<CollectionView>>, ApiError> {
    let page = page.validate()?;
    let mut conn = state.db.read().await?;
    let (rows, total) = lab::list_own(&mut conn, auth.id.0, page.limit(), page.offset()).await?;
    let mut views = Vec::with_capacity(rows.len());
    for row in rows {
        let items = lab::items_of(&mut conn, row.id).await?;
        views.push(CollectionView::new(row, items, Vec::new()));
    }
    Ok(web::Json(page.wrap(views, total)))
}

/// The collection if the caller may see it: its customer, staff, or its phlebotomist.
async fn visible(state: &AppState, auth: &AuthUser, id: i64) -> Result<CollectionRow, ApiError> {
    let mut conn = state.db.read().await?;
    let row = lab::find(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found("lab collection"))?;
    if row.user_id == auth.id.0 || is_staff(auth) {
        return Ok(row);
    }
    if auth.role == Role::Phlebotomist
        && let Some(collector) = lab::collector_of_user(&mut conn, auth.id.0).await?
        && row.phlebotomist_id == Some(collector.id)
    {
        return Ok(row);
    }
    Err(ApiError::not_found("lab collection"))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct RouteQuery {
    /// The day, `YYYY-MM-DD` (India time).
    pub date: String,
}

/// A phlebotomist's day: stops ordered so every sample reaches the lab within its stability window.
#[derive(Debug, Serialize, ToSchema)]
pub struct RouteView {
    pub date: NaiveDate,
    pub phlebotomist_id: i64,
    /// Where samples are dropped (the collector's collection centre).
    pub lab: LabPoint,
    pub stops: Vec<lab_route::RouteStop>,
    /// Collections whose sample would reach the lab too close to (or past) its deadline, or whose
    /// window would be missed.
    pub at_risk: Vec<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LabPoint {
    pub lat: f64,
    pub lng: f64,
}

/// The calling phlebotomist's day route.
#[utoipa::path(
    tag = "lab tests",
    params(RouteQuery),
    responses(
        (status = 200, body = RouteView),
        (status = 400, description = "validation_failed", body = ErrorBody),
        (status = 403, description = "forbidden (not a phlebotomist)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/lab-collections/route")]
pub async fn route(
    state: web::Data<AppState>,
    auth: AuthUser,
    query: web::Query<RouteQuery>,
) -> Result<web::Json<RouteView>, ApiError> {
    let date = crate::domain::dates::parse_day(&query.date)
        .ok_or_else(|| ApiError::field("date", "must be a date such as 2026-12-01, between 1900 and 2199"))?;
    let mut conn = state.db.read().await?;
    let collector = match auth.role {
        Role::Phlebotomist => lab::collector_of_user(&mut conn, auth.id.0).await?,
        _ => None,
    }
    .ok_or_else(|| ApiError::new(ErrorCode::Forbidden, "only a phlebotomist has a route"))?;
    let rows = lab::day_of(&mut conn, collector.id, date).await?;
    let mut stabilities = Vec::with_capacity(rows.len());
    for row in &rows {
        stabilities.push(lab::collection_stability(
            &lab::items_of(&mut conn, row.id).await?,
        ));
    }
    drop(conn);
    let home = Position::new(collector.home_lat, collector.home_lng)
        .map_err(|e| ApiError::internal(anyhow::anyhow!("collector home: {e}")))?;
    let planned: Vec<PlannedCollection> = rows
        .iter()
        .zip(stabilities)
        .filter_map(|(row, stability)| {
            let (start, end) = window_minutes(&row.slot_window)?;
            Some(PlannedCollection {
                id: row.id,
                at: Position::new(row.lat, row.lng).ok()?,
                window_start: local_minute(row.slot_date, start),
                window_end: local_minute(row.slot_date, end),
                stability: TimeDelta::minutes(i64::from(stability)),
                collected_at: row.collected_at,
            })
        })
        .collect();
    let first_window = planned
        .iter()
        .map(|c| c.window_start)
        .min()
        .unwrap_or_else(|| local_minute(date, collector.work_start_minute));
    let start = db::now().max(first_window - TimeDelta::hours(1));
    let Plan { stops, at_risk } =
        lab_route::plan(home, home, start, state.settings.lab.at_risk_margin(), &planned);
    Ok(web::Json(RouteView {
        date,
        phlebotomist_id: collector.id,
        lab: LabPoint {
            lat: home.lat(),
            lng: home.lng(),
        },
        stops,
        at_risk,
    }))
}

/// One collection with its tests and timeline.
#[utoipa::path(
    tag = "lab tests",
    params(("id" = i64, Path, description = "Collection id")),
    responses((status = 200, body = CollectionView), (status = 404, description = "not_found", body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/lab-collections/{id}")]
pub async fn get_collection(
    state: web::Data<AppState>,
    auth: AuthUser,
    id: web::Path<i64>,
) -> Result<web::Json<CollectionView>, ApiError> {
    let row = visible(&state, &auth, *id).await?;
    let mut conn = state.db.read().await?;
    let items = lab::items_of(&mut conn, row.id).await?;
    let timeline = lab::timeline(&mut conn, row.id).await?;
    Ok(web::Json(CollectionView::new(row, items, timeline)))
}

async fn apply(state: &AppState, step: Step, agent: Agent) -> Result<web::Json<CollectionView>, ApiError> {
    let name = step.event.name();
    let mut conn = state.db.write().await?;
    let stepped = lab::step(&mut conn, step).await.map_err(lab_error)?;
    let items = lab::items_of(&mut conn, stepped.after.id).await?;
    let timeline = lab::timeline(&mut conn, stepped.after.id).await?;
    drop(conn);
    announce_step(state, &stepped, name, agent).await;
    Ok(web::Json(CollectionView::new(stepped.after, items, timeline)))
}

/// Cancels a collection before the sample is drawn (its customer, or staff).
#[utoipa::path(
    tag = "lab tests",
    params(("id" = i64, Path, description = "Collection id")),
    request_body = ReasonBody,
    responses(
        (status = 200, body = CollectionView),
        (status = 404, description = "not_found", body = ErrorBody),
        (status = 409, description = "invalid_transition (already collected or closed), conflict", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/lab-collections/{id}/cancel")]
pub async fn cancel(
    state: web::Data<AppState>,
    auth: AuthUser,
    id: web::Path<i64>,
    body: crate::api::body::OptionalJson<ReasonBody>,
) -> Result<web::Json<CollectionView>, ApiError> {
    let reason = body.into_inner().and_then(|b| b.reason);
    let mut p = Problems::default();
    let reason = reason.and_then(|r| p.text("reason", &r, MAX_REASON_CHARS));
    p.finish()?;
    let row = visible(&state, &auth, *id).await?;
    if row.user_id != auth.id.0 && !is_staff(&auth) {
        return Err(ApiError::not_found("lab collection"));
    }
    let step = Step {
        collection: row.id,
        event: LabEvent::Cancel,
        actor_user: Some(auth.id.0),
        actor_unit: None,
        reason,
        report_path: None,
    };
    apply(&state, step, Agent::User(onemedi_actors::ids::UserId(auth.id.0))).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusBody {
    /// `en_route`, `collected` or `at_lab`.
    pub status: String,
}

/// The assigned phlebotomist (or staff) moves the collection on: `en_route` → `collected` → `at_lab`.
#[utoipa::path(
    tag = "lab tests",
    params(("id" = i64, Path, description = "Collection id")),
    request_body = StatusBody,
    responses(
        (status = 200, body = CollectionView),
        (status = 400, description = "validation_failed", body = ErrorBody),
        (status = 403, description = "forbidden (not a phlebotomist or staff)", body = ErrorBody),
        (status = 404, description = "not_found (or not assigned to you)", body = ErrorBody),
        (status = 409, description = "invalid_transition, conflict", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[put("/lab-collections/{id}/status")]
pub async fn set_status(
    state: web::Data<AppState>,
    auth: AuthUser,
    id: web::Path<i64>,
    body: web::Json<StatusBody>,
) -> Result<web::Json<CollectionView>, ApiError> {
    let event = match body.status.trim() {
        "en_route" => LabEvent::Depart,
        "collected" => LabEvent::Collect,
        "at_lab" => LabEvent::DeliverToLab,
        _ => return Err(ApiError::field("status", "must be en_route, collected or at_lab")),
    };
    if auth.role != Role::Phlebotomist && !is_staff(&auth) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "only the assigned phlebotomist or staff",
        ));
    }
    let mut conn = state.db.read().await?;
    let row = lab::find(&mut conn, *id)
        .await?
        .ok_or_else(|| ApiError::not_found("lab collection"))?;
    let (agent, unit) = if is_staff(&auth) {
        (Agent::User(onemedi_actors::ids::UserId(auth.id.0)), None)
    } else {
        let collector = lab::collector_of_user(&mut conn, auth.id.0).await?;
        match collector {
            Some(collector) if row.phlebotomist_id == Some(collector.id) => {
                (Agent::Unit(UnitId(collector.unit_id)), Some(collector.unit_id))
            }
            _ => return Err(ApiError::not_found("lab collection")),
        }
    };
    drop(conn);
    let step = Step {
        collection: row.id,
        event,
        actor_user: Some(auth.id.0),
        actor_unit: unit,
        reason: None,
        report_path: None,
    };
    apply(&state, step, agent).await
}

/// The multipart form of a report upload.
#[derive(Debug, ToSchema)]
#[allow(
    dead_code,
    reason = "documents the multipart form for OpenAPI; parsed by hand"
)]
pub struct ReportForm {
    /// The report: a PDF (checked by content), at most 10 MiB.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

fn report_too_large() -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("a report is at most {} MiB", MAX_REPORT_BYTES / 1024 / 1024),
    )
}

/// Staff or a partner lab publishes the report of a sample at the lab: `at_lab` → `report_ready`.
#[utoipa::path(
    tag = "lab tests",
    params(("id" = i64, Path, description = "Collection id")),
    request_body(content = ReportForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, body = CollectionView),
        (status = 400, description = "validation_failed (no file)", body = ErrorBody),
        (status = 403, description = "forbidden (not staff or partner)", body = ErrorBody),
        (status = 404, description = "not_found", body = ErrorBody),
        (status = 409, description = "invalid_transition (the sample is not at the lab)", body = ErrorBody),
        (status = 413, description = "payload_too_large", body = ErrorBody),
        (status = 415, description = "unsupported_media_type (not multipart, or not a PDF by content)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/lab-collections/{id}/report")]
pub async fn upload_report(
    state: web::Data<AppState>,
    auth: AuthUser,
    req: HttpRequest,
    id: web::Path<i64>,
    payload: web::Payload,
) -> Result<web::Json<CollectionView>, ApiError> {
    if !matches!(auth.role, Role::Staff | Role::Partner | Role::Admin) {
        return Err(ApiError::new(ErrorCode::Forbidden, "only staff or a partner lab"));
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !is_form {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send multipart/form-data with a `file` part",
        ));
    }
    let mut conn = state.db.read().await?;
    let row = lab::find(&mut conn, *id)
        .await?
        .ok_or_else(|| ApiError::not_found("lab collection"))?;
    drop(conn);
    let mut form = Multipart::new(req.headers(), payload);
    let mut file = None;
    while let Some(field) = form.next().await {
        let mut field = field.map_err(|e| ApiError::field("file", format!("malformed form: {e}")))?;
        match field.name().unwrap_or_default() {
            "file" if file.is_none() => {
                file = Some(
                    prescriptions::read_part_within(&mut field, MAX_REPORT_BYTES, report_too_large).await?,
                )
            }
            other => return Err(ApiError::field(other, "unknown or repeated part")),
        }
    }
    let file = file
        .filter(|f| !f.is_empty())
        .ok_or_else(|| ApiError::field("file", "a non-empty file part is required"))?;
    if !matches!(prescriptions::sniff(&file), Some(("application/pdf", _))) {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "the report is not a PDF (its content is checked, not its name)",
        ));
    }
    let sha256 = hex::encode(Sha256::digest(&file));
    let key = format!("lab-reports/{}/{sha256}.pdf", row.id);
    state.storage.put(&key, &file).await.map_err(ApiError::internal)?;
    let step = Step {
        collection: row.id,
        event: LabEvent::PublishReport,
        actor_user: Some(auth.id.0),
        actor_unit: None,
        reason: None,
        report_path: Some(key),
    };
    apply(&state, step, Agent::User(onemedi_actors::ids::UserId(auth.id.0))).await
}

/// The report PDF: the patient's account, or staff (each staff read is audited).
#[utoipa::path(
    tag = "lab tests",
    params(("id" = i64, Path, description = "Collection id")),
    responses(
        (status = 200, description = "the report (application/pdf)"),
        (status = 404, description = "not_found (no such collection, not yours, or no report yet)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/lab-collections/{id}/report")]
pub async fn download_report(
    state: web::Data<AppState>,
    auth: AuthUser,
    req: HttpRequest,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.db.read().await?;
    let row = lab::find(&mut conn, *id)
        .await?
        .ok_or_else(|| ApiError::not_found("lab collection"))?;
    drop(conn);
    let owner = row.user_id == auth.id.0;
    if !owner && !is_staff(&auth) {
        return Err(ApiError::not_found("lab collection"));
    }
    let path = row
        .report_path
        .clone()
        .ok_or_else(|| ApiError::not_found("report"))?;
    if !owner {
        let entry = audit_entry(
            &req,
            Some(auth.id.0),
            "lab_collection.report_read",
            ("lab_collection", Some(row.id.to_string())),
        );
        let mut conn = state.db.write().await?;
        audit::record(&mut conn, &entry, &serde_json::json!({"owner": row.user_id})).await?;
    }
    let bytes = state.storage.get(&path).await.map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("application/pdf")
        .insert_header((header::CACHE_CONTROL, "private, no-store"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(bytes))
}
