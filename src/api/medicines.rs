//! `/medicines`: the public catalog — search, one medicine, featured, categories and brands. Answers are
//! cached per query in [`ResponseCache`](crate::cache::ResponseCache) and invalidated by every catalog
//! write; checkout never reads prices from the cache.

use actix_web::{HttpResponse, get, web};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{Page, PageQuery, Problems};
use crate::{
    db::catalog::{self, Brand, Category, Medicine, MedicineFilter, Ref, Sort},
    error::{ApiError, ErrorBody},
    state::AppState,
};

/// Longest search text.
pub const MAX_QUERY_CHARS: usize = 100;
/// Most featured medicines returned.
const FEATURED_LIMIT: i64 = 20;

#[derive(Debug, Serialize, ToSchema)]
pub struct MedicineView {
    pub id: i64,
    pub name: String,
    pub slug: String,
    pub salt_composition: String,
    pub brand_id: Option<i64>,
    pub category_id: i64,
    pub description: Option<String>,
    pub dosage_form: String,
    pub pack_size: String,
    pub image_url: Option<String>,
    pub price_paise: i64,
    pub mrp_paise: i64,
    pub gst_rate_percent: i32,
    pub stock: i32,
    pub in_stock: bool,
    pub max_per_order: i32,
    pub prescription_required: bool,
    pub featured: bool,
    pub is_active: bool,
    /// Changes with every write, stock moves by checkouts included; send it back with an absolute
    /// `stock` to `PUT /admin/medicines/{id}`.
    pub version: i64,
}

