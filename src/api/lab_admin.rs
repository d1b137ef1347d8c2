//! `/admin/lab-tests`, `/admin/lab-categories`: lab catalog management for staff and administrators.
//! A package's sample type, stability and fasting are not set by hand: they follow from its tests (one
//! sample type or `mixed`, the shortest stability, the longest fasting); its turnaround is the lab's own. Every write is audited. Bookings
//! copy a test's name, price and stability, so an edit never rewrites a booked collection.

use actix_web::{HttpRequest, HttpResponse, delete, get, post, put, web};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::{
    Page, PageQuery, Problems, audit_entry,
    catalog_admin::{MAX_PRICE_PAISE, check_range, optional_text, slugify, write_error},
    lab_tests::LabTestView,
};
use crate::{
    auth::{Authorized, extract::StaffOnly},
    db::{
        self, audit,
        lab_admin::{
            self, LabCategoryUpdate, LabTestUpdate, MAX_PACKAGE_TESTS, NewLabCategory, NewLabTest, Saved,
        },
        lab_tests::{self, LabCategory, LabFilter, LabTest, Listing},
    },
    error::{ApiError, ErrorBody, ErrorCode},
    state::AppState,
};

/// Sample types a single test may take; a package is `mixed` when its tests differ.
const SAMPLE_TYPES: &[&str] = &["blood", "urine", "stool", "swab", "saliva", "sputum"];
/// Longest stability, fasting and turnaround a test may declare, in hours.
const MAX_STABILITY_HOURS: i32 = 720;
const MAX_FASTING_HOURS: i32 = 24;
const MAX_TURNAROUND_HOURS: i32 = 720;

/// A new test, or with `includes` a package of existing tests.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LabTestCreate {
    pub category_id: i64,
    /// Short unique code, e.g. `CBC` (letters, digits and dashes; stored upper-case).
    pub code: String,
    pub name: String,
    pub description: Option<String>,
    /// blood, urine, stool, swab, saliva or sputum; not given for a package.
    pub sample_type: Option<String>,
    /// Hours a sample survives between collection and the lab; not given for a package.
    pub stability_hours: Option<i32>,
    #[serde(default)]
    pub fasting_hours: i32,
    #[serde(default = "default_turnaround")]
    pub turnaround_hours: i32,
    pub price_paise: i64,
    pub mrp_paise: i64,
    #[serde(default = "default_true")]
    pub home_collection: bool,
    #[serde(default)]
    pub featured: bool,
    /// Makes this a package of these active single tests (2 to 50, distinct).
    pub includes: Option<Vec<i64>>,
}

fn default_turnaround() -> i32 {
    24
}

fn default_true() -> bool {
    true
}

/// A partial change; absent fields stay as they are. `includes` replaces a package's tests.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LabTestChange {
    pub category_id: Option<i64>,
    pub code: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub sample_type: Option<String>,
    pub stability_hours: Option<i32>,
    pub fasting_hours: Option<i32>,
    pub turnaround_hours: Option<i32>,
    pub price_paise: Option<i64>,
    pub mrp_paise: Option<i64>,
    pub home_collection: Option<bool>,
    pub featured: Option<bool>,
    pub is_active: Option<bool>,
    pub includes: Option<Vec<i64>>,
}

fn check_code(p: &mut Problems, raw: &str) -> Option<String> {
    let code = raw.trim().to_ascii_uppercase();
    let valid = (2..=30).contains(&code.len())
        && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !code.starts_with('-');
    if valid {
        Some(code)
    } else {
        p.add("code", "2 to 30 letters, digits or dashes");
        None
    }
}

fn check_contents(p: &mut Problems, ids: &[i64]) {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != ids.len() {
        p.add("includes", "must not repeat a test");
    } else if !(2..=MAX_PACKAGE_TESTS).contains(&ids.len()) {
        p.add(
            "includes",
            format!("a package holds 2 to {MAX_PACKAGE_TESTS} tests"),
        );
    }
}

