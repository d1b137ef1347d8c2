//! Stored responses for `Idempotency-Key`: claimed by an insert whose primary key decides the winner,
//! held by a short renewed lease while the request runs, taken over by a retry once that lease lapses.

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
    pub lease_until: Option<NaiveDateTime>,
}

/// What the claim found.
pub enum Claim {
    /// This request holds the key's lease now and must run.
    Acquired,
    /// Someone used the key before: its stored response, or a run whose lease has not lapsed.
    Existing(IdempotencyRecord),
}

/// One request's hold on `(scope, key)`: `token` names the run, so that a run whose lease was taken
/// over after it lapsed can no longer store its response over the new run's or let go of its key.
#[derive(Debug, Clone, Copy)]
pub struct Lease<'a> {
    pub scope: &'a str,
    pub key: &'a str,
    pub token: &'a str,
}

/// Claims `(scope, key)` for a request with `request_hash` until `lease_until`. A stored response
/// older than `expired_before` is treated as absent and replaced; an in-flight claim of the same
/// request whose lease lapsed before `now` (its node died, or lost the database) is taken over.
pub async fn claim(
    conn: &mut Conn,
    lease: Lease<'_>,
    request_hash: &str,
    now: NaiveDateTime,
    lease_until: NaiveDateTime,
    expired_before: NaiveDateTime,
) -> QueryResult<Claim> {
    let Lease { scope, key, token } = lease;
    let this = idempotency_keys::scope
        .eq(scope)
        .and(idempotency_keys::idem_key.eq(key));
    on_conn!(conn, c => {
        diesel::delete(idempotency_keys::table.filter(
            this.and(idempotency_keys::created_at.lt(expired_before)),
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
                idempotency_keys::lease_token.eq(token),
                idempotency_keys::lease_until.eq(lease_until),
            ))
            .on_conflict_do_nothing()
            .execute(c)
            .await?;
        if inserted == 1 {
            return Ok(Claim::Acquired);
        }
        // One conditional write decides between two retries racing for a lapsed lease.
        let taken_over = diesel::update(idempotency_keys::table.filter(
            this.and(idempotency_keys::state.eq("in_flight"))
                .and(idempotency_keys::request_hash.eq(request_hash))
                .and(
                    idempotency_keys::lease_until
                        .is_null()
                        .or(idempotency_keys::lease_until.lt(now)),
                ),
        ))
        .set((
            idempotency_keys::lease_token.eq(token),
            idempotency_keys::lease_until.eq(lease_until),
        ))
        .execute(c)
        .await?;
        if taken_over == 1 {
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

/// Extends a running request's lease to `until`; false when the lease is no longer this run's.
pub async fn renew(conn: &mut Conn, lease: Lease<'_>, until: NaiveDateTime) -> QueryResult<bool> {
    let updated = on_conn!(conn, c => diesel::update(held(lease))
        .set(idempotency_keys::lease_until.eq(until))
        .execute(c)
        .await)?;
    Ok(updated == 1)
}

/// Stores the response of a finished request so retries replay it; false (and nothing written) when
/// the lease had lapsed and another run took the key over.
pub async fn complete(
    conn: &mut Conn,
    lease: Lease<'_>,
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
) -> QueryResult<bool> {
    let updated = on_conn!(conn, c => diesel::update(held(lease))
        .set((
            idempotency_keys::state.eq("complete"),
            idempotency_keys::response_status.eq(i32::from(status)),
            idempotency_keys::response_content_type.eq(content_type),
            idempotency_keys::response_body.eq(body),
            idempotency_keys::lease_token.eq(None::<String>),
            idempotency_keys::lease_until.eq(None::<NaiveDateTime>),
        ))
        .execute(c)
        .await)?;
    Ok(updated == 1)
}

/// Lets go of a claim whose request failed on the server side, so a retry runs again at once.
pub async fn release(conn: &mut Conn, lease: Lease<'_>) -> QueryResult<()> {
    on_conn!(conn, c => diesel::delete(held(lease)).execute(c).await)?;
    Ok(())
}

/// `(scope, key)` of a run, and that the run still holds it.
type Held<'a> = diesel::dsl::And<
    diesel::dsl::And<
        diesel::dsl::And<
            diesel::dsl::Eq<idempotency_keys::scope, &'a str>,
            diesel::dsl::Eq<idempotency_keys::idem_key, &'a str>,
        >,
        diesel::dsl::Eq<idempotency_keys::state, &'static str>,
    >,
    diesel::dsl::Eq<idempotency_keys::lease_token, &'a str>,
>;

/// The row of `lease` while that run still holds it.
fn held(lease: Lease<'_>) -> diesel::dsl::Filter<idempotency_keys::table, Held<'_>> {
    idempotency_keys::table.filter(
        idempotency_keys::scope
            .eq(lease.scope)
            .and(idempotency_keys::idem_key.eq(lease.key))
            .and(idempotency_keys::state.eq("in_flight"))
            .and(idempotency_keys::lease_token.eq(lease.token)),
    )
}

/// Deletes records older than `before`; returns how many.
pub async fn purge(conn: &mut Conn, before: NaiveDateTime) -> QueryResult<usize> {
    on_conn!(conn, c => diesel::delete(idempotency_keys::table.filter(idempotency_keys::created_at.lt(before)))
        .execute(c)
        .await)
}
