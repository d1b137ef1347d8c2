//! Staff writes to the lab catalog: categories, tests and packages. A package's sample type, stability
//! and fasting follow from its active tests and are recomputed in the same transaction as any
//! change of the package's contents or of one of its tests.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::{
    Conn,
    lab_tests::{LabCategory, LabTest},
    schema::{lab_categories, lab_test_package_items, lab_tests},
    sql_text,
};
use crate::on_conn;

/// Most tests one package may hold.
pub const MAX_PACKAGE_TESTS: usize = 50;

#[derive(Debug, Insertable)]
#[diesel(table_name = lab_categories)]
pub struct NewLabCategory {
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub sort_order: i32,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A partial category change; `None` leaves the column as it is.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = lab_categories)]
pub struct LabCategoryUpdate {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub sort_order: Option<i32>,
    pub is_active: Option<bool>,
    pub updated_at: Option<NaiveDateTime>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = lab_tests)]
pub struct NewLabTest {
    pub category_id: i64,
    pub code: String,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    pub sample_type: String,
    pub stability_hours: i32,
    pub fasting_hours: i32,
    pub turnaround_hours: i32,
    pub price_paise: i64,
    pub mrp_paise: i64,
    pub is_package: bool,
    pub home_collection: bool,
    pub featured: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A partial test change; `None` leaves the column as it is.
#[derive(Debug, Default, Clone, AsChangeset)]
#[diesel(table_name = lab_tests)]
pub struct LabTestUpdate {
    pub category_id: Option<i64>,
    pub code: Option<String>,
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub sample_type: Option<String>,
    pub stability_hours: Option<i32>,
    pub fasting_hours: Option<i32>,
    pub turnaround_hours: Option<i32>,
    pub price_paise: Option<i64>,
    pub mrp_paise: Option<i64>,
    pub home_collection: Option<bool>,
    pub featured: Option<bool>,
    pub is_active: Option<bool>,
    pub updated_at: Option<NaiveDateTime>,
}

/// What saving a test or package found.
#[derive(Debug)]
pub enum Saved {
    Done(LabTest),
    /// No test with that id (active or not).
    NotFound,
    /// These ids of the package's contents are not active single tests.
    BadContents(Vec<i64>),
    /// Contents were given for a single test.
    NotAPackage,
    /// The change would put the price above the MRP.
    PriceAboveMrp,
}

/// Recomputes the derived columns of the packages identified by `$1`: the package itself, or every
/// package holding that test. Packages with no active test keep what they had.
const DERIVE_PACKAGES_SQL: &str = "\
UPDATE lab_tests SET \
  sample_type = CASE WHEN (SELECT count(DISTINCT t.sample_type) FROM lab_test_package_items i \
      JOIN lab_tests t ON t.id = i.test_id WHERE i.package_id = lab_tests.id AND t.is_active) = 1 \
    THEN (SELECT min(t.sample_type) FROM lab_test_package_items i JOIN lab_tests t ON t.id = i.test_id \
      WHERE i.package_id = lab_tests.id AND t.is_active) ELSE 'mixed' END, \
  stability_hours = (SELECT min(t.stability_hours) FROM lab_test_package_items i \
      JOIN lab_tests t ON t.id = i.test_id WHERE i.package_id = lab_tests.id AND t.is_active), \
  fasting_hours = (SELECT max(t.fasting_hours) FROM lab_test_package_items i \
      JOIN lab_tests t ON t.id = i.test_id WHERE i.package_id = lab_tests.id AND t.is_active), \
  version = version + 1 \
WHERE is_package \
  AND (id = $1 OR id IN (SELECT package_id FROM lab_test_package_items WHERE test_id = $1)) \
  AND EXISTS (SELECT 1 FROM lab_test_package_items i JOIN lab_tests t ON t.id = i.test_id \
      WHERE i.package_id = lab_tests.id AND t.is_active)";

/// The ids among `$contents` that are not active single tests, inside a backend arm of `on_conn!`.
macro_rules! not_single_tests {
    ($c:expr, $contents:expr) => {{
        let found: Vec<i64> = lab_tests::table
            .filter(lab_tests::id.eq_any($contents))
            .filter(lab_tests::is_active.eq(true).and(lab_tests::is_package.eq(false)))
            .select(lab_tests::id)
            .load($c)
            .await?;
        $contents
            .iter()
            .copied()
            .filter(|id| !found.contains(id))
            .collect::<Vec<i64>>()
    }};
}

/// Writes a package's contents, inside a backend arm of `on_conn!`. One row at a time (at most
/// [`MAX_PACKAGE_TESTS`]): Diesel builds no multi-row insert of these rows for SQLite.
macro_rules! insert_contents {
    ($c:expr, $package:expr, $contents:expr, $at:expr) => {
        for member in $contents {
            diesel::insert_into(lab_test_package_items::table)
                .values((
                    lab_test_package_items::package_id.eq($package),
                    lab_test_package_items::test_id.eq(*member),
                    lab_test_package_items::created_at.eq($at),
                ))
                .execute($c)
                .await?;
        }
    };
}

/// Inserts a test, or a package with `contents` (active single tests, distinct), and derives the
/// package's columns from them.
pub async fn insert_test(conn: &mut Conn, new: &NewLabTest, contents: &[i64]) -> QueryResult<Saved> {
    let derive = sql_text(conn, DERIVE_PACKAGES_SQL);
    let derive = derive.as_ref();
    on_conn!(conn, c => c.transaction(async move |c| {
        if new.is_package {
            let missing = not_single_tests!(c, contents);
            if !missing.is_empty() {
                return Ok(Saved::BadContents(missing));
            }
        }
        let test = diesel::insert_into(lab_tests::table)
            .values(new)
            .returning(LabTest::as_returning())
            .get_result(c)
            .await?;
        if !new.is_package {
            return Ok(Saved::Done(test));
        }
        insert_contents!(c, test.id, contents, new.created_at);
        diesel::sql_query(derive).bind::<diesel::sql_types::BigInt, _>(test.id).execute(c).await?;
        let test = lab_tests::table.find(test.id).select(LabTest::as_select()).first(c).await?;
        Ok(Saved::Done(test))
    }).await)
}

/// Changes a test (active or not). `contents`, for a package only, replaces what it holds. Every package
/// the change concerns has its derived columns recomputed in the same transaction.
pub async fn update_test(
    conn: &mut Conn,
    id: i64,
    update: &LabTestUpdate,
    contents: Option<&[i64]>,
) -> QueryResult<Saved> {
    let derive = sql_text(conn, DERIVE_PACKAGES_SQL);
    let derive = derive.as_ref();
    on_conn!(conn, c => c.transaction(async move |c| {
        let Some(current) = lab_tests::table
            .find(id)
            .select(LabTest::as_select())
            .first(c)
            .await
            .optional()?
        else {
            return Ok(Saved::NotFound);
        };
        let price = update.price_paise.unwrap_or(current.price_paise);
        let mrp = update.mrp_paise.unwrap_or(current.mrp_paise);
        if price > mrp {
            return Ok(Saved::PriceAboveMrp);
        }
        if let Some(contents) = contents {
            if !current.is_package {
                return Ok(Saved::NotAPackage);
            }
            let missing = not_single_tests!(c, contents);
            if !missing.is_empty() {
                return Ok(Saved::BadContents(missing));
            }
            diesel::delete(lab_test_package_items::table.filter(lab_test_package_items::package_id.eq(id)))
                .execute(c)
                .await?;
            let now = update.updated_at.unwrap_or(current.updated_at);
            insert_contents!(c, id, contents, now);
        }
        diesel::update(lab_tests::table.find(id))
            .set((update, lab_tests::version.eq(lab_tests::version + 1)))
            .execute(c)
            .await?;
        diesel::sql_query(derive).bind::<diesel::sql_types::BigInt, _>(id).execute(c).await?;
        let test = lab_tests::table.find(id).select(LabTest::as_select()).first(c).await?;
        Ok(Saved::Done(test))
    }).await)
}

/// Any test by id, active or not (the staff view).
pub async fn find_any(conn: &mut Conn, id: i64) -> QueryResult<Option<LabTest>> {
    on_conn!(conn, c => lab_tests::table
        .find(id)
        .select(LabTest::as_select())
        .first(c)
        .await
        .optional())
}

/// The ids of a package's tests, active or not.
pub async fn content_ids(conn: &mut Conn, package: i64) -> QueryResult<Vec<i64>> {
    on_conn!(conn, c => lab_test_package_items::table
        .filter(lab_test_package_items::package_id.eq(package))
        .order(lab_test_package_items::test_id.asc())
        .select(lab_test_package_items::test_id)
        .load(c)
        .await)
}

pub async fn category_exists(conn: &mut Conn, id: i64) -> QueryResult<bool> {
    let found: Option<i64> = on_conn!(conn, c => lab_categories::table
        .find(id)
        .select(lab_categories::id)
        .first(c)
        .await
        .optional())?;
    Ok(found.is_some())
}

pub async fn insert_category(conn: &mut Conn, new: &NewLabCategory) -> QueryResult<LabCategory> {
    on_conn!(conn, c => diesel::insert_into(lab_categories::table)
        .values(new)
        .returning(LabCategory::as_returning())
        .get_result(c)
        .await)
}

pub async fn update_category(
    conn: &mut Conn,
    id: i64,
    update: &LabCategoryUpdate,
) -> QueryResult<Option<LabCategory>> {
    on_conn!(conn, c => diesel::update(lab_categories::table.find(id))
        .set(update)
        .returning(LabCategory::as_returning())
        .get_result(c)
        .await
        .optional())
}
