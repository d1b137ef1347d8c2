//! Blood banks and their stock per group and component. Stock levels are set by the bank (an upsert of
//! the `blood_stock` row); reservations move units between `units_available` and `units_reserved`
//! with conditional writes (see `db::blood`).

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde::Serialize;
use utoipa::ToSchema;

use super::{
    Conn,
    audit::NewAuditEntry,
    schema::{audit_log, blood_banks, blood_stock},
};
use crate::{domain::BoundingBox, on_conn};

/// Most banks read from one bounding box before the exact distance filter.
pub const MAX_CANDIDATES: i64 = 2_000;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = blood_banks)]
pub struct BloodBank {
    pub id: i64,
    pub name: String,
    pub partner_user_id: Option<i64>,
    pub hospital_id: Option<i64>,
    pub phone: Option<String>,
    pub address: String,
    pub lat: f64,
    pub lng: f64,
    pub open_24x7: bool,
}

/// One stock line of a bank.
#[derive(Debug, Clone, Serialize, ToSchema, Queryable, Selectable)]
#[diesel(table_name = blood_stock)]
pub struct StockLine {
    #[serde(skip)]
    pub blood_bank_id: i64,
    pub blood_group: String,
    pub component: String,
    pub units_available: i32,
    pub units_reserved: i32,
    pub version: i64,
}

pub async fn find(conn: &mut Conn, id: i64) -> QueryResult<Option<BloodBank>> {
    on_conn!(conn, c => blood_banks::table
        .filter(blood_banks::id.eq(id).and(blood_banks::is_active.eq(true)))
        .select(BloodBank::as_select())
        .first(c)
        .await
        .optional())
}

/// Active banks, inside `bbox` when given, at most [`MAX_CANDIDATES`], by id.
pub async fn active(conn: &mut Conn, bbox: Option<BoundingBox>) -> QueryResult<Vec<BloodBank>> {
    on_conn!(conn, c => {
        let mut query = blood_banks::table
            .filter(blood_banks::is_active.eq(true))
            .select(BloodBank::as_select())
            .into_boxed();
        if let Some(b) = bbox {
            query = query
                .filter(blood_banks::lat.between(b.min_lat, b.max_lat))
                .filter(blood_banks::lng.between(b.min_lng, b.max_lng));
        }
        query.order(blood_banks::id.asc()).limit(MAX_CANDIDATES).load(c).await
    })
}

/// The stock lines of `banks`, optionally of one group and/or component, in a stable order.
pub async fn stock_of(
    conn: &mut Conn,
    banks: &[i64],
    group: Option<&str>,
    component: Option<&str>,
) -> QueryResult<Vec<StockLine>> {
    let group = group.map(str::to_owned);
    let component = component.map(str::to_owned);
    on_conn!(conn, c => {
        let mut query = blood_stock::table
            .filter(blood_stock::blood_bank_id.eq_any(banks))
            .select(StockLine::as_select())
            .into_boxed();
        if let Some(g) = &group {
            query = query.filter(blood_stock::blood_group.eq(g.clone()));
        }
        if let Some(k) = &component {
            query = query.filter(blood_stock::component.eq(k.clone()));
        }
        query
            .order((blood_stock::blood_bank_id.asc(), blood_stock::blood_group.asc(), blood_stock::component.asc()))
            .load(c)
            .await
    })
}

/// Sets a bank's available units of one group and component (creating the line if missing) and
/// records the audit entry, in one transaction.
pub async fn set_stock(
    conn: &mut Conn,
    bank_id: i64,
    group: &str,
    component: &str,
    units_available: i32,
    audit: &NewAuditEntry<'_>,
) -> QueryResult<StockLine> {
    let now = super::now();
    on_conn!(conn, c => c.transaction(async move |c| {
        let line = diesel::insert_into(blood_stock::table)
            .values((
                blood_stock::blood_bank_id.eq(bank_id),
                blood_stock::blood_group.eq(group),
                blood_stock::component.eq(component),
                blood_stock::units_available.eq(units_available),
                blood_stock::created_at.eq(now),
                blood_stock::updated_at.eq(now),
            ))
            .on_conflict((blood_stock::blood_bank_id, blood_stock::blood_group, blood_stock::component))
            .do_update()
            .set((
                blood_stock::units_available.eq(units_available),
                blood_stock::version.eq(blood_stock::version + 1),
                blood_stock::updated_at.eq(now),
            ))
            .returning(StockLine::as_returning())
            .get_result(c)
            .await?;
        let details = serde_json::json!({
            "blood_group": group,
            "component": component,
            "units_available": units_available,
        })
        .to_string();
        diesel::insert_into(audit_log::table)
            .values((audit, audit_log::details.eq(details)))
            .execute(c)
            .await?;
        Ok(line)
    }).await)
}