impl From<Medicine> for MedicineView {
    fn from(m: Medicine) -> Self {
        Self {
            id: m.id,
            name: m.name,
            slug: m.slug,
            salt_composition: m.salt_composition,
            brand_id: m.brand_id,
            category_id: m.category_id,
            description: m.description,
            dosage_form: m.dosage_form,
            pack_size: m.pack_size,
            image_url: m.image_url,
            price_paise: m.price_paise,
            mrp_paise: m.mrp_paise,
            gst_rate_percent: m.gst_rate_percent,
            stock: m.stock,
            in_stock: m.stock > 0,
            max_per_order: m.max_per_order,
            prescription_required: m.prescription_required,
            featured: m.featured,
            is_active: m.is_active,
            version: m.version,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryView {
    pub id: i64,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub image_url: Option<String>,
    pub sort_order: i32,
    pub is_active: bool,
}

impl From<Category> for CategoryView {
    fn from(c: Category) -> Self {
        Self {
            id: c.id,
            name: c.name,
            slug: c.slug,
            description: c.description,
            image_url: c.image_url,
            sort_order: c.sort_order,
            is_active: c.is_active,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BrandView {
    pub id: i64,
    pub name: String,
    pub slug: String,
    pub manufacturer: Option<String>,
    pub logo_url: Option<String>,
    pub is_active: bool,
}

impl From<Brand> for BrandView {
    fn from(b: Brand) -> Self {
        Self {
            id: b.id,
            name: b.name,
            slug: b.slug,
            manufacturer: b.manufacturer,
            logo_url: b.logo_url,
            is_active: b.is_active,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SortParam {
    Name,
    PriceAsc,
    PriceDesc,
    Newest,
}

/// Search and filters for `GET /medicines`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct MedicineSearch {
    /// Text found in the name, the salt composition or the brand name (case-insensitive, at most 100
    /// characters).
    pub q: Option<String>,
    /// Category id or slug.
    pub category: Option<String>,
    /// Brand id or slug.
    pub brand: Option<String>,
    /// Lowest price in paise.
    pub min_price: Option<i64>,
    /// Highest price in paise.
    pub max_price: Option<i64>,
    pub prescription_required: Option<bool>,
    /// `true`: only medicines in stock; `false`: only those out of stock.
    pub in_stock: Option<bool>,
    /// `name` (default), `price_asc`, `price_desc` or `newest`.
    pub sort: Option<SortParam>,
}

pub fn reference(raw: &str) -> Ref {
    match raw.trim().parse::<i64>() {
        Ok(id) => Ref::Id(id),
        Err(_) => Ref::Slug(raw.trim().to_lowercase()),
    }
}

impl MedicineSearch {
    fn validate(&self) -> Result<MedicineFilter, ApiError> {
        let mut p = Problems::default();
        let pattern = match self.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            Some(q) if q.chars().count() > MAX_QUERY_CHARS => {
                p.add("q", format!("must be at most {MAX_QUERY_CHARS} characters"));
                None
            }
            Some(q) if q.chars().any(char::is_control) => {
                p.add("q", "must not contain control characters");
                None
            }
            Some(q) => Some(catalog::contains_pattern(q)),
            None => None,
        };
        for (field, value) in [("category", &self.category), ("brand", &self.brand)] {
            if value
                .as_deref()
                .is_some_and(|v| v.trim().is_empty() || v.len() > 100)
            {
                p.add(field, "must be an id or a slug of at most 100 characters");
            }
        }
        for (field, value) in [("min_price", self.min_price), ("max_price", self.max_price)] {
            if value.is_some_and(|v| v < 0) {
                p.add(field, "must not be negative");
            }
        }
        if let (Some(min), Some(max)) = (self.min_price, self.max_price)
            && min > max
        {
            p.add("max_price", "must not be below min_price");
        }
        p.finish()?;
        Ok(MedicineFilter {
            pattern,
            category: self.category.as_deref().map(reference),
            brand: self.brand.as_deref().map(reference),
            min_price_paise: self.min_price,
            max_price_paise: self.max_price,
            prescription_required: self.prescription_required,
            in_stock: self.in_stock,
            sort: match self.sort {
                None | Some(SortParam::Name) => Sort::Name,
                Some(SortParam::PriceAsc) => Sort::PriceAsc,
                Some(SortParam::PriceDesc) => Sort::PriceDesc,
                Some(SortParam::Newest) => Sort::Newest,
            },
        })
    }
}

/// Serves `key` from the catalog cache, or builds it, stores it and serves it. The generation is read
/// *before* the database, so an answer built from rows older than a write is stored under a generation
/// that the write has already retired.
async fn cached<T: Serialize>(
    state: &AppState,
    key: String,
    build: impl Future<Output = Result<T, ApiError>>,
) -> Result<HttpResponse, ApiError> {
    let cache = &state.catalog_cache;
    let generation = cache.generation().await;
    if let Some(generation) = &generation
        && let Some(body) = cache.get(generation, &key)
    {
        return Ok(json_response(body, "hit"));
    }
    let value = build.await?;
    let body = Bytes::from(serde_json::to_vec(&value).map_err(ApiError::internal)?);
    if let Some(generation) = &generation {
        cache.put(generation, &key, body.clone());
    }
    Ok(json_response(body, "miss"))
}

fn json_response(body: Bytes, cache: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("x-cache", cache))
        .body(body)
}

#[utoipa::path(
    tag = "medicines",
    params(PageQuery, MedicineSearch),
    responses(
        (status = 200, body = Page<MedicineView>),
        (status = 400, description = "validation_failed", body = ErrorBody),
    )
)]
#[get("/medicines")]
pub async fn search(
    state: web::Data<AppState>,
    page: web::Query<PageQuery>,
    search: web::Query<MedicineSearch>,
) -> Result<HttpResponse, ApiError> {
    let page = page.validate()?;
    let filter = search.validate()?;
    let key = format!("search|{filter:?}|{}|{}", page.page, page.per_page);
    cached(&state, key, async {
        let mut conn = state.db.read().await?;
        let (rows, total) = catalog::search(&mut conn, &filter, page.limit(), page.offset()).await?;
        Ok(page.wrap(rows.into_iter().map(MedicineView::from).collect(), total))
    })
    .await
}

#[utoipa::path(tag = "medicines", responses((status = 200, body = Vec<MedicineView>)))]
#[get("/medicines/featured")]
pub async fn featured(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    cached(&state, "featured".to_owned(), async {
        let mut conn = state.db.read().await?;
        let rows = catalog::featured(&mut conn, FEATURED_LIMIT).await?;
        Ok(rows.into_iter().map(MedicineView::from).collect::<Vec<_>>())
    })
    .await
}

#[utoipa::path(tag = "medicines", responses((status = 200, body = Vec<CategoryView>)))]
#[get("/medicines/categories")]
pub async fn categories(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    cached(&state, "categories".to_owned(), async {
        let mut conn = state.db.read().await?;
        let rows = catalog::categories(&mut conn).await?;
        Ok(rows.into_iter().map(CategoryView::from).collect::<Vec<_>>())
    })
    .await
}

#[utoipa::path(tag = "medicines", responses((status = 200, body = Vec<BrandView>)))]
#[get("/medicines/brands")]
pub async fn brands(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    cached(&state, "brands".to_owned(), async {
        let mut conn = state.db.read().await?;
        let rows = catalog::brands(&mut conn).await?;
        Ok(rows.into_iter().map(BrandView::from).collect::<Vec<_>>())
    })
    .await
}

#[utoipa::path(
    tag = "medicines",
    params(("id" = i64, Path, description = "Medicine id")),
    responses((status = 200, body = MedicineView), (status = 404, description = "not_found", body = ErrorBody))
)]
#[get("/medicines/{id}")]
pub async fn get_medicine(state: web::Data<AppState>, id: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    cached(&state, format!("medicine|{id}"), async {
        let mut conn = state.db.read().await?;
        let medicine = catalog::find(&mut conn, id)
            .await?
            .filter(|m| m.is_active)
            .ok_or_else(|| ApiError::not_found("medicine"))?;
        Ok(MedicineView::from(medicine))
    })
    .await
}
