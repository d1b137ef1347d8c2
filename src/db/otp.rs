//! One-time login codes: stored hashed, single use, bounded attempts.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::{Conn, schema::otp_codes};
use crate::on_conn;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = otp_codes)]
pub struct OtpCode {
    pub id: i64,
    pub phone: String,
    pub code_hash: String,
    pub attempts: i32,
    pub expires_at: NaiveDateTime,
    pub consumed_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

/// Codes issued to `phone` since `since` (for the per-phone request limit).
pub async fn count_since(conn: &mut Conn, phone: &str, since: NaiveDateTime) -> QueryResult<i64> {
    on_conn!(conn, c => otp_codes::table
        .filter(otp_codes::phone.eq(phone).and(otp_codes::created_at.ge(since)))
        .count()
        .get_result(c)
        .await)
}

/// The oldest code issued to `phone` since `since`, to tell the client when the window reopens.
pub async fn oldest_since(
    conn: &mut Conn,
    phone: &str,
    since: NaiveDateTime,
) -> QueryResult<Option<NaiveDateTime>> {
    on_conn!(conn, c => otp_codes::table
        .filter(otp_codes::phone.eq(phone).and(otp_codes::created_at.ge(since)))
        .select(otp_codes::created_at)
        .order(otp_codes::created_at.asc())
        .first(c)
        .await
        .optional())
}

/// Stores a new code; earlier unused codes for the phone are retired so only the latest works.
pub async fn issue(
    conn: &mut Conn,
    phone: &str,
    code_hash: &str,
    now: NaiveDateTime,
    expires_at: NaiveDateTime,
) -> QueryResult<()> {
    on_conn!(conn, c => {
        diesel::update(otp_codes::table.filter(otp_codes::phone.eq(phone).and(otp_codes::consumed_at.is_null())))
            .set(otp_codes::consumed_at.eq(now))
            .execute(c)
            .await?;
        diesel::insert_into(otp_codes::table)
            .values((
                otp_codes::phone.eq(phone),
                otp_codes::code_hash.eq(code_hash),
                otp_codes::expires_at.eq(expires_at),
                otp_codes::created_at.eq(now),
            ))
            .execute(c)
            .await?;
        Ok(())
    })
}

/// The newest unused code for `phone`.
pub async fn latest_unused(conn: &mut Conn, phone: &str) -> QueryResult<Option<OtpCode>> {
    on_conn!(conn, c => otp_codes::table
        .filter(otp_codes::phone.eq(phone).and(otp_codes::consumed_at.is_null()))
        .order(otp_codes::id.desc())
        .select(OtpCode::as_select())
        .first(c)
        .await
        .optional())
}

/// Counts one guess, atomically: false when the code is used up or already consumed.
pub async fn record_attempt(conn: &mut Conn, id: i64, max_attempts: i32) -> QueryResult<bool> {
    let updated = on_conn!(conn, c => diesel::update(
        otp_codes::table.filter(
            otp_codes::id.eq(id).and(otp_codes::attempts.lt(max_attempts)).and(otp_codes::consumed_at.is_null()),
        ),
    )
    .set(otp_codes::attempts.eq(otp_codes::attempts + 1))
    .execute(c)
    .await)?;
    Ok(updated == 1)
}

/// Marks the code used; false when a concurrent request used it first.
pub async fn consume(conn: &mut Conn, id: i64, now: NaiveDateTime) -> QueryResult<bool> {
    let updated = on_conn!(conn, c => diesel::update(
        otp_codes::table.filter(otp_codes::id.eq(id).and(otp_codes::consumed_at.is_null())),
    )
    .set(otp_codes::consumed_at.eq(now))
    .execute(c)
    .await)?;
    Ok(updated == 1)
}
