//! `/emergency/blood-requests`: requests reserve compatible bank stock and alert eligible compatible
//! donors nearby; donors pledge; the requester follows `blood_request:{id}`.
//! Only the requester, staff, administrators and dispatchers see a request (others get 404).

use actix_web::{HttpResponse, get, post, web};
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    Page, PageQuery, Problems,
    blood_banks::{parse_component, parse_group},
};
use crate::{
    auth::AuthUser,
    bus::Event,
    db::{
        blood::{self, BloodError, BloodRequest, NewRequest, Reservation},
        hospitals,
    },
    domain::{LatLng, PersonName, Phone, Role, blood::Urgency},
    error::{ApiError, ErrorBody, ErrorCode},
    state::AppState,
};

/// Most units one request may ask for.
pub const MAX_UNITS: i64 = 20;
/// Most units one donor may pledge.
pub const MAX_PLEDGE_UNITS: i64 = 2;
const MAX_NOTES_CHARS: usize = 1_000;

/// How far along a request is.
#[derive(Debug, Serialize, ToSchema)]
pub struct Progress {
    pub needed: i32,
    pub reserved: i32,
    pub pledged: i32,
    /// Units neither reserved nor pledged yet.
    pub missing: i32,
    /// (reserved + pledged) / needed, 0..=100.
    pub percent: i32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BloodRequestView {
    pub id: i64,
    /// `open`, `partially_reserved`, `reserved` (banks hold every unit), `fulfilled` (donors' pledges
    /// complete it), `cancelled` or `expired`.
    pub status: String,
    pub blood_group: String,
    pub component: String,
    pub units_needed: i32,
    pub urgency: String,
    pub hospital_id: Option<i64>,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    pub patient_name: String,
    pub contact_phone: String,
    pub notes: Option<String>,
    pub progress: Progress,
    /// Live pledges by donors.
    pub pledges: i64,
    /// Bank stock held for the request (single-request answers only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reservations: Vec<Reservation>,
    /// Donors alerted when the request was created (creation answer only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub donors_notified: Option<usize>,
    pub expires_at: NaiveDateTime,
    pub fulfilled_at: Option<NaiveDateTime>,
    pub cancelled_at: Option<NaiveDateTime>,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl BloodRequestView {
    fn new(r: BloodRequest, reservations: Vec<Reservation>, pledges: i64) -> Self {
        let covered = r.units_reserved.saturating_add(r.units_pledged);
        let percent = if r.units_needed > 0 {
            (covered.min(r.units_needed) * 100) / r.units_needed
        } else {
            100
        };
        Self {
            id: r.id,
            status: r.status,
            blood_group: r.blood_group,
            component: r.component,
            units_needed: r.units_needed,
            urgency: r.urgency,
            hospital_id: r.hospital_id,
            lat: r.lat,
            lng: r.lng,
            patient_name: r.patient_name,
            contact_phone: r.contact_phone,
            notes: r.notes,
            progress: Progress {
                needed: r.units_needed,
                reserved: r.units_reserved,
                pledged: r.units_pledged,
                missing: (r.units_needed - covered).max(0),
                percent,
            },
            pledges,
            reservations,
            donors_notified: None,
            expires_at: r.expires_at,
            fulfilled_at: r.fulfilled_at,
            cancelled_at: r.cancelled_at,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

impl From<BloodError> for ApiError {
    fn from(error: BloodError) -> Self {
        match error {
            BloodError::NotFound => ApiError::not_found("blood request"),
            BloodError::Closed(status) => ApiError::new(
                ErrorCode::RequestClosed,
                format!("the blood request is {status} and no longer takes this"),
            ),
            BloodError::NoDonorProfile => ApiError::new(
                ErrorCode::DonorNotEligible,
                "save a donor profile (PUT /api/v1/users/donor-profile) before pledging",
            ),
            BloodError::NotEligible => ApiError::new(
                ErrorCode::DonorNotEligible,
                "donors must be available and wait 90 days between donations",
            ),
            incompatible @ BloodError::Incompatible { .. } => {
                ApiError::new(ErrorCode::IncompatibleDonor, incompatible.to_string())
            }
            BloodError::AlreadyPledged => {
                ApiError::new(ErrorCode::AlreadyPledged, "you already pledged to this request")
            }
            BloodError::Conflict => ApiError::new(
                ErrorCode::Conflict,
                "the request changed meanwhile; reload it and try again",
            ),
            corrupt @ (BloodError::Corrupt(_) | BloodError::NotDue) => ApiError::internal(corrupt),
            BloodError::Db(error) => error.into(),
        }
    }
}

/// Staff, administrators and dispatchers see every request.
fn sees_all(auth: &AuthUser) -> bool {
    auth.has_role(&[Role::Staff, Role::Admin, Role::Dispatcher])
}

fn topic(id: i64) -> String {
    format!("blood_request:{id}")
}

async fn publish_progress(state: &AppState, r: &BloodRequest, change: &str) {
    let event = Event::BloodRequestProgress {
        request_id: r.id,
        change: change.to_owned(),
        status: r.status.clone(),
        units_needed: r.units_needed,
        units_reserved: r.units_reserved,
        units_pledged: r.units_pledged,
        at: chrono::Utc::now(),
    };
    state.bus.publish_event(&[topic(r.id)], &event).await;
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Location {
    pub lat: f64,
    pub lng: f64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBloodRequest {
    #[schema(example = "O-")]
    pub blood_group: String,
    #[schema(example = "red_cells")]
    pub component: String,
    /// 1..=20
    pub units: i64,
    /// Where the blood is needed: a hospital, or a `location` (exactly one).
    pub hospital_id: Option<i64>,
    pub location: Option<Location>,
    #[schema(example = "urgent")]
    pub urgency: String,
    pub patient_name: String,
    pub contact_phone: String,
    pub notes: Option<String>,
}

#[utoipa::path(
    tag = "emergency",
    request_body = CreateBloodRequest,
    responses(
        (status = 201, body = BloodRequestView),
        (status = 400, description = "validation_failed", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/emergency/blood-requests")]
pub async fn create_request(
    state: web::Data<AppState>,
    auth: AuthUser,
    body: web::Json<CreateBloodRequest>,
) -> Result<HttpResponse, ApiError> {
    let mut p = Problems::default();
    let group = parse_group(&mut p, "blood_group", &body.blood_group);
    let component = parse_component(&mut p, "component", &body.component);
    if !(1..=MAX_UNITS).contains(&body.units) {
        p.add("units", format!("must be between 1 and {MAX_UNITS}"));
    }
    let urgency = match body.urgency.trim() {
        "routine" => Some(Urgency::Routine),
        "urgent" => Some(Urgency::Urgent),
        "critical" => Some(Urgency::Critical),
        _ => {
            p.add("urgency", "must be routine, urgent or critical");
            None
        }
    };
    let patient_name = p.check("patient_name", PersonName::parse(&body.patient_name));
    let contact_phone = p.check("contact_phone", Phone::parse(&body.contact_phone));
    let notes = match body.notes.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        Some(raw) => p.text("notes", raw, MAX_NOTES_CHARS),
        None => None,
    };
    let location = match (&body.hospital_id, &body.location) {
        (Some(_), Some(_)) => {
            p.add("location", "give hospital_id or location, not both");
            None
        }
        (None, None) => {
            p.add("location", "give hospital_id or location");
            None
        }
        (None, Some(at)) => p.check("location", LatLng::parse(at.lat, at.lng)),
        (Some(_), None) => None,
    };
    p.finish()?;
    let (Some(group), Some(component), Some(urgency), Some(patient_name), Some(contact_phone)) =
        (group, component, urgency, patient_name, contact_phone)
    else {
        return Err(ApiError::field("body", "invalid"));
    };
    let point = match (body.hospital_id, location) {
        (Some(hospital_id), _) => {
            let mut conn = state.db.read().await?;
            let hospital = hospitals::find(&mut conn, hospital_id)
                .await?
                .ok_or_else(|| ApiError::field("hospital_id", "no such hospital"))?;
            LatLng::parse(hospital.lat, hospital.lng).map_err(|e| ApiError::internal(anyhow::anyhow!(e)))?
        }
        (None, Some(point)) => point,
        (None, None) => return Err(ApiError::field("location", "give hospital_id or location")),
    };
    let new = NewRequest {
        requester: auth.id.0,
        patient_name: patient_name.into_inner(),
        contact_phone: contact_phone.into_inner(),
        group,
        component,
        units: i32::try_from(body.units).unwrap_or(1),
        hospital_id: body.hospital_id,
        point,
        urgency,
        notes,
    };
    let mut conn = state.db.write().await?;
    let created = blood::create(&mut conn, &new).await?;
    drop(conn);

    let request = &created.request;
    publish_progress(&state, request, "created").await;
    for donor in &created.notified {
        let event = Event::BloodRequestNearby {
            request_id: request.id,
            blood_group: request.blood_group.clone(),
            component: request.component.clone(),
            units_needed: request.units_needed - request.units_reserved,
            urgency: request.urgency.clone(),
            hospital_id: request.hospital_id,
            distance_m: donor.distance_m.round() as i64,
            at: chrono::Utc::now(),
        };
        state
            .bus
            .publish_event(&[format!("user:{}", donor.user_id)], &event)
            .await;
    }
    tracing::info!(
        request = request.id,
        user = auth.id.0,
        reserved = request.units_reserved,
        donors = created.notified.len(),
        "blood request created"
    );
    let notified = created.notified.len();
    let mut view = BloodRequestView::new(created.request, created.reservations, 0);
    view.donors_notified = Some(notified);
    Ok(HttpResponse::Created().json(view))
}

#[utoipa::path(
    tag = "emergency",
    params(PageQuery),
    responses((status = 200, body = Page<BloodRequestView>)),
    security(("bearer" = []))
)]
#[get("/emergency/blood-requests")]
pub async fn list_requests(
    state: web::Data<AppState>,
    auth: AuthUser,
    page: web::Query<PageQuery>,
) -> Result<web::Json<Page<BloodRequestView>>, ApiError> {
    let page = page.validate()?;
    let requester = (!sees_all(&auth)).then_some(auth.id.0);
    let mut conn = state.db.read().await?;
    let (rows, total) = blood::list(&mut conn, requester, page.limit(), page.offset()).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let pledges = blood::pledge_counts(&mut conn, &ids).await?;
    let items = rows
        .into_iter()
        .map(|row| {
            let count = pledges.get(&row.id).copied().unwrap_or(0);
            BloodRequestView::new(row, Vec::new(), count)
        })
        .collect();
    Ok(web::Json(page.wrap(items, total)))
}

/// The request if `auth` may see it (requester, staff, admin, dispatcher); 404 otherwise.
async fn visible(state: &AppState, auth: &AuthUser, id: i64) -> Result<BloodRequest, ApiError> {
    let mut conn = state.db.read().await?;
    blood::find(&mut conn, id)
        .await?
        .filter(|r| r.requester_user_id == auth.id.0 || sees_all(auth))
        .ok_or_else(|| ApiError::not_found("blood request"))
}

async fn full_view(state: &AppState, request: BloodRequest) -> Result<BloodRequestView, ApiError> {
    let mut conn = state.db.read().await?;
    let reservations = blood::reservations(&mut conn, request.id).await?;
    let pledges = blood::pledge_count(&mut conn, request.id).await?;
    Ok(BloodRequestView::new(request, reservations, pledges))
}

#[utoipa::path(
    tag = "emergency",
    params(("id" = i64, Path, description = "Blood request id")),
    responses((status = 200, body = BloodRequestView), (status = 404, description = "not_found", body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/emergency/blood-requests/{id}")]
pub async fn get_request(
    state: web::Data<AppState>,
    auth: AuthUser,
    id: web::Path<i64>,
) -> Result<web::Json<BloodRequestView>, ApiError> {
    let request = visible(&state, &auth, *id).await?;
    Ok(web::Json(full_view(&state, request).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PledgeBody {
    /// 1..=2, default 1; capped at the units still missing.
    pub units: Option<i64>,
}

#[utoipa::path(
    tag = "emergency",
    request_body = PledgeBody,
    params(("id" = i64, Path, description = "Blood request id")),
    responses(
        (status = 201, body = BloodRequestView),
        (status = 404, description = "not_found", body = ErrorBody),
        (status = 409, description = "already_pledged, request_closed or conflict", body = ErrorBody),
        (status = 422, description = "donor_not_eligible or incompatible_donor", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/emergency/blood-requests/{id}/pledges")]
pub async fn pledge(
    state: web::Data<AppState>,
    auth: AuthUser,
    id: web::Path<i64>,
    body: web::Json<PledgeBody>,
) -> Result<HttpResponse, ApiError> {
    let units = body.units.unwrap_or(1);
    if !(1..=MAX_PLEDGE_UNITS).contains(&units) {
        return Err(ApiError::field(
            "units",
            format!("must be between 1 and {MAX_PLEDGE_UNITS}"),
        ));
    }
    let units = i32::try_from(units).unwrap_or(1);
    let mut conn = state.db.write().await?;
    let request = blood::pledge(&mut conn, *id, auth.id.0, units).await?;
    drop(conn);
    publish_progress(&state, &request, "pledged").await;
    tracing::info!(request = request.id, donor = auth.id.0, units, "blood pledged");
    // The donor sees the request they pledged to, without the requester's reservations.
    let pledges = {
        let mut conn = state.db.read().await?;
        blood::pledge_count(&mut conn, request.id).await?
    };
    Ok(HttpResponse::Created().json(BloodRequestView::new(request, Vec::new(), pledges)))
}

#[utoipa::path(
    tag = "emergency",
    params(("id" = i64, Path, description = "Blood request id")),
    responses(
        (status = 200, body = BloodRequestView),
        (status = 404, description = "not_found", body = ErrorBody),
        (status = 409, description = "request_closed (already cancelled or expired) or conflict", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/emergency/blood-requests/{id}/cancel")]
pub async fn cancel_request(
    state: web::Data<AppState>,
    auth: AuthUser,
    id: web::Path<i64>,
) -> Result<web::Json<BloodRequestView>, ApiError> {
    let request = visible(&state, &auth, *id).await?;
    if request.requester_user_id != auth.id.0 && !auth.has_role(&[Role::Staff, Role::Dispatcher, Role::Admin])
    {
        return Err(ApiError::not_found("blood request"));
    }
    let mut conn = state.db.write().await?;
    let request = blood::cancel(&mut conn, request.id, auth.id.0).await?;
    drop(conn);
    publish_progress(&state, &request, "cancelled").await;
    tracing::info!(request = request.id, user = auth.id.0, "blood request cancelled");
    Ok(web::Json(full_view(&state, request).await?))
}

/// Expires requests past their deadline and ends lapsed holds, giving the units back to the banks, then
/// announces each change. Run periodically; every step is a conditional write, so two nodes sweeping at
/// once change each row once.
pub async fn sweep_expired(state: &AppState) -> Result<usize, ApiError> {
    let mut conn = state.db.write().await?;
    let (requests, holds) = blood::due(&mut conn, crate::db::now()).await?;
    let mut changed = Vec::new();
    for id in requests {
        match blood::expire(&mut conn, id).await {
            Ok(request) => changed.push((request, "expired")),
            Err(BloodError::Closed(_) | BloodError::NotDue | BloodError::NotFound) => {}
            Err(error) => tracing::warn!(request = id, error = %error, "blood request not expired"),
        }
    }
    for id in holds {
        match blood::lapse_hold(&mut conn, id).await {
            Ok(Some(request)) => changed.push((request, "hold_expired")),
            Ok(None) => {}
            Err(error) => tracing::warn!(reservation = id, error = %error, "blood hold not lapsed"),
        }
    }
    drop(conn);
    for (request, change) in &changed {
        publish_progress(state, request, change).await;
    }
    Ok(changed.len())
}
