//! `/admin/medicines`, `/admin/medicine-categories`, `/admin/brands`: catalog management for staff and
//! administrators. Every successful write invalidates the catalog cache after it commits.

use actix_web::{HttpRequest, HttpResponse, delete, post, put, web};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{
    Problems, audit_entry,
    medicines::{BrandView, CategoryView, MedicineView},
};
use crate::{
    auth::{Authorized, extract::StaffOnly},
    db::{
        self,
        catalog::{
            self, BrandUpdate, CategoryUpdate, EditError, MAX_STOCK, MedicineEdit, MedicineUpdate, NewBrand,
            NewCategory, NewMedicine,
        },
    },
    error::{ApiError, ErrorBody, ErrorCode},
    state::AppState,
};

/// Highest price a medicine may have (₹10 lakh), so totals stay far from overflow.
pub const MAX_PRICE_PAISE: i64 = 100_000_000;
/// Highest `max_per_order`.
pub const MAX_PER_ORDER: i32 = 100;
const DOSAGE_FORMS: &[&str] = &[
    "tablet",
    "capsule",
    "syrup",
    "suspension",
    "injection",
    "cream",
    "gel",
    "ointment",
    "drops",
    "inhaler",
    "powder",
    "sachet",
    "other",
];

/// A URL-safe slug: lower-case ASCII letters and digits joined by single dashes.
pub fn slugify(name: &str) -> String {
    let mut slug = String::with_capacity(name.len());
    for ch in name.chars() {
        if ch.is_ascii_alphanumeric() {
            slug.push(ch.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    while slug.ends_with('-') {
        slug.pop();
    }
    if slug.is_empty() { "item".to_owned() } else { slug }
}

/// Unique-name clashes are 409 `conflict`; a CHECK that a concurrent change broke is too.
pub(super) fn write_error(error: diesel::result::Error, what: &str) -> ApiError {
    use diesel::result::{DatabaseErrorKind, Error};
    match &error {
        Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => ApiError::new(
            ErrorCode::Conflict,
            format!("a {what} with this name already exists"),
        ),
        Error::DatabaseError(
            DatabaseErrorKind::CheckViolation | DatabaseErrorKind::ForeignKeyViolation,
            _,
        ) => ApiError::new(
            ErrorCode::Conflict,
            format!("the {what} changed meanwhile; reload and retry"),
        ),
        _ => error.into(),
    }
}

pub(super) fn optional_text(
    p: &mut Problems,
    field: &str,
    raw: Option<&str>,
    max: usize,
) -> Option<Option<String>> {
    match raw.map(str::trim) {
        None | Some("") => Some(None),
        Some(text) => p.text(field, text, max).map(Some),
    }
}

pub(super) fn check_range<T: PartialOrd + std::fmt::Display + Copy>(
    p: &mut Problems,
    field: &str,
    value: T,
    min: T,
    max: T,
) {
    if value < min || value > max {
        p.add(field, format!("must be between {min} and {max}"));
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MedicineCreate {
    pub name: String,
    pub salt_composition: String,
    pub brand_id: Option<i64>,
    pub category_id: i64,
    pub description: Option<String>,
    /// tablet, capsule, syrup, suspension, injection, cream, gel, ointment, drops, inhaler, powder, sachet, other.
    pub dosage_form: String,
    pub pack_size: String,
    pub image_url: Option<String>,
    pub price_paise: i64,
    pub mrp_paise: i64,
    #[serde(default = "default_gst")]
    pub gst_rate_percent: i32,
    #[serde(default)]
    pub stock: i32,
    #[serde(default = "default_max_per_order")]
    pub max_per_order: i32,
    #[serde(default)]
    pub prescription_required: bool,
    #[serde(default)]
    pub featured: bool,
}

fn default_gst() -> i32 {
    12
}

fn default_max_per_order() -> i32 {
    10
}

/// A partial change; absent fields stay as they are. Stock changes either by `stock_delta` (a restock or a
/// write-off, safe beside concurrent checkouts) or to an absolute `stock` at a known `version`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MedicineChange {
    pub name: Option<String>,
    pub salt_composition: Option<String>,
    pub brand_id: Option<i64>,
    pub category_id: Option<i64>,
    pub description: Option<String>,
    pub dosage_form: Option<String>,
    pub pack_size: Option<String>,
    pub image_url: Option<String>,
    pub price_paise: Option<i64>,
    pub mrp_paise: Option<i64>,
    pub gst_rate_percent: Option<i32>,
    /// The new absolute stock count (a stock-take); needs `version`. Not with `stock_delta`.
    pub stock: Option<i32>,
    /// Units to add (negative: to remove), applied to the stock as it is at the moment of writing;
    /// 409 `conflict` if the result would fall below 0 or exceed the maximum stock.
    pub stock_delta: Option<i32>,
    /// The `version` of the medicine as last read: the change applies only if it is still current,
    /// 409 `conflict` otherwise. Required with `stock`; optional for every other change.
    pub version: Option<i64>,
    pub max_per_order: Option<i32>,
    pub prescription_required: Option<bool>,
    pub featured: Option<bool>,
    pub is_active: Option<bool>,
}

impl MedicineChange {
    fn validate(&self, p: &mut Problems) -> MedicineUpdate {
        let name = self.name.as_deref().and_then(|v| p.text("name", v, 200));
        let salt = self
            .salt_composition
            .as_deref()
            .and_then(|v| p.text("salt_composition", v, 500));
        let description = self
            .description
            .as_deref()
            .and_then(|v| optional_text(p, "description", Some(v), 2000));
        let image_url = self
            .image_url
            .as_deref()
            .and_then(|v| optional_text(p, "image_url", Some(v), 500));
        let pack_size = self.pack_size.as_deref().and_then(|v| p.text("pack_size", v, 60));
        if let Some(form) = &self.dosage_form
            && !DOSAGE_FORMS.contains(&form.as_str())
        {
            p.add(
                "dosage_form",
                format!("must be one of {}", DOSAGE_FORMS.join(", ")),
            );
        }
        if let Some(price) = self.price_paise {
            check_range(p, "price_paise", price, 0, MAX_PRICE_PAISE);
        }
        if let Some(mrp) = self.mrp_paise {
            check_range(p, "mrp_paise", mrp, 0, MAX_PRICE_PAISE);
        }
        if let Some(gst) = self.gst_rate_percent {
            check_range(p, "gst_rate_percent", gst, 0, 28);
        }
        if let Some(stock) = self.stock {
            check_range(p, "stock", stock, 0, MAX_STOCK);
        }
        if let Some(max) = self.max_per_order {
            check_range(p, "max_per_order", max, 1, MAX_PER_ORDER);
        }
        MedicineUpdate {
            name,
            salt_composition: salt,
            brand_id: self.brand_id.map(Some),
            category_id: self.category_id,
            description,
            dosage_form: self.dosage_form.clone(),
            pack_size,
            image_url,
            price_paise: self.price_paise,
            mrp_paise: self.mrp_paise,
            gst_rate_percent: self.gst_rate_percent,
            stock: self.stock,
            max_per_order: self.max_per_order,
            prescription_required: self.prescription_required,
            featured: self.featured,
            is_active: self.is_active,
            updated_at: Some(db::now()),
        }
    }

    /// [`validate`](Self::validate) plus the rules that keep an edit from overwriting concurrent stock
    /// moves: an absolute stock only at a known version, an adjustment non-zero and bounded.
    fn validate_edit(&self, p: &mut Problems) -> MedicineEdit {
        if let Some(delta) = self.stock_delta {
            if delta == 0 {
                p.add("stock_delta", "must not be 0");
            } else {
                check_range(p, "stock_delta", delta, -MAX_STOCK, MAX_STOCK);
            }
            if self.stock.is_some() {
                p.add("stock_delta", "send either stock or stock_delta, not both");
            }
        }
        if self.stock.is_some() && self.version.is_none() {
            p.add(
                "version",
                "required with an absolute stock (or send stock_delta to adjust)",
            );
        }
        MedicineEdit {
            fields: self.validate(p),
            stock_delta: self.stock_delta,
            version: self.version,
        }
    }
}

/// Checks that the referenced category and brand exist, as 400s naming the field.
async fn check_references(
    conn: &mut db::Conn,
    category_id: Option<i64>,
    brand_id: Option<i64>,
) -> Result<(), ApiError> {
    let mut p = Problems::default();
    if let Some(id) = category_id
        && catalog::find_category(conn, id).await?.is_none()
    {
        p.add("category_id", "no such category");
    }
    if let Some(id) = brand_id
        && catalog::find_brand(conn, id).await?.is_none()
    {
        p.add("brand_id", "no such brand");
    }
    p.finish()
}

#[utoipa::path(
    tag = "admin",
    request_body = MedicineCreate,
    responses(
        (status = 201, body = MedicineView),
        (status = 400, description = "validation_failed", body = ErrorBody),
        (status = 403, description = "forbidden", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/admin/medicines")]
pub async fn create_medicine(
    state: web::Data<AppState>,
    _staff: Authorized<StaffOnly>,
    body: web::Json<MedicineCreate>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut p = Problems::default();
    let change = MedicineChange {
        name: Some(body.name),
        salt_composition: Some(body.salt_composition),
        description: body.description,
        dosage_form: Some(body.dosage_form),
        pack_size: Some(body.pack_size),
        image_url: body.image_url,
        price_paise: Some(body.price_paise),
        mrp_paise: Some(body.mrp_paise),
        gst_rate_percent: Some(body.gst_rate_percent),
        stock: Some(body.stock),
        max_per_order: Some(body.max_per_order),
        ..MedicineChange::default()
    };
    let fields = change.validate(&mut p);
    if body.mrp_paise < body.price_paise {
        p.add("mrp_paise", "must not be below price_paise");
    }
    p.finish()?;
    let mut conn = state.db.write().await?;
    check_references(&mut conn, Some(body.category_id), body.brand_id).await?;
    let now = db::now();
    let name = fields.name.unwrap_or_default();
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let new = NewMedicine {
        slug: format!("{}-{}", slugify(&name), &suffix[..6]),
        name,
        salt_composition: fields.salt_composition.unwrap_or_default(),
        brand_id: body.brand_id,
        category_id: body.category_id,
        description: fields.description.flatten(),
        dosage_form: fields.dosage_form.unwrap_or_default(),
        pack_size: fields.pack_size.unwrap_or_default(),
        image_url: fields.image_url.flatten(),
        price_paise: body.price_paise,
        mrp_paise: body.mrp_paise,
        gst_rate_percent: body.gst_rate_percent,
        stock: body.stock,
        max_per_order: body.max_per_order,
        prescription_required: body.prescription_required,
        featured: body.featured,
        created_at: now,
        updated_at: now,
    };
    let medicine = catalog::insert_medicine(&mut conn, &new)
        .await
        .map_err(|e| write_error(e, "medicine"))?;
    drop(conn);
    state.catalog_cache.invalidate().await;
    Ok(HttpResponse::Created().json(MedicineView::from(medicine)))
}

#[utoipa::path(
    tag = "admin",
    request_body = MedicineChange,
    params(("id" = i64, Path, description = "Medicine id")),
    responses(
        (status = 200, body = MedicineView),
        (status = 400, description = "validation_failed (also: stock without version, or with stock_delta)", body = ErrorBody),
        (status = 404, description = "not_found", body = ErrorBody),
        (status = 409, description = "conflict: the version is stale, or stock_delta would leave 0..=1000000; \
            details carry the current stock and version", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[put("/admin/medicines/{id}")]
pub async fn update_medicine(
    state: web::Data<AppState>,
    staff: Authorized<StaffOnly>,
    req: HttpRequest,
    id: web::Path<i64>,
    body: web::Json<MedicineChange>,
) -> Result<web::Json<MedicineView>, ApiError> {
    let mut p = Problems::default();
    let edit = body.validate_edit(&mut p);
    p.finish()?;
    let update = &edit.fields;
    let mut conn = state.db.write().await?;
    let current = catalog::find(&mut conn, *id)
        .await?
        .ok_or_else(|| ApiError::not_found("medicine"))?;
    let price = update.price_paise.unwrap_or(current.price_paise);
    let mrp = update.mrp_paise.unwrap_or(current.mrp_paise);
    if mrp < price {
        return Err(ApiError::field("mrp_paise", "must not be below price_paise"));
    }
    check_references(&mut conn, update.category_id, body.brand_id).await?;
    let audit = audit_entry(
        &req,
        Some(staff.id.0),
        "medicine.updated",
        ("medicine", Some(id.to_string())),
    );
    let medicine = catalog::edit_medicine(&mut conn, *id, &edit, &audit)
        .await
        .map_err(edit_error)?;
    drop(conn);
    state.catalog_cache.invalidate().await;
    Ok(web::Json(medicine.into()))
}

/// A refused edit as the client sees it; a conflict carries the row's current stock and version so the
/// client can show them and retry.
fn edit_error(error: EditError) -> ApiError {
    match error {
        EditError::NotFound => ApiError::not_found("medicine"),
        EditError::Stale { stock, version } => ApiError::new(
            ErrorCode::Conflict,
            "the medicine changed meanwhile; reload and try again",
        )
        .with_details(serde_json::json!({ "stock": stock, "version": version })),
        EditError::StockOutOfRange { stock, delta } => ApiError::new(
            ErrorCode::Conflict,
            format!("a stock change of {delta} from {stock} would take it outside 0 to {MAX_STOCK}"),
        )
        .with_details(serde_json::json!({ "stock": stock, "stock_delta": delta })),
        EditError::Db(e) => write_error(e, "medicine"),
    }
}

#[utoipa::path(
    tag = "admin",
    params(("id" = i64, Path, description = "Medicine id")),
    responses((status = 204, description = "deactivated"), (status = 404, description = "not_found", body = ErrorBody)),
    security(("bearer" = []))
)]
#[delete("/admin/medicines/{id}")]
pub async fn deactivate_medicine(
    state: web::Data<AppState>,
    _staff: Authorized<StaffOnly>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let update = MedicineUpdate {
        is_active: Some(false),
        updated_at: Some(db::now()),
        ..MedicineUpdate::default()
    };
    let mut conn = state.db.write().await?;
    catalog::update_medicine(&mut conn, *id, &update)
        .await?
        .ok_or_else(|| ApiError::not_found("medicine"))?;
    drop(conn);
    state.catalog_cache.invalidate().await;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryRequest {
    pub name: String,
    pub description: Option<String>,
    pub image_url: Option<String>,
    #[serde(default)]
    pub sort_order: i32,
    pub is_active: Option<bool>,
}

impl CategoryRequest {
    fn validate(&self) -> Result<CategoryUpdate, ApiError> {
        let mut p = Problems::default();
        let name = p.text("name", &self.name, 80);
        let description = optional_text(&mut p, "description", self.description.as_deref(), 500);
        let image_url = optional_text(&mut p, "image_url", self.image_url.as_deref(), 500);
        check_range(&mut p, "sort_order", self.sort_order, -10_000, 10_000);
        p.finish()?;
        Ok(CategoryUpdate {
            name,
            description,
            image_url,
            sort_order: Some(self.sort_order),
            is_active: self.is_active,
            updated_at: Some(db::now()),
        })
    }
}

#[utoipa::path(
    tag = "admin",
    request_body = CategoryRequest,
    responses(
        (status = 201, body = CategoryView),
        (status = 400, description = "validation_failed", body = ErrorBody),
        (status = 409, description = "conflict: the name exists", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/admin/medicine-categories")]
pub async fn create_category(
    state: web::Data<AppState>,
    _staff: Authorized<StaffOnly>,
    body: web::Json<CategoryRequest>,
) -> Result<HttpResponse, ApiError> {
    let fields = body.validate()?;
    let name = fields.name.unwrap_or_default();
    let now = db::now();
    let new = NewCategory {
        slug: slugify(&name),
        name,
        description: fields.description.flatten(),
        image_url: fields.image_url.flatten(),
        sort_order: body.sort_order,
        created_at: now,
        updated_at: now,
    };
    let mut conn = state.db.write().await?;
    let category = catalog::insert_category(&mut conn, &new)
        .await
        .map_err(|e| write_error(e, "category"))?;
    drop(conn);
    state.catalog_cache.invalidate().await;
    Ok(HttpResponse::Created().json(CategoryView::from(category)))
}

#[utoipa::path(
    tag = "admin",
    request_body = CategoryRequest,
    params(("id" = i64, Path, description = "Category id")),
    responses((status = 200, body = CategoryView), (status = 404, description = "not_found", body = ErrorBody)),
    security(("bearer" = []))
)]
#[put("/admin/medicine-categories/{id}")]
pub async fn update_category(
    state: web::Data<AppState>,
    _staff: Authorized<StaffOnly>,
    id: web::Path<i64>,
    body: web::Json<CategoryRequest>,
) -> Result<web::Json<CategoryView>, ApiError> {
    let fields = body.validate()?;
    let mut conn = state.db.write().await?;
    let category = catalog::update_category(&mut conn, *id, &fields)
        .await
        .map_err(|e| write_error(e, "category"))?
        .ok_or_else(|| ApiError::not_found("category"))?;
    drop(conn);
    state.catalog_cache.invalidate().await;
    Ok(web::Json(category.into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BrandRequest {
    pub name: String,
    pub manufacturer: Option<String>,
    pub logo_url: Option<String>,
    pub is_active: Option<bool>,
}

impl BrandRequest {
    fn validate(&self) -> Result<BrandUpdate, ApiError> {
        let mut p = Problems::default();
        let name = p.text("name", &self.name, 80);
        let manufacturer = optional_text(&mut p, "manufacturer", self.manufacturer.as_deref(), 200);
        let logo_url = optional_text(&mut p, "logo_url", self.logo_url.as_deref(), 500);
        p.finish()?;
        Ok(BrandUpdate {
            name,
            manufacturer,
            logo_url,
            is_active: self.is_active,
            updated_at: Some(db::now()),
        })
    }
}

#[utoipa::path(
    tag = "admin",
    request_body = BrandRequest,
    responses(
        (status = 201, body = BrandView),
        (status = 400, description = "validation_failed", body = ErrorBody),
        (status = 409, description = "conflict: the name exists", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/admin/brands")]
pub async fn create_brand(
    state: web::Data<AppState>,
    _staff: Authorized<StaffOnly>,
    body: web::Json<BrandRequest>,
) -> Result<HttpResponse, ApiError> {
    let fields = body.validate()?;
    let name = fields.name.unwrap_or_default();
    let now = db::now();
    let new = NewBrand {
        slug: slugify(&name),
        name,
        manufacturer: fields.manufacturer.flatten(),
        logo_url: fields.logo_url.flatten(),
        created_at: now,
        updated_at: now,
    };
    let mut conn = state.db.write().await?;
    let brand = catalog::insert_brand(&mut conn, &new)
        .await
        .map_err(|e| write_error(e, "brand"))?;
    drop(conn);
    state.catalog_cache.invalidate().await;
    Ok(HttpResponse::Created().json(BrandView::from(brand)))
}

#[utoipa::path(
    tag = "admin",
    request_body = BrandRequest,
    params(("id" = i64, Path, description = "Brand id")),
    responses((status = 200, body = BrandView), (status = 404, description = "not_found", body = ErrorBody)),
    security(("bearer" = []))
)]
#[put("/admin/brands/{id}")]
pub async fn update_brand(
    state: web::Data<AppState>,
    _staff: Authorized<StaffOnly>,
    id: web::Path<i64>,
    body: web::Json<BrandRequest>,
) -> Result<web::Json<BrandView>, ApiError> {
    let fields = body.validate()?;
    let mut conn = state.db.write().await?;
    let brand = catalog::update_brand(&mut conn, *id, &fields)
        .await
        .map_err(|e| write_error(e, "brand"))?
        .ok_or_else(|| ApiError::not_found("brand"))?;
    drop(conn);
    state.catalog_cache.invalidate().await;
    Ok(web::Json(brand.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_url_safe() {
        assert_eq!(slugify("Pain Relief & Fever"), "pain-relief-fever");
        assert_eq!(slugify("  --  "), "item");
    }
}
