//! Hospitals and their live bed counts. A bed update is one conditional write: the new counts must fit
//! the totals (and match the caller's version when given), checked by the UPDATE's own WHERE clause.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::{
    Conn,
    audit::NewAuditEntry,
    schema::{audit_log, hospitals},
};
use crate::{domain::BoundingBox, on_conn};

/// Most hospitals read from one bounding box before the exact distance filter.
pub const MAX_CANDIDATES: i64 = 2_000;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = hospitals)]
pub struct Hospital {
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
    pub specialties: String,
    pub beds_general_total: i32,
    pub beds_general_available: i32,
    pub beds_icu_total: i32,
    pub beds_icu_available: i32,
    pub beds_emergency_total: i32,
    pub beds_emergency_available: i32,
    pub partner_user_id: Option<i64>,
    pub is_active: bool,
    pub version: i64,
    pub updated_at: NaiveDateTime,
}

/// New available-bed counts; `None` leaves a count as it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct BedUpdate {
    pub general_available: Option<i32>,
    pub icu_available: Option<i32>,
    pub emergency_available: Option<i32>,
    /// Apply only if the row is still at this version.
    pub version: Option<i64>,
}

/// Why a bed update did not happen.
#[derive(Debug, thiserror::Error)]
pub enum BedError {
    #[error("no such hospital")]
    NotFound,
    /// A count is above its total (field name, total).
    #[error("{0} is above the total of {1}")]
    AboveTotal(&'static str, i32),
    #[error("the hospital changed meanwhile")]
    Conflict,
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

pub async fn find(conn: &mut Conn, id: i64) -> QueryResult<Option<Hospital>> {
    on_conn!(conn, c => hospitals::table
        .filter(hospitals::id.eq(id).and(hospitals::is_active.eq(true)))
        .select(Hospital::as_select())
        .first(c)
        .await
        .optional())
}

/// Active hospitals inside `bbox`, at most [`MAX_CANDIDATES`].
pub async fn in_box(conn: &mut Conn, bbox: BoundingBox) -> QueryResult<Vec<Hospital>> {
    on_conn!(conn, c => hospitals::table
        .filter(hospitals::is_active.eq(true))
        .filter(hospitals::lat.between(bbox.min_lat, bbox.max_lat))
        .filter(hospitals::lng.between(bbox.min_lng, bbox.max_lng))
        .order(hospitals::id.asc())
        .limit(MAX_CANDIDATES)
        .select(Hospital::as_select())
        .load(c)
        .await)
}

/// One page of active hospitals by name, with the total count.
pub async fn page(conn: &mut Conn, limit: i64, offset: i64) -> QueryResult<(Vec<Hospital>, i64)> {
    on_conn!(conn, c => {
        let rows = hospitals::table
            .filter(hospitals::is_active.eq(true))
            .order((hospitals::name.asc(), hospitals::id.asc()))
            .limit(limit)
            .offset(offset)
            .select(Hospital::as_select())
            .load(c)
            .await?;
        let total = hospitals::table.filter(hospitals::is_active.eq(true)).count().get_result(c).await?;
        Ok((rows, total))
    })
}

/// Sets available beds with one conditional UPDATE (counts within totals, version when given) and
/// records the audit entry in the same transaction. On a refusal the row is re-read to say why.
pub async fn update_beds(
    conn: &mut Conn,
    id: i64,
    update: BedUpdate,
    audit: &NewAuditEntry<'_>,
) -> Result<Hospital, BedError> {
    let now = super::now();
    on_conn!(conn, c => c.transaction(async move |c| {
        // Absent counts compare against 0 (always true); an absent version matches any version.
        let any_version = update.version.is_none();
        let updated = diesel::update(hospitals::table)
            .filter(hospitals::id.eq(id).and(hospitals::is_active.eq(true)))
            .filter(hospitals::beds_general_total.ge(update.general_available.unwrap_or(0)))
            .filter(hospitals::beds_icu_total.ge(update.icu_available.unwrap_or(0)))
            .filter(hospitals::beds_emergency_total.ge(update.emergency_available.unwrap_or(0)))
            .filter(
                hospitals::version
                    .eq(update.version.unwrap_or(0))
                    .or(any_version.into_sql::<diesel::sql_types::Bool>()),
            )
            .set((
                update.general_available.map(|n| hospitals::beds_general_available.eq(n)),
                update.icu_available.map(|n| hospitals::beds_icu_available.eq(n)),
                update.emergency_available.map(|n| hospitals::beds_emergency_available.eq(n)),
                hospitals::version.eq(hospitals::version + 1),
                hospitals::updated_at.eq(now),
            ))
            .returning(Hospital::as_returning())
            .get_result(c)
            .await
            .optional()?;
        let Some(hospital) = updated else {
            let row = hospitals::table
                .filter(hospitals::id.eq(id).and(hospitals::is_active.eq(true)))
                .select(Hospital::as_select())
                .first(c)
                .await
                .optional()?
                .ok_or(BedError::NotFound)?;
            let checks = [
                ("general_available", update.general_available, row.beds_general_total),
                ("icu_available", update.icu_available, row.beds_icu_total),
                ("emergency_available", update.emergency_available, row.beds_emergency_total),
            ];
            for (field, wanted, total) in checks {
                if wanted.is_some_and(|n| n > total) {
                    return Err(BedError::AboveTotal(field, total));
                }
            }
            return Err(BedError::Conflict);
        };
        let details = serde_json::json!({
            "general_available": hospital.beds_general_available,
            "icu_available": hospital.beds_icu_available,
            "emergency_available": hospital.beds_emergency_available,
            "version": hospital.version,
        })
        .to_string();
        diesel::insert_into(audit_log::table)
            .values((audit, audit_log::details.eq(details)))
            .execute(c)
            .await?;
        Ok(hospital)
    }).await)
}
