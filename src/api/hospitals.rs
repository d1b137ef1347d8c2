//! `/hospitals`: public search with live bed capacity (nearest first with `?near=`), and bed updates by
//! the hospital's partner or staff, conditional, audited and announced on `dispatch` after commit.

use actix_web::{HttpRequest, get, put, web};
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{Page, PageQuery, Problems, audit_entry, parse_near, parse_radius};
use crate::{
    auth::AuthUser,
    bus::Event,
    db::hospitals::{self, BedError, BedUpdate, Hospital},
    domain::{LatLng, Role},
    error::{ApiError, ErrorBody, ErrorCode},
    state::AppState,
};

/// Largest bed count accepted.
const MAX_BEDS: i32 = 100_000;

#[derive(Debug, Serialize, ToSchema)]
pub struct BedCount {
    pub total: i32,
    pub available: i32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Beds {
    pub general: BedCount,
    pub icu: BedCount,
    pub emergency: BedCount,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HospitalView {
    pub id: i64,
    pub name: String,
    pub slug: String,
    pub address: String,
    pub city: String,
    pub pincode: String,
    pub phone: Option<String>,
    pub lat: f64,
    pub lng: f64,
    pub emergency_capable: bool,
    pub specialties: Vec<String>,
    pub beds: Beds,
    pub version: i64,
    pub updated_at: NaiveDateTime,
    /// Metres from `?near=`, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance_m: Option<i64>,
}

impl HospitalView {
    fn new(h: Hospital, distance_m: Option<f64>) -> Self {
        Self {
            id: h.id,
            specialties: serde_json::from_str(&h.specialties).unwrap_or_default(),
            name: h.name,
            slug: h.slug,
            address: h.address,
            city: h.city,
            pincode: h.pincode,
            phone: h.phone,
            lat: h.lat,
            lng: h.lng,
            emergency_capable: h.emergency_capable,
            beds: Beds {
                general: BedCount {
                    total: h.beds_general_total,
                    available: h.beds_general_available,
                },
                icu: BedCount {
                    total: h.beds_icu_total,
                    available: h.beds_icu_available,
                },
                emergency: BedCount {
                    total: h.beds_emergency_total,
                    available: h.beds_emergency_available,
                },
            },
            version: h.version,
            updated_at: h.updated_at,
            distance_m: distance_m.map(|d| d.round() as i64),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct NearQuery {
    /// `lat,lng`: only places within `radius_km`, nearest first.
    pub near: Option<String>,
    /// Search radius with `near` (1..=100, default 10).
    pub radius_km: Option<u32>,
}

/// Sorts `(distance, id, row)` nearest first and returns the requested page of it.
pub fn nearest_page<T>(mut rows: Vec<(f64, i64, T)>, page: super::PageRequest) -> (Vec<(f64, T)>, i64) {
    rows.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let total = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    let start = usize::try_from(page.offset()).unwrap_or(usize::MAX);
    let items = rows
        .into_iter()
        .skip(start)
        .take(page.per_page as usize)
        .map(|(d, _, row)| (d, row))
        .collect();
    (items, total)
}

#[utoipa::path(
    tag = "hospitals",
    params(NearQuery, PageQuery),
    responses((status = 200, body = Page<HospitalView>), (status = 400, description = "validation_failed", body = ErrorBody))
)]
#[get("/hospitals")]
pub async fn list_hospitals(
    state: web::Data<AppState>,
    near: web::Query<NearQuery>,
    page: web::Query<PageQuery>,
) -> Result<web::Json<Page<HospitalView>>, ApiError> {
    let mut p = Problems::default();
    let centre = parse_near(&mut p, near.near.as_deref());
    let radius_m = parse_radius(&mut p, near.radius_km);
    let page_req = page.validate();
    p.finish()?;
    let page = page_req?;
    let mut conn = state.db.read().await?;
    let Some(centre) = centre else {
        let (rows, total) = hospitals::page(&mut conn, page.limit(), page.offset()).await?;
        let items = rows.into_iter().map(|h| HospitalView::new(h, None)).collect();
        return Ok(web::Json(page.wrap(items, total)));
    };
    let rows = hospitals::in_box(&mut conn, centre.bounding_box(radius_m)).await?;
    drop(conn);
    let within: Vec<(f64, i64, Hospital)> = rows
        .into_iter()
        .filter_map(|h| {
            let d = LatLng::parse(h.lat, h.lng).ok()?.distance_m(centre);
            (d <= radius_m).then_some((d, h.id, h))
        })
        .collect();
    let (items, total) = nearest_page(within, page);
    let items = items
        .into_iter()
        .map(|(d, h)| HospitalView::new(h, Some(d)))
        .collect();
    Ok(web::Json(page.wrap(items, total)))
}

#[utoipa::path(
    tag = "hospitals",
    params(("id" = i64, Path, description = "Hospital id")),
    responses((status = 200, body = HospitalView), (status = 404, description = "not_found", body = ErrorBody))
)]
#[get("/hospitals/{id}")]
pub async fn get_hospital(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<web::Json<HospitalView>, ApiError> {
    let mut conn = state.db.read().await?;
    let hospital = hospitals::find(&mut conn, *id)
        .await?
        .ok_or_else(|| ApiError::not_found("hospital"))?;
    Ok(web::Json(HospitalView::new(hospital, None)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BedsUpdate {
    pub general_available: Option<i32>,
    pub icu_available: Option<i32>,
    pub emergency_available: Option<i32>,
    /// Apply only if the hospital is still at this version (409 `conflict` otherwise).
    pub version: Option<i64>,
}

/// Whether `auth` manages the place whose partner account is `partner`: that partner, or staff/admin.
pub fn manages(auth: &AuthUser, partner: Option<i64>) -> bool {
    auth.has_role(&[Role::Staff, Role::Admin]) || (auth.role == Role::Partner && partner == Some(auth.id.0))
}

#[utoipa::path(
    tag = "hospitals",
    request_body = BedsUpdate,
    params(("id" = i64, Path, description = "Hospital id")),
    responses(
        (status = 200, body = HospitalView),
        (status = 400, description = "validation_failed (negative or above the total)", body = ErrorBody),
        (status = 403, description = "forbidden: not this hospital's partner, staff or admin", body = ErrorBody),
        (status = 404, description = "not_found", body = ErrorBody),
        (status = 409, description = "conflict: the version changed", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[put("/hospitals/{id}/beds")]
pub async fn update_beds(
    req: HttpRequest,
    state: web::Data<AppState>,
    auth: AuthUser,
    id: web::Path<i64>,
    body: web::Json<BedsUpdate>,
) -> Result<web::Json<HospitalView>, ApiError> {
    let mut p = Problems::default();
    let counts = [
        ("general_available", body.general_available),
        ("icu_available", body.icu_available),
        ("emergency_available", body.emergency_available),
    ];
    for (field, value) in counts {
        if value.is_some_and(|n| !(0..=MAX_BEDS).contains(&n)) {
            p.add(field, format!("must be between 0 and {MAX_BEDS}"));
        }
    }
    if counts.iter().all(|(_, v)| v.is_none()) {
        p.add(
            "body",
            "give at least one of general_available, icu_available, emergency_available",
        );
    }
    p.finish()?;
    let id = id.into_inner();
    let mut conn = state.db.read().await?;
    let hospital = hospitals::find(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found("hospital"))?;
    drop(conn);
    if !manages(&auth, hospital.partner_user_id) {
        return Err(ApiError::forbidden());
    }
    let update = BedUpdate {
        general_available: body.general_available,
        icu_available: body.icu_available,
        emergency_available: body.emergency_available,
        version: body.version,
    };
    let audit = audit_entry(
        &req,
        Some(auth.id.0),
        "hospital.beds_updated",
        ("hospital", Some(id.to_string())),
    );
    let mut conn = state.db.write().await?;
    let hospital = hospitals::update_beds(&mut conn, id, update, &audit)
        .await
        .map_err(|e| match e {
            BedError::NotFound => ApiError::not_found("hospital"),
            BedError::AboveTotal(field, total) => ApiError::field(field, format!("must be at most {total}")),
            BedError::Conflict => ApiError::new(
                ErrorCode::Conflict,
                "the hospital's beds changed meanwhile; reload and try again",
            ),
            BedError::Db(e) => e.into(),
        })?;
    drop(conn);
    let event = Event::HospitalBeds {
        hospital_id: hospital.id,
        general_available: hospital.beds_general_available,
        icu_available: hospital.beds_icu_available,
        emergency_available: hospital.beds_emergency_available,
        version: hospital.version,
        at: chrono::Utc::now(),
    };
    state.bus.publish_event(&["dispatch".to_owned()], &event).await;
    tracing::info!(hospital = hospital.id, user = auth.id.0, "beds updated");
    Ok(web::Json(HospitalView::new(hospital, None)))
}