impl LabTestChange {
    /// Checks every given field; for a package, the fields that follow from its tests are refused.
    fn validate(&self, p: &mut Problems, package: bool) -> LabTestUpdate {
        let code = self.code.as_deref().and_then(|c| check_code(p, c));
        let name = self.name.as_deref().and_then(|v| p.text("name", v, 200));
        let description = self
            .description
            .as_deref()
            .and_then(|v| optional_text(p, "description", Some(v), 2000));
        if package {
            for (field, given) in [
                ("sample_type", self.sample_type.is_some()),
                ("stability_hours", self.stability_hours.is_some()),
                ("fasting_hours", self.fasting_hours.is_some()),
            ] {
                if given {
                    p.add(field, "a package's value follows from its tests");
                }
            }
        }
        if let Some(kind) = &self.sample_type
            && !SAMPLE_TYPES.contains(&kind.as_str())
        {
            p.add(
                "sample_type",
                format!("must be one of {}", SAMPLE_TYPES.join(", ")),
            );
        }
        if let Some(hours) = self.stability_hours {
            check_range(p, "stability_hours", hours, 1, MAX_STABILITY_HOURS);
        }
        if let Some(hours) = self.fasting_hours {
            check_range(p, "fasting_hours", hours, 0, MAX_FASTING_HOURS);
        }
        if let Some(hours) = self.turnaround_hours {
            check_range(p, "turnaround_hours", hours, 1, MAX_TURNAROUND_HOURS);
        }
        if let Some(price) = self.price_paise {
            check_range(p, "price_paise", price, 0, MAX_PRICE_PAISE);
        }
        if let Some(mrp) = self.mrp_paise {
            check_range(p, "mrp_paise", mrp, 0, MAX_PRICE_PAISE);
        }
        if let Some(ids) = &self.includes {
            check_contents(p, ids);
        }
        LabTestUpdate {
            category_id: self.category_id,
            code,
            name,
            description,
            sample_type: self.sample_type.clone(),
            stability_hours: self.stability_hours,
            fasting_hours: self.fasting_hours,
            turnaround_hours: self.turnaround_hours,
            price_paise: self.price_paise,
            mrp_paise: self.mrp_paise,
            home_collection: self.home_collection,
            featured: self.featured,
            is_active: self.is_active,
            updated_at: Some(db::now()),
        }
    }
}

/// A code that is taken is 409 `conflict`; other write failures as for the rest of the catalog.
fn test_write_error(error: diesel::result::Error) -> ApiError {
    use diesel::result::{DatabaseErrorKind, Error};
    match &error {
        Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
            ApiError::new(ErrorCode::Conflict, "a lab test with this code already exists")
        }
        _ => write_error(error, "lab test"),
    }
}

/// A refused save as its API error; `Done` is the saved test.
fn saved(outcome: Saved) -> Result<LabTest, ApiError> {
    match outcome {
        Saved::Done(test) => Ok(test),
        Saved::NotFound => Err(ApiError::not_found("lab test")),
        Saved::BadContents(ids) => {
            let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
            Err(ApiError::field(
                "includes",
                format!("not active single tests: {}", ids.join(", ")),
            ))
        }
        Saved::NotAPackage => Err(ApiError::field("includes", "only a package holds tests")),
        Saved::PriceAboveMrp => Err(ApiError::field("mrp_paise", "must not be below price_paise")),
    }
}

/// The staff view of a test: a package lists its tests.
async fn view(conn: &mut db::Conn, test: LabTest) -> Result<LabTestView, ApiError> {
    let includes = if test.is_package {
        lab_tests::package_items(conn, test.id).await?
    } else {
        Vec::new()
    };
    Ok(LabTestView { test, includes })
}

async fn record(
    state: &AppState,
    req: &HttpRequest,
    staff: i64,
    action: &str,
    test: &LabTest,
) -> Result<(), ApiError> {
    let entry = audit_entry(req, Some(staff), action, ("lab_test", Some(test.id.to_string())));
    let details = serde_json::json!({"code": test.code, "name": test.name, "price_paise": test.price_paise,
        "is_package": test.is_package, "is_active": test.is_active});
    let mut conn = state.db.write().await?;
    audit::record(&mut conn, &entry, &details).await?;
    Ok(())
}

