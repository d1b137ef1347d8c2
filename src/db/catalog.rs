//! Queries on the medicine catalog: medicines, their categories and brands.

use chrono::NaiveDateTime;
use diesel::{prelude::*, sql_types::Text};
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::{
    Conn,
    audit::NewAuditEntry,
    schema::{audit_log, brands, medicine_categories, medicines},
};
use crate::on_conn;

/// Highest stock count a medicine may have; a relative adjustment may not cross it either.
pub const MAX_STOCK: i32 = 1_000_000;

#[diesel::declare_sql_function]
extern "SQL" {
    /// SQL `LOWER`, on both backends (SQLite folds ASCII only; patterns are lowered in Rust the same way).
    fn lower(text: Text) -> Text;
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = medicines)]
pub struct Medicine {
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
    pub max_per_order: i32,
    pub prescription_required: bool,
    pub featured: bool,
    pub is_active: bool,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = medicines)]
pub struct NewMedicine {
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
    pub max_per_order: i32,
    pub prescription_required: bool,
    pub featured: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A partial medicine change; `None` leaves the column as it is.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = medicines)]
pub struct MedicineUpdate {
    pub name: Option<String>,
    pub salt_composition: Option<String>,
    pub brand_id: Option<Option<i64>>,
    pub category_id: Option<i64>,
    pub description: Option<Option<String>>,
    pub dosage_form: Option<String>,
    pub pack_size: Option<String>,
    pub image_url: Option<Option<String>>,
    pub price_paise: Option<i64>,
    pub mrp_paise: Option<i64>,
    pub gst_rate_percent: Option<i32>,
    pub stock: Option<i32>,
    pub max_per_order: Option<i32>,
    pub prescription_required: Option<bool>,
    pub featured: Option<bool>,
    pub is_active: Option<bool>,
    pub updated_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = medicine_categories)]
pub struct Category {
    pub id: i64,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub image_url: Option<String>,
    pub sort_order: i32,
    pub is_active: bool,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = medicine_categories)]
pub struct NewCategory {
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub image_url: Option<String>,
    pub sort_order: i32,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = medicine_categories)]
pub struct CategoryUpdate {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub image_url: Option<Option<String>>,
    pub sort_order: Option<i32>,
    pub is_active: Option<bool>,
    pub updated_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = brands)]
pub struct Brand {
    pub id: i64,
    pub name: String,
    pub slug: String,
    pub manufacturer: Option<String>,
    pub logo_url: Option<String>,
    pub is_active: bool,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = brands)]
pub struct NewBrand {
    pub name: String,
    pub slug: String,
    pub manufacturer: Option<String>,
    pub logo_url: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = brands)]
pub struct BrandUpdate {
    pub name: Option<String>,
    pub manufacturer: Option<Option<String>>,
    pub logo_url: Option<Option<String>>,
    pub is_active: Option<bool>,
    pub updated_at: Option<NaiveDateTime>,
}

/// A category or brand named by id or by slug.
#[derive(Debug, Clone)]
pub enum Ref {
    Id(i64),
    Slug(String),
}

/// How a medicine list is ordered; every order ends with the id so pages never overlap.
#[derive(Debug, Clone, Copy, Default)]
pub enum Sort {
    #[default]
    Name,
    PriceAsc,
    PriceDesc,
    Newest,
}

/// A validated medicine search. `pattern` is already lowered and has `%`, `_` and `\` escaped.
#[derive(Debug, Clone, Default)]
pub struct MedicineFilter {
    pub pattern: Option<String>,
    pub category: Option<Ref>,
    pub brand: Option<Ref>,
    pub min_price_paise: Option<i64>,
    pub max_price_paise: Option<i64>,
    pub prescription_required: Option<bool>,
    pub in_stock: Option<bool>,
    pub sort: Sort,
}

/// `LIKE` pattern for "contains `text`": lowered, with the wildcards and the escape character escaped.
pub fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for ch in text.to_lowercase().chars() {
        if matches!(ch, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(ch);
    }
    pattern.push('%');
    pattern
}

