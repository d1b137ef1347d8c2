//! Queries on user accounts.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::{
    Conn,
    schema::{audit_log, users},
};
use crate::on_conn;

/// A user row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i64,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub name: String,
    pub password_hash: Option<String>,
    pub role: String,
    pub is_active: bool,
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub email: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub name: &'a str,
    pub password_hash: Option<&'a str>,
    pub role: &'a str,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A profile change; `None` leaves the column as it is.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = users)]
pub struct ProfileUpdate {
    pub name: Option<String>,
    pub phone: Option<String>,
    pub updated_at: Option<NaiveDateTime>,
}

pub async fn insert(conn: &mut Conn, new: &NewUser<'_>) -> QueryResult<User> {
    on_conn!(conn, c => diesel::insert_into(users::table).values(new).returning(User::as_returning()).get_result(c).await)
}

pub async fn find(conn: &mut Conn, id: i64) -> QueryResult<Option<User>> {
    on_conn!(conn, c => users::table.find(id).select(User::as_select()).first(c).await.optional())
}

pub async fn find_by_email(conn: &mut Conn, email: &str) -> QueryResult<Option<User>> {
    on_conn!(conn, c => users::table
        .filter(users::email.eq(email))
        .select(User::as_select())
        .first(c)
        .await
        .optional())
}

pub async fn find_by_phone(conn: &mut Conn, phone: &str) -> QueryResult<Option<User>> {
    on_conn!(conn, c => users::table
        .filter(users::phone.eq(phone))
        .select(User::as_select())
        .first(c)
        .await
        .optional())
}

pub async fn update_profile(conn: &mut Conn, id: i64, update: &ProfileUpdate) -> QueryResult<User> {
    on_conn!(conn, c => diesel::update(users::table.find(id))
        .set((update, users::version.eq(users::version + 1)))
        .returning(User::as_returning())
        .get_result(c)
        .await)
}

/// Sets the role and writes `audit` (its details become `{"from", "to"}`) in one transaction, so a role
/// never changes without its audit row. `None` when there is no such user.
pub async fn set_role_audited(
    conn: &mut Conn,
    id: i64,
    role: &str,
    audit: super::audit::NewAuditEntry<'_>,
) -> QueryResult<Option<User>> {
    let now = super::now();
    let audit = &audit;
    on_conn!(conn, c => c.transaction(async move |c| {
        let Some(before) = users::table.find(id).select(users::role).first::<String>(c).await.optional()? else {
            return Ok(None);
        };
        let after = diesel::update(users::table.find(id))
            .set((users::role.eq(role), users::version.eq(users::version + 1), users::updated_at.eq(now)))
            .returning(User::as_returning())
            .get_result(c)
            .await?;
        let details = serde_json::json!({ "from": before, "to": role }).to_string();
        diesel::insert_into(audit_log::table)
            .values((audit, audit_log::details.eq(details)))
            .execute(c)
            .await?;
        Ok(Some(after))
    }).await)
}

/// One page of users, optionally of one role, newest first, with the total count.
pub async fn list(
    conn: &mut Conn,
    role: Option<&str>,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<User>, i64)> {
    let role = role.map(str::to_owned);
    on_conn!(conn, c => {
        let mut query = users::table.select(User::as_select()).into_boxed();
        let mut count = users::table.count().into_boxed();
        if let Some(role) = &role {
            query = query.filter(users::role.eq(role.clone()));
            count = count.filter(users::role.eq(role.clone()));
        }
        let rows = query.order(users::id.desc()).limit(limit).offset(offset).load(c).await?;
        let total: i64 = count.get_result(c).await?;
        Ok((rows, total))
    })
}

pub async fn count(conn: &mut Conn) -> QueryResult<i64> {
    on_conn!(conn, c => users::table.count().get_result(c).await)
}
