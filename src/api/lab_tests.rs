//! `/lab-tests`: the lab test catalog for customers — search with filters, one test (a package with its
//! contents), categories and packages. Booking a home collection is a separate flow.

use actix_web::{get, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{Page, PageQuery, Problems, medicines::reference};
use crate::{
    db::{
        catalog::contains_pattern,
        lab_tests::{self, LabCategory, LabFilter, LabSort, LabTest, Listing},
    },
    error::{ApiError, ErrorBody},
    state::AppState,
};

/// Search and filters for `GET /lab-tests`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct LabSearch {
    /// Text in the test's name or code (case-insensitive, at most 100 characters).
    pub q: Option<String>,
    /// Category id or slug.
    pub category: Option<String>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    /// Only packages (`true`) or only single tests (`false`).
    pub package: Option<bool>,
    /// Only tests that can be collected at home.
    pub home_collection: Option<bool>,
    /// `name` (default), `price_asc` or `price_desc`.
    pub sort: Option<String>,
    pub page: Option<u32>,
    pub per_page: Option<u32>,
}

/// A test, and for a package the tests inside it.
#[derive(Debug, Serialize, ToSchema)]
pub struct LabTestView {
    #[serde(flatten)]
    pub test: LabTest,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub includes: Vec<LabTest>,
}

fn filter_of(search: &LabSearch) -> Result<LabFilter, ApiError> {
    let mut p = Problems::default();
    let pattern = search
        .q
        .as_deref()
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .and_then(|q| p.text("q", q, 100))
        .map(|q| contains_pattern(&q));
    if search.min_price.is_some_and(|m| m < 0) {
        p.add("min_price", "must not be negative");
    }
    if let (Some(min), Some(max)) = (search.min_price, search.max_price)
        && max < min
    {
        p.add("max_price", "must not be below min_price");
    }
    let sort = match search.sort.as_deref() {
        None | Some("name") => LabSort::Name,
        Some("price_asc") => LabSort::PriceAsc,
        Some("price_desc") => LabSort::PriceDesc,
        Some(_) => {
            p.add("sort", "name, price_asc or price_desc");
            LabSort::Name
        }
    };
    p.finish()?;
    Ok(LabFilter {
        pattern,
        category: search.category.as_deref().map(reference),
        min_price_paise: search.min_price,
        max_price_paise: search.max_price,
        package: search.package,
        home_collection: search.home_collection,
        sort,
        listing: Listing::Active,
    })
}

/// Searches the active lab tests and packages.
#[utoipa::path(
    tag = "lab tests",
    params(LabSearch),
    responses((status = 200, body = Page<LabTest>), (status = 400, description = "validation_failed", body = ErrorBody))
)]
#[get("/lab-tests")]
pub async fn search_tests(
    state: web::Data<AppState>,
    query: web::Query<LabSearch>,
) -> Result<web::Json<Page<LabTest>>, ApiError> {
    let page = PageQuery {
        page: query.page,
        per_page: query.per_page,
    }
    .validate()?;
    let filter = filter_of(&query)?;
    let mut conn = state.db.read().await?;
    let (rows, total) = lab_tests::search(&mut conn, &filter, page.limit(), page.offset()).await?;
    Ok(web::Json(page.wrap(rows, total)))
}

/// The lab test categories, in display order.
#[utoipa::path(tag = "lab tests", responses((status = 200, body = Vec<LabCategory>)))]
#[get("/lab-tests/categories")]
pub async fn categories(state: web::Data<AppState>) -> Result<web::Json<Vec<LabCategory>>, ApiError> {
    let mut conn = state.db.read().await?;
    Ok(web::Json(lab_tests::categories(&mut conn).await?))
}

/// The health packages (several tests for one price), each with its contents.
#[utoipa::path(tag = "lab tests", responses((status = 200, body = Vec<LabTestView>)))]
#[get("/lab-tests/packages")]
pub async fn packages(state: web::Data<AppState>) -> Result<web::Json<Vec<LabTestView>>, ApiError> {
    let filter = LabFilter {
        package: Some(true),
        sort: LabSort::PriceAsc,
        ..LabFilter::default()
    };
    let mut conn = state.db.read().await?;
    let (rows, _) = lab_tests::search(&mut conn, &filter, 100, 0).await?;
    let mut views = Vec::with_capacity(rows.len());
    for test in rows {
        let includes = lab_tests::package_items(&mut conn, test.id).await?;
        views.push(LabTestView { test, includes });
    }
    Ok(web::Json(views))
}

/// One active test; a package lists the tests it includes.
#[utoipa::path(
    tag = "lab tests",
    params(("id" = i64, Path, description = "Lab test id")),
    responses((status = 200, body = LabTestView), (status = 404, description = "not_found", body = ErrorBody))
)]
#[get("/lab-tests/{id}")]
pub async fn get_test(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<web::Json<LabTestView>, ApiError> {
    let mut conn = state.db.read().await?;
    let test = lab_tests::find(&mut conn, *id)
        .await?
        .ok_or_else(|| ApiError::not_found("lab test"))?;
    let includes = if test.is_package {
        lab_tests::package_items(&mut conn, test.id).await?
    } else {
        Vec::new()
    };
    Ok(web::Json(LabTestView { test, includes }))
}
