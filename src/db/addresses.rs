//! Queries on delivery / visit addresses; every query is scoped to its owner.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::{Conn, schema::addresses};
use crate::on_conn;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = addresses)]
pub struct Address {
    pub id: i64,
    pub user_id: i64,
    pub label: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub state: String,
    pub pincode: String,
    pub lat: f64,
    pub lng: f64,
    pub is_default: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// The writable fields of an address, already validated.
#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = addresses)]
#[diesel(treat_none_as_null = true)]
pub struct AddressFields {
    pub label: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub state: String,
    pub pincode: String,
    pub lat: f64,
    pub lng: f64,
    pub is_default: bool,
}

/// Most addresses one user may keep.
pub const MAX_ADDRESSES_PER_USER: i64 = 20;

/// Inserts an address; a new default clears the previous default in the same transaction. `None` when
/// the user already has [`MAX_ADDRESSES_PER_USER`] addresses.
pub async fn insert(conn: &mut Conn, user_id: i64, fields: &AddressFields) -> QueryResult<Option<Address>> {
    let now = super::now();
    on_conn!(conn, c => c.transaction(async move |c| {
        let existing: i64 = addresses::table.filter(addresses::user_id.eq(user_id)).count().get_result(c).await?;
        if existing >= MAX_ADDRESSES_PER_USER {
            return Ok(None);
        }
        let make_default = fields.is_default || existing == 0;
        if make_default {
            diesel::update(addresses::table.filter(addresses::user_id.eq(user_id)))
                .set(addresses::is_default.eq(false))
                .execute(c)
                .await?;
        }
        let row = diesel::insert_into(addresses::table)
            .values((
                fields,
                addresses::user_id.eq(user_id),
                addresses::created_at.eq(now),
                addresses::updated_at.eq(now),
            ))
            .returning(Address::as_returning())
            .get_result(c)
            .await?;
        if make_default && !row.is_default {
            let row = diesel::update(addresses::table.find(row.id))
                .set(addresses::is_default.eq(true))
                .returning(Address::as_returning())
                .get_result(c)
                .await?;
            return Ok(Some(row));
        }
        Ok(Some(row))
    }).await)
}

pub async fn list(
    conn: &mut Conn,
    user_id: i64,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<Address>, i64)> {
    on_conn!(conn, c => {
        let rows = addresses::table
            .filter(addresses::user_id.eq(user_id))
            .order((addresses::is_default.desc(), addresses::id.asc()))
            .limit(limit)
            .offset(offset)
            .select(Address::as_select())
            .load(c)
            .await?;
        let total = addresses::table.filter(addresses::user_id.eq(user_id)).count().get_result(c).await?;
        Ok((rows, total))
    })
}

pub async fn find_owned(conn: &mut Conn, user_id: i64, id: i64) -> QueryResult<Option<Address>> {
    on_conn!(conn, c => addresses::table
        .filter(addresses::id.eq(id).and(addresses::user_id.eq(user_id)))
        .select(Address::as_select())
        .first(c)
        .await
        .optional())
}

/// Replaces an owned address; `None` when it is not this user's.
pub async fn update_owned(
    conn: &mut Conn,
    user_id: i64,
    id: i64,
    fields: &AddressFields,
) -> QueryResult<Option<Address>> {
    let now = super::now();
    on_conn!(conn, c => c.transaction(async move |c| {
        if fields.is_default {
            diesel::update(addresses::table.filter(addresses::user_id.eq(user_id).and(addresses::id.ne(id))))
                .set(addresses::is_default.eq(false))
                .execute(c)
                .await?;
        }
        diesel::update(addresses::table.filter(addresses::id.eq(id).and(addresses::user_id.eq(user_id))))
            .set((fields, addresses::updated_at.eq(now)))
            .returning(Address::as_returning())
            .get_result(c)
            .await
            .optional()
    }).await)
}

/// Deletes an owned address; false when it is not this user's.
pub async fn delete_owned(conn: &mut Conn, user_id: i64, id: i64) -> QueryResult<bool> {
    let deleted = on_conn!(conn, c => diesel::delete(
        addresses::table.filter(addresses::id.eq(id).and(addresses::user_id.eq(user_id))),
    )
    .execute(c)
    .await)?;
    Ok(deleted == 1)
}
