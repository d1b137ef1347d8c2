//! The audit log: who did what to which record, for sensitive actions.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::Serialize;

use super::{Conn, schema::audit_log};
use crate::on_conn;

#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = audit_log)]
pub struct AuditEntry {
    pub id: i64,
    pub actor_user_id: Option<i64>,
    pub action: String,
    pub subject_type: String,
    pub subject_id: Option<String>,
    pub details: String,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    pub created_at: NaiveDateTime,
}

/// A new audit record (details are set separately: `audit_log::details.eq(json)`).
#[derive(Debug, Insertable)]
#[diesel(table_name = audit_log)]
pub struct NewAuditEntry<'a> {
    pub actor_user_id: Option<i64>,
    pub action: &'a str,
    pub subject_type: &'a str,
    pub subject_id: Option<String>,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    pub created_at: NaiveDateTime,
}

pub async fn record(
    conn: &mut Conn,
    entry: &NewAuditEntry<'_>,
    details: &serde_json::Value,
) -> QueryResult<()> {
    let details = details.to_string();
    on_conn!(conn, c => diesel::insert_into(audit_log::table)
        .values((entry, audit_log::details.eq(&details)))
        .execute(c)
        .await)?;
    Ok(())
}

/// Newest first, optionally for one subject type.
pub async fn list(
    conn: &mut Conn,
    subject_type: Option<&str>,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<AuditEntry>, i64)> {
    let subject_type = subject_type.map(str::to_owned);
    on_conn!(conn, c => {
        let mut query = audit_log::table.select(AuditEntry::as_select()).into_boxed();
        let mut count = audit_log::table.count().into_boxed();
        if let Some(kind) = &subject_type {
            query = query.filter(audit_log::subject_type.eq(kind.clone()));
            count = count.filter(audit_log::subject_type.eq(kind.clone()));
        }
        let rows = query.order(audit_log::id.desc()).limit(limit).offset(offset).load(c).await?;
        Ok((rows, count.get_result(c).await?))
    })
}
