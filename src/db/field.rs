//! What a crew's field view reads when it (re)connects: the offer waiting for the unit's answer, and
//! the collection a phlebotomist is working on (a rider's or an ambulance's job is the unit's claim).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::{
    Conn,
    lab_collections::CollectionRow,
    schema::{dispatch_offers, lab_collections as lc},
};
use crate::on_conn;

/// An unanswered, unexpired offer of a job to a unit.
#[derive(Debug, Clone, Queryable)]
pub struct OpenOffer {
    pub request_kind: String,
    pub request_id: i64,
    /// Stored for lab collections; ambulance and delivery offers carry theirs only in the event.
    pub distance_m: Option<f64>,
    pub eta_seconds: Option<i32>,
    pub offered_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

/// The newest offer open to `unit` at `now` (a unit is offered one job at a time).
pub async fn open_offer_to_unit(
    conn: &mut Conn,
    unit: i64,
    now: NaiveDateTime,
) -> QueryResult<Option<OpenOffer>> {
    on_conn!(conn, c => dispatch_offers::table
        .filter(
            dispatch_offers::unit_id
                .eq(unit)
                .and(dispatch_offers::status.eq("offered"))
                .and(dispatch_offers::expires_at.gt(now)),
        )
        .order((dispatch_offers::offered_at.desc(), dispatch_offers::id.desc()))
        .select((
            dispatch_offers::request_kind,
            dispatch_offers::request_id,
            dispatch_offers::distance_m,
            dispatch_offers::eta_seconds,
            dispatch_offers::offered_at,
            dispatch_offers::expires_at,
        ))
        .first::<OpenOffer>(c)
        .await
        .optional())
}

/// The collection `collector` is working on: one under way (en route, or samples in the box) first,
/// else the earliest assigned one by slot.
pub async fn current_collection(conn: &mut Conn, collector: i64) -> QueryResult<Option<CollectionRow>> {
    let under_way = on_conn!(conn, c => lc::table
        .filter(lc::phlebotomist_id.eq(collector).and(lc::status.eq_any(["en_route", "collected"])))
        .order((lc::slot_date.asc(), lc::slot_window.asc(), lc::id.asc()))
        .select(CollectionRow::as_select())
        .first::<CollectionRow>(c)
        .await
        .optional())?;
    if under_way.is_some() {
        return Ok(under_way);
    }
    on_conn!(conn, c => lc::table
        .filter(lc::phlebotomist_id.eq(collector).and(lc::status.eq("assigned")))
        .order((lc::slot_date.asc(), lc::slot_window.asc(), lc::id.asc()))
        .select(CollectionRow::as_select())
        .first::<CollectionRow>(c)
        .await
        .optional())
}
