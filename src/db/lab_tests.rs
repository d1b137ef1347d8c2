//! The lab test catalog: categories, tests and packages (a package is a test row with `is_package`
//! whose contents are `lab_test_package_items`), searched the same way on both backends.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::Serialize;
use utoipa::ToSchema;

use super::{
    Conn,
    catalog::Ref,
    schema::{lab_categories, lab_test_package_items, lab_tests},
};
use crate::on_conn;

#[diesel::declare_sql_function]
extern "SQL" {
    /// SQL `LOWER` (test names and codes are ASCII; patterns are lowered in Rust the same way).
    fn lower(text: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

#[derive(Debug, Clone, Serialize, ToSchema, Queryable, Selectable)]
#[diesel(table_name = lab_categories)]
pub struct LabCategory {
    pub id: i64,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub sort_order: i32,
    pub is_active: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema, Queryable, Selectable)]
#[diesel(table_name = lab_tests)]
pub struct LabTest {
    pub id: i64,
    pub category_id: i64,
    pub code: String,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub sample_type: String,
    /// Hours a sample survives between collection and the lab.
    pub stability_hours: i32,
    pub fasting_hours: i32,
    pub turnaround_hours: i32,
    pub price_paise: i64,
    pub mrp_paise: i64,
    pub is_package: bool,
    pub home_collection: bool,
    pub featured: bool,
    /// False once staff withdrew it (only the staff routes show such a test).
    pub is_active: bool,
    #[serde(skip)]
    pub updated_at: NaiveDateTime,
}

/// How a test search is ordered.
#[derive(Debug, Clone, Copy, Default)]
pub enum LabSort {
    #[default]
    Name,
    PriceAsc,
    PriceDesc,
}

/// Which tests a search lists: customers see only the active catalog.
#[derive(Debug, Clone, Copy, Default)]
pub enum Listing {
    #[default]
    Active,
    Withdrawn,
    All,
}

/// A validated test search; `pattern` is lowered with its wildcards escaped.
#[derive(Debug, Clone, Default)]
pub struct LabFilter {
    pub pattern: Option<String>,
    pub category: Option<Ref>,
    pub min_price_paise: Option<i64>,
    pub max_price_paise: Option<i64>,
    pub package: Option<bool>,
    pub home_collection: Option<bool>,
    pub sort: LabSort,
    pub listing: Listing,
}

/// One page of active tests matching `filter`, with the total.
pub async fn search(
    conn: &mut Conn,
    filter: &LabFilter,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<LabTest>, i64)> {
    macro_rules! filtered {
        ($query:expr) => {{
            let mut query = $query;
            match filter.listing {
                Listing::Active => query = query.filter(lab_tests::is_active.eq(true)),
                Listing::Withdrawn => query = query.filter(lab_tests::is_active.eq(false)),
                Listing::All => {}
            }
            if let Some(pattern) = &filter.pattern {
                query = query.filter(
                    lower(lab_tests::name)
                        .like(pattern.clone())
                        .escape('\\')
                        .or(lower(lab_tests::code).like(pattern.clone()).escape('\\')),
                );
            }
            match &filter.category {
                Some(Ref::Id(id)) => query = query.filter(lab_tests::category_id.eq(*id)),
                Some(Ref::Slug(slug)) => {
                    query = query.filter(
                        lab_tests::category_id.eq_any(
                            lab_categories::table
                                .filter(lab_categories::slug.eq(slug.clone()))
                                .select(lab_categories::id),
                        ),
                    )
                }
                None => {}
            }
            if let Some(min) = filter.min_price_paise {
                query = query.filter(lab_tests::price_paise.ge(min));
            }
            if let Some(max) = filter.max_price_paise {
                query = query.filter(lab_tests::price_paise.le(max));
            }
            if let Some(package) = filter.package {
                query = query.filter(lab_tests::is_package.eq(package));
            }
            if let Some(home) = filter.home_collection {
                query = query.filter(lab_tests::home_collection.eq(home));
            }
            query
        }};
    }
    on_conn!(conn, c => {
        let query = filtered!(lab_tests::table.select(LabTest::as_select()).into_boxed());
        let query = match filter.sort {
            LabSort::Name => query.order((lab_tests::name.asc(), lab_tests::id.asc())),
            LabSort::PriceAsc => query.order((lab_tests::price_paise.asc(), lab_tests::id.asc())),
            LabSort::PriceDesc => query.order((lab_tests::price_paise.desc(), lab_tests::id.asc())),
        };
        let rows = query.limit(limit).offset(offset).load(c).await?;
        let total: i64 = filtered!(lab_tests::table.count().into_boxed()).get_result(c).await?;
        Ok((rows, total))
    })
}

pub async fn find(conn: &mut Conn, id: i64) -> QueryResult<Option<LabTest>> {
    on_conn!(conn, c => lab_tests::table
        .find(id)
        .filter(lab_tests::is_active.eq(true))
        .select(LabTest::as_select())
        .first(c)
        .await
        .optional())
}

/// The active tests inside a package, by name.
pub async fn package_items(conn: &mut Conn, package: i64) -> QueryResult<Vec<LabTest>> {
    on_conn!(conn, c => lab_test_package_items::table
        .inner_join(lab_tests::table.on(lab_tests::id.eq(lab_test_package_items::test_id)))
        .filter(lab_test_package_items::package_id.eq(package))
        .filter(lab_tests::is_active.eq(true))
        .order(lab_tests::name.asc())
        .select(LabTest::as_select())
        .load(c)
        .await)
}

pub async fn categories(conn: &mut Conn) -> QueryResult<Vec<LabCategory>> {
    on_conn!(conn, c => lab_categories::table
        .filter(lab_categories::is_active.eq(true))
        .order((lab_categories::sort_order.asc(), lab_categories::name.asc()))
        .limit(500)
        .select(LabCategory::as_select())
        .load(c)
        .await)
}