/// Adds a test, or a package of existing tests.
#[utoipa::path(
    tag = "admin",
    request_body = LabTestCreate,
    responses(
        (status = 201, body = LabTestView),
        (status = 400, description = "validation_failed", body = ErrorBody),
        (status = 403, description = "forbidden", body = ErrorBody),
        (status = 409, description = "conflict: the code exists", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/admin/lab-tests")]
pub async fn create_test(
    state: web::Data<AppState>,
    req: HttpRequest,
    staff: Authorized<StaffOnly>,
    body: web::Json<LabTestCreate>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let package = body.includes.is_some();
    let mut p = Problems::default();
    if !package {
        if body.sample_type.is_none() {
            p.add("sample_type", "required for a single test");
        }
        if body.stability_hours.is_none() {
            p.add("stability_hours", "required for a single test");
        }
    }
    let change = LabTestChange {
        code: Some(body.code.clone()),
        name: Some(body.name.clone()),
        description: body.description.clone(),
        sample_type: body.sample_type.clone(),
        stability_hours: body.stability_hours,
        fasting_hours: (!package).then_some(body.fasting_hours),
        turnaround_hours: Some(body.turnaround_hours),
        price_paise: Some(body.price_paise),
        mrp_paise: Some(body.mrp_paise),
        includes: body.includes.clone(),
        ..LabTestChange::default()
    };
    let fields = change.validate(&mut p, package);
    if body.mrp_paise < body.price_paise {
        p.add("mrp_paise", "must not be below price_paise");
    }
    p.finish()?;
    let mut conn = state.db.write().await?;
    if !lab_admin::category_exists(&mut conn, body.category_id).await? {
        return Err(ApiError::field("category_id", "no such lab category"));
    }
    let now = db::now();
    let name = fields.name.unwrap_or_default();
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let new = NewLabTest {
        category_id: body.category_id,
        code: fields.code.unwrap_or_default(),
        slug: format!("{}-{}", slugify(&name), &suffix[..6]),
        name,
        description: fields.description.flatten(),
        // A package's own values are placeholders until its tests are counted in the same transaction.
        sample_type: body.sample_type.unwrap_or_else(|| "mixed".to_owned()),
        stability_hours: body.stability_hours.unwrap_or(1),
        fasting_hours: body.fasting_hours,
        turnaround_hours: body.turnaround_hours,
        price_paise: body.price_paise,
        mrp_paise: body.mrp_paise,
        is_package: package,
        home_collection: body.home_collection,
        featured: body.featured,
        created_at: now,
        updated_at: now,
    };
    let contents = body.includes.unwrap_or_default();
    let outcome = lab_admin::insert_test(&mut conn, &new, &contents)
        .await
        .map_err(test_write_error)?;
    let test = saved(outcome)?;
    let view = view(&mut conn, test).await?;
    drop(conn);
    record(&state, &req, staff.id.0, "lab_test.create", &view.test).await?;
    Ok(HttpResponse::Created().json(view))
}

/// Changes a test or package; `includes` replaces a package's tests, `is_active` withdraws or restores it.
#[utoipa::path(
    tag = "admin",
    request_body = LabTestChange,
    params(("id" = i64, Path, description = "Lab test id")),
    responses(
        (status = 200, body = LabTestView),
        (status = 400, description = "validation_failed", body = ErrorBody),
        (status = 404, description = "not_found", body = ErrorBody),
        (status = 409, description = "conflict: the code exists", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[put("/admin/lab-tests/{id}")]
pub async fn update_test(
    state: web::Data<AppState>,
    req: HttpRequest,
    staff: Authorized<StaffOnly>,
    id: web::Path<i64>,
    body: web::Json<LabTestChange>,
) -> Result<web::Json<LabTestView>, ApiError> {
    let mut conn = state.db.write().await?;
    let current = lab_admin::find_any(&mut conn, *id)
        .await?
        .ok_or_else(|| ApiError::not_found("lab test"))?;
    let mut p = Problems::default();
    let update = body.validate(&mut p, current.is_package);
    p.finish()?;
    if let Some(category) = update.category_id
        && !lab_admin::category_exists(&mut conn, category).await?
    {
        return Err(ApiError::field("category_id", "no such lab category"));
    }
    let outcome = lab_admin::update_test(&mut conn, *id, &update, body.includes.as_deref())
        .await
        .map_err(test_write_error)?;
    let test = saved(outcome)?;
    let view = view(&mut conn, test).await?;
    drop(conn);
    record(&state, &req, staff.id.0, "lab_test.update", &view.test).await?;
    Ok(web::Json(view))
}

/// Withdraws a test from the catalog (it stays on earlier bookings; packages holding it are recomputed).
#[utoipa::path(
    tag = "admin",
    params(("id" = i64, Path, description = "Lab test id")),
    responses((status = 204, description = "withdrawn"), (status = 404, description = "not_found", body = ErrorBody)),
    security(("bearer" = []))
)]
#[delete("/admin/lab-tests/{id}")]
pub async fn withdraw_test(
    state: web::Data<AppState>,
    req: HttpRequest,
    staff: Authorized<StaffOnly>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let update = LabTestUpdate {
        is_active: Some(false),
        updated_at: Some(db::now()),
        ..LabTestUpdate::default()
    };
    let mut conn = state.db.write().await?;
    let outcome = lab_admin::update_test(&mut conn, *id, &update, None)
        .await
        .map_err(test_write_error)?;
    let test = saved(outcome)?;
    drop(conn);
    record(&state, &req, staff.id.0, "lab_test.withdraw", &test).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The staff list: every test and package, withdrawn ones too.
#[derive(Debug, Deserialize, IntoParams)]
pub struct StaffLabQuery {
    /// Only withdrawn (`false`) or only active (`true`) tests; both when absent.
    pub active: Option<bool>,
    pub page: Option<u32>,
    pub per_page: Option<u32>,
}

#[utoipa::path(
    tag = "admin",
    params(StaffLabQuery),
    responses((status = 200, body = Page<LabTest>), (status = 403, description = "forbidden", body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/admin/lab-tests")]
pub async fn list_tests(
    state: web::Data<AppState>,
    _staff: Authorized<StaffOnly>,
    query: web::Query<StaffLabQuery>,
) -> Result<web::Json<Page<LabTest>>, ApiError> {
    let page = PageQuery {
        page: query.page,
        per_page: query.per_page,
    }
    .validate()?;
    let filter = LabFilter {
        listing: match query.active {
            Some(true) => Listing::Active,
            Some(false) => Listing::Withdrawn,
            None => Listing::All,
        },
        ..LabFilter::default()
    };
    let mut conn = state.db.read().await?;
    let (rows, total) = lab_tests::search(&mut conn, &filter, page.limit(), page.offset()).await?;
    Ok(web::Json(page.wrap(rows, total)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LabCategoryRequest {
    pub name: String,
    pub description: Option<String>,
    #[serde(default)]
    pub sort_order: i32,
    pub is_active: Option<bool>,
}

impl LabCategoryRequest {
    fn validate(&self) -> Result<LabCategoryUpdate, ApiError> {
        let mut p = Problems::default();
        let name = p.text("name", &self.name, 80);
        let description = optional_text(&mut p, "description", self.description.as_deref(), 500);
        check_range(&mut p, "sort_order", self.sort_order, -10_000, 10_000);
        p.finish()?;
        Ok(LabCategoryUpdate {
            name,
            description,
            sort_order: Some(self.sort_order),
            is_active: self.is_active,
            updated_at: Some(db::now()),
        })
    }
}

#[utoipa::path(
    tag = "admin",
    request_body = LabCategoryRequest,
    responses(
        (status = 201, body = LabCategory),
        (status = 400, description = "validation_failed", body = ErrorBody),
        (status = 409, description = "conflict: the name exists", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/admin/lab-categories")]
pub async fn create_category(
    state: web::Data<AppState>,
    _staff: Authorized<StaffOnly>,
    body: web::Json<LabCategoryRequest>,
) -> Result<HttpResponse, ApiError> {
    let fields = body.validate()?;
    let name = fields.name.unwrap_or_default();
    let now = db::now();
    let new = NewLabCategory {
        slug: slugify(&name),
        name,
        description: fields.description.flatten(),
        sort_order: body.sort_order,
        created_at: now,
        updated_at: now,
    };
    let mut conn = state.db.write().await?;
    let category = lab_admin::insert_category(&mut conn, &new)
        .await
        .map_err(|e| write_error(e, "lab category"))?;
    Ok(HttpResponse::Created().json(category))
}

#[utoipa::path(
    tag = "admin",
    request_body = LabCategoryRequest,
    params(("id" = i64, Path, description = "Lab category id")),
    responses((status = 200, body = LabCategory), (status = 404, description = "not_found", body = ErrorBody)),
    security(("bearer" = []))
)]
#[put("/admin/lab-categories/{id}")]
pub async fn update_category(
    state: web::Data<AppState>,
    _staff: Authorized<StaffOnly>,
    id: web::Path<i64>,
    body: web::Json<LabCategoryRequest>,
) -> Result<web::Json<LabCategory>, ApiError> {
    let fields = body.validate()?;
    let mut conn = state.db.write().await?;
    let category = lab_admin::update_category(&mut conn, *id, &fields)
        .await
        .map_err(|e| write_error(e, "lab category"))?
        .ok_or_else(|| ApiError::not_found("lab category"))?;
    Ok(web::Json(category))
}
