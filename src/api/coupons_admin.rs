//! `/admin/coupons`: staff create, list and edit coupons (the engine that applies them is checkout's).
//! Every change is audited; a global limit can never be set below the uses already counted.

use actix_web::{HttpRequest, HttpResponse, get, post, put, web};
use chrono::NaiveDateTime;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{Page, PageQuery, Problems, audit_entry};
use crate::{
    auth::{Authorized, extract::StaffOnly},
    db::{
        audit,
        coupons::{self, Coupon, CouponChange, NewCoupon, normalise_code},
    },
    error::{ApiError, ErrorBody, ErrorCode},
    state::AppState,
};

const APPLIES_TO: [&str; 5] = ["all", "medicines", "lab_tests", "appointments", "services"];

/// A coupon as staff write it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CouponBody {
    /// 3–32 characters of A–Z and 0–9 (upper-cased); only on create.
    pub code: Option<String>,
    pub description: String,
    /// `percent` (value 1–100) or `flat` (value in paise).
    pub kind: String,
    pub value: i64,
    /// `all`, `medicines`, `lab_tests`, `appointments` or `services` (default `medicines`).
    pub applies_to: Option<String>,
    #[serde(default)]
    pub min_order_paise: i64,
    pub max_discount_paise: Option<i64>,
    pub starts_at: Option<NaiveDateTime>,
    pub ends_at: Option<NaiveDateTime>,
    pub global_limit: Option<i32>,
    pub per_user_limit: Option<i32>,
    #[serde(default)]
    pub first_order_only: bool,
    /// Only on edit (default true).
    pub is_active: Option<bool>,
}

/// The checked fields of a body.
fn validate(body: &CouponBody) -> Result<CouponChange, ApiError> {
    let mut p = Problems::default();
    let description = p.text("description", &body.description, 200);
    match body.kind.as_str() {
        "percent" if !(1..=100).contains(&body.value) => p.add("value", "a percentage is 1 to 100"),
        "flat" if !(1..=10_000_000).contains(&body.value) => p.add("value", "1 to 10000000 paise"),
        "percent" | "flat" => {}
        _ => p.add("kind", "percent or flat"),
    }
    let applies_to = body.applies_to.clone().unwrap_or_else(|| "medicines".to_owned());
    if !APPLIES_TO.contains(&applies_to.as_str()) {
        p.add("applies_to", APPLIES_TO.join(", "));
    }
    if body.min_order_paise < 0 {
        p.add("min_order_paise", "must not be negative");
    }
    if body.max_discount_paise.is_some_and(|m| m <= 0) {
        p.add("max_discount_paise", "must be positive");
    }
    let starts_at = body.starts_at.unwrap_or_else(crate::db::now);
    if body.ends_at.is_some_and(|end| end <= starts_at) {
        p.add("ends_at", "must be after starts_at");
    }
    if body.global_limit.is_some_and(|l| l <= 0) {
        p.add("global_limit", "must be positive");
    }
    if body.per_user_limit.is_some_and(|l| l <= 0) {
        p.add("per_user_limit", "must be positive");
    }
    p.finish()?;
    Ok(CouponChange {
        description: description.unwrap_or_default(),
        kind: body.kind.clone(),
        value: body.value,
        applies_to,
        min_order_paise: body.min_order_paise,
        max_discount_paise: body.max_discount_paise,
        starts_at,
        ends_at: body.ends_at,
        global_limit: body.global_limit,
        per_user_limit: body.per_user_limit,
        first_order_only: body.first_order_only,
        is_active: body.is_active.unwrap_or(true),
    })
}

async fn record(
    state: &AppState,
    req: &HttpRequest,
    staff: i64,
    action: &str,
    coupon: &Coupon,
) -> Result<(), ApiError> {
    let entry = audit_entry(req, Some(staff), action, ("coupon", Some(coupon.id.to_string())));
    let mut conn = state.db.write().await?;
    let details = serde_json::json!({"code": coupon.code, "kind": coupon.kind, "value": coupon.value,
        "global_limit": coupon.global_limit, "is_active": coupon.is_active});
    audit::record(&mut conn, &entry, &details).await?;
    Ok(())
}

