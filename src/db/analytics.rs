//! Read-only aggregates for the back-office analytics: orders per India day, bookings per service and
//! collector load. Grouping happens in the database and returns a bounded number of rows (days ×
//! statuses); only the expression that turns a UTC timestamp into an India date differs per backend.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::{
    dsl::count_star,
    prelude::*,
    sql_types::{BigInt, Text, Timestamp},
};
use diesel_async::RunQueryDsl;

use super::{
    Conn,
    doctors::IST_OFFSET,
    schema::{appointments, lab_collections as lc, phlebotomists as ph, service_bookings, users},
};
use crate::on_conn;

/// Most phlebotomists listed in one utilisation table.
pub const MAX_COLLECTORS: i64 = 500;

/// Orders placed on one India day with one (status, payment status), and their value.
#[derive(Debug, Clone, QueryableByName)]
pub struct OrderBucket {
    /// The India date, `YYYY-MM-DD`.
    #[diesel(sql_type = Text)]
    pub day: String,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Text)]
    pub payment_status: String,
    #[diesel(sql_type = BigInt)]
    pub orders: i64,
    #[diesel(sql_type = BigInt)]
    pub total_paise: i64,
}

/// Orders placed in `[from, until)` (UTC), grouped by India day, status and payment status.
pub async fn order_buckets(
    conn: &mut Conn,
    from: NaiveDateTime,
    until: NaiveDateTime,
) -> QueryResult<Vec<OrderBucket>> {
    let offset = IST_OFFSET.num_minutes();
    // Both produce the India calendar date as `YYYY-MM-DD` text; India keeps no daylight saving, so a
    // fixed offset is exact. SQLite's date functions round fractional seconds to milliseconds (so
    // 23:59:59.9999 would become the next day); the stored text is cut to whole seconds first.
    let (day, first, second) = match conn {
        Conn::Pg(_) => (
            format!("to_char(placed_at + INTERVAL '{offset} minutes', 'YYYY-MM-DD')"),
            "$1",
            "$2",
        ),
        Conn::Sqlite(_) => (
            format!("date(substr(placed_at, 1, 19), '+{offset} minutes')"),
            "?",
            "?",
        ),
    };
    let sql = format!(
        "SELECT {day} AS day, status, payment_status, COUNT(*) AS orders, \
         CAST(COALESCE(SUM(total_paise), 0) AS BIGINT) AS total_paise \
         FROM orders WHERE placed_at >= {first} AND placed_at < {second} \
         GROUP BY {day}, status, payment_status"
    );
    on_conn!(conn, c => diesel::sql_query(sql.as_str())
        .bind::<Timestamp, _>(from)
        .bind::<Timestamp, _>(until)
        .load::<OrderBucket>(c)
        .await)
}

/// Lab collections booked in `[from, until)` (UTC), counted per status (in no particular order).
pub async fn lab_collections_by_status(
    conn: &mut Conn,
    from: NaiveDateTime,
    until: NaiveDateTime,
) -> QueryResult<Vec<(String, i64)>> {
    on_conn!(conn, c => lc::table
        .filter(lc::created_at.ge(from).and(lc::created_at.lt(until)))
        .group_by(lc::status)
        .select((lc::status, count_star()))
        .load(c)
        .await)
}

/// Doctor appointments booked in `[from, until)` (UTC), counted per status (in no particular order).
pub async fn appointments_by_status(
    conn: &mut Conn,
    from: NaiveDateTime,
    until: NaiveDateTime,
) -> QueryResult<Vec<(String, i64)>> {
    on_conn!(conn, c => appointments::table
        .filter(appointments::created_at.ge(from).and(appointments::created_at.lt(until)))
        .group_by(appointments::status)
        .select((appointments::status, count_star()))
        .load(c)
        .await)
}

/// Home-care bookings made in `[from, until)` (UTC), counted per status (in no particular order).
pub async fn service_bookings_by_status(
    conn: &mut Conn,
    from: NaiveDateTime,
    until: NaiveDateTime,
) -> QueryResult<Vec<(String, i64)>> {
    on_conn!(conn, c => service_bookings::table
        .filter(service_bookings::created_at.ge(from).and(service_bookings::created_at.lt(until)))
        .group_by(service_bookings::status)
        .select((service_bookings::status, count_star()))
        .load(c)
        .await)
}

/// A phlebotomist's working hours and per-window capacity.
#[derive(Debug, Clone, Queryable)]
pub struct CollectorHours {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub is_active: bool,
    pub work_start_minute: i32,
    pub work_end_minute: i32,
    pub capacity_per_window: i32,
}

/// Every phlebotomist (bounded by [`MAX_COLLECTORS`]), by id.
pub async fn collectors(conn: &mut Conn) -> QueryResult<Vec<CollectorHours>> {
    on_conn!(conn, c => ph::table
        .inner_join(users::table.on(users::id.eq(ph::user_id)))
        .order(ph::id.asc())
        .limit(MAX_COLLECTORS)
        .select((
            ph::id,
            ph::user_id,
            users::name,
            ph::is_active,
            ph::work_start_minute,
            ph::work_end_minute,
            ph::capacity_per_window,
        ))
        .load(c)
        .await)
}

/// Collections (not cancelled) assigned to each phlebotomist for slot dates `from..=to`.
pub async fn assigned_per_collector(
    conn: &mut Conn,
    from: NaiveDate,
    to: NaiveDate,
) -> QueryResult<Vec<(Option<i64>, i64)>> {
    on_conn!(conn, c => lc::table
        .filter(
            lc::slot_date
                .ge(from)
                .and(lc::slot_date.le(to))
                .and(lc::phlebotomist_id.is_not_null())
                .and(lc::status.ne("cancelled")),
        )
        .group_by(lc::phlebotomist_id)
        .select((lc::phlebotomist_id, count_star()))
        .load(c)
        .await)
}