/// One page of active medicines matching `filter`, with the total count.
pub async fn search(
    conn: &mut Conn,
    filter: &MedicineFilter,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<Medicine>, i64)> {
    // Applies the same filters to the page query and to the count query.
    macro_rules! filtered {
        ($query:expr) => {{
            let mut query = $query.filter(medicines::is_active.eq(true));
            if let Some(pattern) = &filter.pattern {
                let brand_ids = brands::table
                    .filter(lower(brands::name).like(pattern.clone()).escape('\\'))
                    .select(brands::id.nullable());
                query = query.filter(
                    lower(medicines::name)
                        .like(pattern.clone())
                        .escape('\\')
                        .or(lower(medicines::salt_composition)
                            .like(pattern.clone())
                            .escape('\\'))
                        .or(medicines::brand_id.eq_any(brand_ids)),
                );
            }
            match &filter.category {
                Some(Ref::Id(id)) => query = query.filter(medicines::category_id.eq(*id)),
                Some(Ref::Slug(slug)) => {
                    query = query.filter(
                        medicines::category_id.eq_any(
                            medicine_categories::table
                                .filter(medicine_categories::slug.eq(slug.clone()))
                                .select(medicine_categories::id),
                        ),
                    )
                }
                None => {}
            }
            match &filter.brand {
                Some(Ref::Id(id)) => query = query.filter(medicines::brand_id.eq(*id)),
                Some(Ref::Slug(slug)) => {
                    query = query.filter(
                        medicines::brand_id.eq_any(
                            brands::table
                                .filter(brands::slug.eq(slug.clone()))
                                .select(brands::id.nullable()),
                        ),
                    )
                }
                None => {}
            }
            if let Some(min) = filter.min_price_paise {
                query = query.filter(medicines::price_paise.ge(min));
            }
            if let Some(max) = filter.max_price_paise {
                query = query.filter(medicines::price_paise.le(max));
            }
            if let Some(rx) = filter.prescription_required {
                query = query.filter(medicines::prescription_required.eq(rx));
            }
            match filter.in_stock {
                Some(true) => query = query.filter(medicines::stock.gt(0)),
                Some(false) => query = query.filter(medicines::stock.eq(0)),
                None => {}
            }
            query
        }};
    }
    on_conn!(conn, c => {
        let query = filtered!(medicines::table.select(Medicine::as_select()).into_boxed());
        let query = match filter.sort {
            Sort::Name => query.order((medicines::name.asc(), medicines::id.asc())),
            Sort::PriceAsc => query.order((medicines::price_paise.asc(), medicines::id.asc())),
            Sort::PriceDesc => query.order((medicines::price_paise.desc(), medicines::id.asc())),
            Sort::Newest => query.order((medicines::created_at.desc(), medicines::id.desc())),
        };
        let rows = query.limit(limit).offset(offset).load(c).await?;
        let total: i64 = filtered!(medicines::table.count().into_boxed()).get_result(c).await?;
        Ok((rows, total))
    })
}

pub async fn find(conn: &mut Conn, id: i64) -> QueryResult<Option<Medicine>> {
    on_conn!(conn, c => medicines::table.find(id).select(Medicine::as_select()).first(c).await.optional())
}

/// Active featured medicines, by name.
pub async fn featured(conn: &mut Conn, limit: i64) -> QueryResult<Vec<Medicine>> {
    on_conn!(conn, c => medicines::table
        .filter(medicines::featured.eq(true).and(medicines::is_active.eq(true)))
        .order((medicines::name.asc(), medicines::id.asc()))
        .limit(limit)
        .select(Medicine::as_select())
        .load(c)
        .await)
}

pub async fn insert_medicine(conn: &mut Conn, new: &NewMedicine) -> QueryResult<Medicine> {
    on_conn!(conn, c => diesel::insert_into(medicines::table)
        .values(new)
        .returning(Medicine::as_returning())
        .get_result(c)
        .await)
}

/// A staff edit of a medicine: plain columns plus the conditions that make it safe against the stock
/// moves checkout makes at the same time.
#[derive(Debug, Default)]
pub struct MedicineEdit {
    pub fields: MedicineUpdate,
    /// Units to add (negative: to remove), applied relative to the row as it is when written, and only
    /// if the result stays within `0..=MAX_STOCK`. Never together with `fields.stock`.
    pub stock_delta: Option<i32>,
    /// Apply only if the row is still at this version (required with an absolute `fields.stock`).
    pub version: Option<i64>,
}

/// Why a medicine edit did not happen; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("no such medicine")]
    NotFound,
    /// The row moved past the caller's version (as it is now: stock, version).
    #[error("the medicine changed meanwhile (now version {version}, stock {stock})")]
    Stale { stock: i32, version: i64 },
    /// The adjustment would take the stock below 0 or above `MAX_STOCK` (the stock as it is now).
    #[error("a stock change of {delta} from {stock} would take it outside 0..={MAX_STOCK}")]
    StockOutOfRange { stock: i32, delta: i32 },
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

