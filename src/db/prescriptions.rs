//! Prescriptions: uploaded documents of a customer and the staff review that approves or rejects them
//! (one conditional write from `pending`, audited in the same transaction).

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde::Serialize;
use utoipa::ToSchema;

use super::{
    Conn,
    audit::NewAuditEntry,
    schema::{audit_log, prescriptions},
};
use crate::on_conn;

#[derive(Debug, Clone, Serialize, ToSchema, Queryable, Selectable)]
#[diesel(table_name = prescriptions)]
pub struct Prescription {
    pub id: i64,
    pub user_id: i64,
    #[serde(skip)]
    pub file_path: String,
    pub original_filename: Option<String>,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub patient_name: Option<String>,
    pub doctor_name: Option<String>,
    pub status: String,
    pub reviewed_by: Option<i64>,
    pub reviewed_at: Option<NaiveDateTime>,
    pub review_notes: Option<String>,
    pub valid_until: Option<NaiveDate>,
    pub version: i64,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = prescriptions)]
pub struct NewPrescription<'a> {
    pub user_id: i64,
    pub file_path: &'a str,
    pub original_filename: Option<&'a str>,
    pub content_type: &'a str,
    pub size_bytes: i64,
    pub sha256: &'a str,
    pub patient_name: Option<&'a str>,
    pub doctor_name: Option<&'a str>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub async fn insert(conn: &mut Conn, new: &NewPrescription<'_>) -> QueryResult<Prescription> {
    on_conn!(conn, c => diesel::insert_into(prescriptions::table)
        .values(new)
        .returning(Prescription::as_returning())
        .get_result(c)
        .await)
}

pub async fn find(conn: &mut Conn, id: i64) -> QueryResult<Option<Prescription>> {
    on_conn!(conn, c => prescriptions::table
        .find(id)
        .select(Prescription::as_select())
        .first(c)
        .await)
    .optional()
}

/// A page of prescriptions, newest first: one customer's (`user`), or everyone's with `status`.
pub async fn list(
    conn: &mut Conn,
    user: Option<i64>,
    status: Option<&str>,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<Prescription>, i64)> {
    macro_rules! filtered {
        ($query:expr) => {{
            let mut query = $query;
            if let Some(user) = user {
                query = query.filter(prescriptions::user_id.eq(user));
            }
            if let Some(status) = status {
                query = query.filter(prescriptions::status.eq(status.to_owned()));
            }
            query
        }};
    }
    on_conn!(conn, c => {
        let rows = filtered!(prescriptions::table.select(Prescription::as_select()).into_boxed())
            .order(prescriptions::id.desc())
            .limit(limit)
            .offset(offset)
            .load(c)
            .await?;
        let total: i64 = filtered!(prescriptions::table.count().into_boxed()).get_result(c).await?;
        Ok((rows, total))
    })
}

/// A review decision.
#[derive(Debug)]
pub struct Review<'a> {
    pub status: &'a str,
    pub notes: Option<&'a str>,
    pub valid_until: Option<NaiveDate>,
    pub reviewer: i64,
}

/// Decides a pending prescription; `Ok(None)` when it is not pending any more (someone decided first).
pub async fn review(
    conn: &mut Conn,
    id: i64,
    review: &Review<'_>,
    audit: NewAuditEntry<'_>,
) -> QueryResult<Option<Prescription>> {
    let now = super::now();
    let details = serde_json::json!({"status": review.status, "notes": review.notes}).to_string();
    on_conn!(conn, c => c.transaction(async move |c| {
        let decided = diesel::update(
            prescriptions::table.find(id).filter(prescriptions::status.eq("pending")),
        )
        .set((
            prescriptions::status.eq(review.status),
            prescriptions::review_notes.eq(review.notes),
            prescriptions::valid_until.eq(review.valid_until),
            prescriptions::reviewed_by.eq(review.reviewer),
            prescriptions::reviewed_at.eq(now),
            prescriptions::version.eq(prescriptions::version + 1),
            prescriptions::updated_at.eq(now),
        ))
        .returning(Prescription::as_returning())
        .get_result(c)
        .await
        .optional()?;
        if decided.is_some() {
            diesel::insert_into(audit_log::table)
                .values((&audit, audit_log::details.eq(&details)))
                .execute(c)
                .await?;
        }
        Ok(decided)
    }).await)
}