/// Creates a coupon.
#[utoipa::path(
    tag = "admin",
    request_body = CouponBody,
    responses(
        (status = 201, body = Coupon),
        (status = 400, description = "validation_failed", body = ErrorBody),
        (status = 409, description = "coupon_code_taken", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/admin/coupons")]
pub async fn create_coupon(
    state: web::Data<AppState>,
    staff: Authorized<StaffOnly>,
    req: HttpRequest,
    body: web::Json<CouponBody>,
) -> Result<HttpResponse, ApiError> {
    let code = body.code.as_deref().map(normalise_code).unwrap_or_default();
    let valid_code = (3..=32).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric());
    let change = match (validate(&body), valid_code) {
        (Ok(change), true) => change,
        (Ok(_), false) => return Err(ApiError::field("code", "3 to 32 characters of A-Z and 0-9")),
        (Err(error), _) => return Err(error),
    };
    let now = crate::db::now();
    let new = NewCoupon {
        code,
        description: change.description,
        kind: change.kind,
        value: change.value,
        applies_to: change.applies_to,
        min_order_paise: change.min_order_paise,
        max_discount_paise: change.max_discount_paise,
        starts_at: change.starts_at,
        ends_at: change.ends_at,
        global_limit: change.global_limit,
        per_user_limit: change.per_user_limit,
        first_order_only: change.first_order_only,
        created_at: now,
        updated_at: now,
    };
    let mut conn = state.db.write().await?;
    let coupon = coupons::insert(&mut conn, &new).await.map_err(|e| {
        if crate::db::is_unique_violation(&e, "coupons", "code") {
            ApiError::new(ErrorCode::CouponCodeTaken, "a coupon with this code exists")
        } else {
            e.into()
        }
    })?;
    drop(conn);
    record(&state, &req, staff.id.0, "coupon.created", &coupon).await?;
    Ok(HttpResponse::Created().json(coupon))
}

/// Every coupon with its use count, newest first.
#[utoipa::path(
    tag = "admin",
    params(PageQuery),
    responses((status = 200, body = Page<Coupon>), (status = 403, description = "forbidden", body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/admin/coupons")]
pub async fn list_coupons(
    state: web::Data<AppState>,
    _staff: Authorized<StaffOnly>,
    page: web::Query<PageQuery>,
) -> Result<web::Json<Page<Coupon>>, ApiError> {
    let page = page.validate()?;
    let mut conn = state.db.read().await?;
    let (rows, total) = coupons::list(&mut conn, page.limit(), page.offset()).await?;
    Ok(web::Json(page.wrap(rows, total)))
}

/// Edits a coupon (not its code). Deactivate with `is_active: false`.
#[utoipa::path(
    tag = "admin",
    params(("id" = i64, Path, description = "Coupon id")),
    request_body = CouponBody,
    responses(
        (status = 200, body = Coupon),
        (status = 400, description = "validation_failed (e.g. global_limit below the uses so far)", body = ErrorBody),
        (status = 404, description = "not_found", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[put("/admin/coupons/{id}")]
pub async fn update_coupon(
    state: web::Data<AppState>,
    staff: Authorized<StaffOnly>,
    req: HttpRequest,
    id: web::Path<i64>,
    body: web::Json<CouponBody>,
) -> Result<web::Json<Coupon>, ApiError> {
    if body.code.is_some() {
        return Err(ApiError::field("code", "a coupon's code cannot change"));
    }
    let change = validate(&body)?;
    let mut conn = state.db.write().await?;
    let Some(coupon) = coupons::update(&mut conn, *id, &change).await? else {
        return match coupons::find(&mut conn, *id).await? {
            None => Err(ApiError::not_found("coupon")),
            Some(current) => Err(ApiError::field(
                "global_limit",
                format!("{} uses are already counted", current.used_count),
            )),
        };
    };
    drop(conn);
    record(&state, &req, staff.id.0, "coupon.updated", &coupon).await?;
    Ok(web::Json(coupon))
}
