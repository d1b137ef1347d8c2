//! One-time login codes: stored hashed, single use, bounded attempts.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::{
    Conn,
    schema::{otp_codes, otp_request_windows},
};
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

/// Counts one code against `phone`'s window, in one statement: a window that started at or before
/// `$3` (the window's length ago) starts afresh at `$2`; otherwise the count rises only while it is
/// below `$4`. No row comes back when the window is full. On PostgreSQL the upsert locks the phone's
/// row, so concurrent requests for one phone are counted one after another.
const CLAIM_WINDOW_SQL: &str = "INSERT INTO otp_request_windows (phone, window_start, issued) VALUES ($1, $2, 1) \
     ON CONFLICT (phone) DO UPDATE SET \
       issued = CASE WHEN otp_request_windows.window_start <= $3 THEN 1 ELSE otp_request_windows.issued + 1 END, \
       window_start = CASE WHEN otp_request_windows.window_start <= $3 THEN $2 ELSE otp_request_windows.window_start END \
     WHERE otp_request_windows.window_start <= $3 OR otp_request_windows.issued < $4 \
     RETURNING issued";

#[derive(QueryableByName)]
struct Issued {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    #[expect(dead_code, reason = "read only to learn whether a row came back")]
    issued: i32,
}

/// Whether a new code was issued, or when the full window began.
pub enum Issue {
    Issued,
    WindowFull { since: NaiveDateTime },
}

/// Issues a new code for `phone` if its window (`window` long, at most `max_in_window` codes) has room:
/// the window's count and the code are written in one transaction, and earlier unused codes for the
/// phone are retired so only the latest works.
pub async fn issue(
    conn: &mut Conn,
    phone: &str,
    code_hash: &str,
    now: NaiveDateTime,
    expires_at: NaiveDateTime,
    window: chrono::TimeDelta,
    max_in_window: i32,
) -> QueryResult<Issue> {
    use diesel::sql_types::{Integer, Text, Timestamp};
    let claim = super::sql_text(conn, CLAIM_WINDOW_SQL);
    let claim = claim.as_ref();
    on_conn!(conn, c => c.transaction(async move |c| {
        let claimed = diesel::sql_query(claim)
            .bind::<Text, _>(phone)
            .bind::<Timestamp, _>(now)
            .bind::<Timestamp, _>(now - window)
            .bind::<Integer, _>(max_in_window)
            .get_result::<Issued>(c)
            .await
            .optional()?;
        if claimed.is_none() {
            let since = otp_request_windows::table
                .find(phone)
                .select(otp_request_windows::window_start)
                .first(c)
                .await?;
            return Ok(Issue::WindowFull { since });
        }
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
        Ok(Issue::Issued)
    }).await)
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
