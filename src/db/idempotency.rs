//! Stored responses for `Idempotency-Key`: claimed by an insert whose primary key decides the winner.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::{Conn, schema::idempotency_keys};
use crate::on_conn;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = idempotency_keys)]
pub struct IdempotencyRecord {
    pub scope: String,
    pub idem_key: String,
    pub request_hash: String,
    pub state: String,
    pub response_status: Option<i32>,
    pub response_content_type: Option<String>,
    pub response_body: Option<Vec<u8>>,
    pub created_at: NaiveDateTime,
}

/// What the claim found.
pub enum Claim {
    /// This request owns the key now and must run.
    Acquired,
    /// Someone used the key before (possibly still running).
    Existing(IdempotencyRecord),
}

/// Claims `(scope, key)` for a request with `request_hash`. A record older than `expired_before` is
/// treated as absent and replaced.
pub async fn claim(
    conn: &mut Conn,
    scope: &str,
    key: &str,
    request_hash: &str,
    now: NaiveDateTime,
    expired_before: NaiveDateTime,
) -> QueryResult<Claim> {
    on_conn!(conn, c => {
        diesel::delete(idempotency_keys::table.filter(
            idempotency_keys::scope.eq(scope)
                .and(idempotency_keys::idem_key.eq(key))
                .and(idempotency_keys::created_at.lt(expired_before)),
        ))
        .execute(c)
        .await?;
        let inserted = diesel::insert_into(idempotency_keys::table)
            .values((
                idempotency_keys::scope.eq(scope),
                idempotency_keys::idem_key.eq(key),
                idempotency_keys::request_hash.eq(request_hash),
                idempotency_keys::state.eq("in_flight"),
                idempotency_keys::created_at.eq(now),
            ))
            .on_conflict_do_nothing()
            .execute(c)
            .await?;
        if inserted == 1 {
            return Ok(Claim::Acquired);
        }
        let existing = idempotency_keys::table
            .find((scope, key))
            .select(IdempotencyRecord::as_select())
            .first(c)
            .await?;
        Ok(Claim::Existing(existing))
    })
}

/// Stores the response of a finished request so retries replay it.
pub async fn complete(
    conn: &mut Conn,
    scope: &str,
    key: &str,
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
) -> QueryResult<()> {
    on_conn!(conn, c => diesel::update(idempotency_keys::table.find((scope, key)))
        .set((
            idempotency_keys::state.eq("complete"),
            idempotency_keys::response_status.eq(i32::from(status)),
            idempotency_keys::response_content_type.eq(content_type),
            idempotency_keys::response_body.eq(body),
        ))
        .execute(c)
        .await)?;
    Ok(())
}

/// Forgets a claim whose request failed on the server side, so a retry runs again.
pub async fn release(conn: &mut Conn, scope: &str, key: &str) -> QueryResult<()> {
    on_conn!(conn, c => diesel::delete(idempotency_keys::table.find((scope, key))).execute(c).await)?;
    Ok(())
}

/// Deletes records older than `before`; returns how many.
pub async fn purge(conn: &mut Conn, before: NaiveDateTime) -> QueryResult<usize> {
    on_conn!(conn, c => diesel::delete(idempotency_keys::table.filter(idempotency_keys::created_at.lt(before)))
        .execute(c)
        .await)
}