/// Applies `edit` with one conditional UPDATE — the version when given, the stock bounds when adjusting
/// — bumping the version, and records `audit` in the same transaction. On a refusal the row is re-read
/// to say why.
pub async fn edit_medicine(
    conn: &mut Conn,
    id: i64,
    edit: &MedicineEdit,
    audit: &NewAuditEntry<'_>,
) -> Result<Medicine, EditError> {
    // An absent version matches any version; an absent delta keeps the bounds trivially true.
    let any_version = edit.version.is_none();
    let no_delta = edit.stock_delta.is_none();
    let delta = edit.stock_delta.unwrap_or(0);
    on_conn!(conn, c => c.transaction(async move |c| {
        let updated = diesel::update(medicines::table)
            .filter(medicines::id.eq(id))
            .filter(
                medicines::version
                    .eq(edit.version.unwrap_or(0))
                    .or(any_version.into_sql::<diesel::sql_types::Bool>()),
            )
            .filter(
                medicines::stock
                    .ge(delta.saturating_neg())
                    .and(medicines::stock.le(MAX_STOCK.saturating_sub(delta)))
                    .or(no_delta.into_sql::<diesel::sql_types::Bool>()),
            )
            .set((
                &edit.fields,
                edit.stock_delta.map(|d| medicines::stock.eq(medicines::stock + d)),
                medicines::version.eq(medicines::version + 1),
            ))
            .returning(Medicine::as_returning())
            .get_result(c)
            .await
            .optional()?;
        let Some(medicine) = updated else {
            let (stock, version) = medicines::table
                .find(id)
                .select((medicines::stock, medicines::version))
                .first::<(i32, i64)>(c)
                .await
                .optional()?
                .ok_or(EditError::NotFound)?;
            if edit.version.is_some_and(|v| v != version) {
                return Err(EditError::Stale { stock, version });
            }
            return Err(EditError::StockOutOfRange { stock, delta });
        };
        let details = serde_json::json!({
            "price_paise": medicine.price_paise,
            "mrp_paise": medicine.mrp_paise,
            "stock": medicine.stock,
            "stock_delta": edit.stock_delta,
            "stock_set": edit.fields.stock,
            "is_active": medicine.is_active,
            "version": medicine.version,
        })
        .to_string();
        diesel::insert_into(audit_log::table)
            .values((audit, audit_log::details.eq(details)))
            .execute(c)
            .await?;
        Ok(medicine)
    }).await)
}

/// Applies `update` and bumps the version; `None` when there is no such medicine.
pub async fn update_medicine(
    conn: &mut Conn,
    id: i64,
    update: &MedicineUpdate,
) -> QueryResult<Option<Medicine>> {
    on_conn!(conn, c => diesel::update(medicines::table.find(id))
        .set((update, medicines::version.eq(medicines::version + 1)))
        .returning(Medicine::as_returning())
        .get_result(c)
        .await
        .optional())
}

/// Active categories in display order.
pub async fn categories(conn: &mut Conn) -> QueryResult<Vec<Category>> {
    on_conn!(conn, c => medicine_categories::table
        .filter(medicine_categories::is_active.eq(true))
        .order((medicine_categories::sort_order.asc(), medicine_categories::name.asc()))
        .select(Category::as_select())
        .load(c)
        .await)
}

pub async fn find_category(conn: &mut Conn, id: i64) -> QueryResult<Option<Category>> {
    on_conn!(conn, c => medicine_categories::table
        .find(id)
        .select(Category::as_select())
        .first(c)
        .await
        .optional())
}

pub async fn insert_category(conn: &mut Conn, new: &NewCategory) -> QueryResult<Category> {
    on_conn!(conn, c => diesel::insert_into(medicine_categories::table)
        .values(new)
        .returning(Category::as_returning())
        .get_result(c)
        .await)
}

pub async fn update_category(
    conn: &mut Conn,
    id: i64,
    update: &CategoryUpdate,
) -> QueryResult<Option<Category>> {
    on_conn!(conn, c => diesel::update(medicine_categories::table.find(id))
        .set(update)
        .returning(Category::as_returning())
        .get_result(c)
        .await
        .optional())
}

/// Active brands by name.
pub async fn brands(conn: &mut Conn) -> QueryResult<Vec<Brand>> {
    on_conn!(conn, c => brands::table
        .filter(brands::is_active.eq(true))
        .order(brands::name.asc())
        .select(Brand::as_select())
        .load(c)
        .await)
}

pub async fn find_brand(conn: &mut Conn, id: i64) -> QueryResult<Option<Brand>> {
    on_conn!(conn, c => brands::table.find(id).select(Brand::as_select()).first(c).await.optional())
}

pub async fn insert_brand(conn: &mut Conn, new: &NewBrand) -> QueryResult<Brand> {
    on_conn!(conn, c => diesel::insert_into(brands::table)
        .values(new)
        .returning(Brand::as_returning())
        .get_result(c)
        .await)
}

pub async fn update_brand(conn: &mut Conn, id: i64, update: &BrandUpdate) -> QueryResult<Option<Brand>> {
    on_conn!(conn, c => diesel::update(brands::table.find(id))
        .set(update)
        .returning(Brand::as_returning())
        .get_result(c)
        .await
        .optional())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_patterns_escape_wildcards() {
        assert_eq!(contains_pattern("Para"), "%para%");
        assert_eq!(contains_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }
}
