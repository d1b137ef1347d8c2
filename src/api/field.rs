//! The field view's starting point (`GET /emergency/my-unit`): the caller's unit with the offer waiting
//! for its answer and the job it is working, so a crew member who reloads the page sees both again.

use chrono::{DateTime, Utc};
use onemedi_actors::{fleet::eta_for, position::Position};
use serde::Serialize;
use utoipa::ToSchema;

use super::emergency::{JobRef, UnitView};
use crate::{
    db::{self, emergency, field, lab_collections, orders},
    error::ApiError,
    state::AppState,
};

/// The caller's unit as the field view starts from it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyUnitView {
    #[serde(flatten)]
    pub unit: UnitView,
    /// A phlebotomist's collector id: their `collector:{id}` topic carries their collections' changes.
    pub collector_id: Option<i64>,
    /// The offer waiting for this crew's answer, if one is open.
    pub open_offer: Option<OpenOfferView>,
    /// The job this crew is working: the unit's ambulance request or order, or for a phlebotomist the
    /// collection under way (else the earliest assigned one).
    pub current_job: Option<CurrentJobView>,
}

/// An open offer, shaped like the `offer_made` event it was announced with.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenOfferView {
    /// The job offered: `{kind, id}` (`ambulance_request`, `order` or `lab_collection`).
    pub request: JobRef,
    /// Metres from the unit to the job (pickup, delivery address or collection address); from the offer
    /// when stored with it, else from the unit's last position now. Absent without a position.
    pub distance_m: Option<f64>,
    /// Travel time for that distance at the unit kind's speed, seconds.
    pub eta_s: Option<f64>,
    pub offered_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Seconds left to answer, by the server's clock (a countdown needs no synchronised clocks).
    pub expires_in_s: f64,
    /// The order's number, for a delivery offer.
    pub order_number: Option<String>,
}

/// The job being worked and where it stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct CurrentJobView {
    pub kind: String,
    pub id: i64,
    pub status: String,
}

/// Adds the open offer and the current job to `unit` (crewed by the user `user`).
pub async fn my_unit_view(state: &AppState, unit: UnitView, user: i64) -> Result<MyUnitView, ApiError> {
    let now = db::now();
    let mut conn = state.db.read().await?;
    let stored = emergency::find_unit(&mut conn, unit.id)
        .await?
        .ok_or_else(|| ApiError::not_found("unit"))?;
    let collector = match unit.kind.as_str() {
        "phlebotomist" => lab_collections::collector_of_user(&mut conn, user)
            .await?
            .filter(|c| c.unit_id == unit.id),
        _ => None,
    };
    let offer = field::open_offer_to_unit(&mut conn, unit.id, now).await?;
    // Where the offered job is, for offers stored without their distance; and the order's number.
    let (target, order_number) = match &offer {
        Some(o) if o.request_kind == emergency::ENTITY => (
            emergency::find_request(&mut conn, o.request_id)
                .await?
                .map(|r| (r.pickup_lat, r.pickup_lng)),
            None,
        ),
        Some(o) if o.request_kind == "order" => match orders::find(&mut conn, o.request_id).await? {
            Some(order) => (Some((order.ship_lat, order.ship_lng)), Some(order.order_number)),
            None => (None, None),
        },
        _ => (None, None),
    };
    let current_job = match (stored.request_kind.as_deref(), stored.request_id) {
        (Some(kind), Some(id)) if kind == emergency::ENTITY => emergency::find_request(&mut conn, id)
            .await?
            .map(|r| CurrentJobView {
                kind: kind.to_owned(),
                id,
                status: r.status,
            }),
        (Some(kind), Some(id)) if kind == "order" => {
            orders::find(&mut conn, id).await?.map(|o| CurrentJobView {
                kind: kind.to_owned(),
                id,
                status: o.status,
            })
        }
        _ => match &collector {
            Some(collector) => field::current_collection(&mut conn, collector.id)
                .await?
                .map(|row| CurrentJobView {
                    kind: lab_collections::ENTITY.to_owned(),
                    id: row.id,
                    status: row.status,
                }),
            None => None,
        },
    };
    drop(conn);
    let open_offer = offer.map(|o| {
        let travelled = match (o.distance_m, target, &unit.position) {
            (Some(distance), _, _) => Some((distance, o.eta_seconds.map(f64::from))),
            (None, Some((lat, lng)), Some(at)) => {
                match (Position::new(at.lat, at.lng), Position::new(lat, lng)) {
                    (Ok(from), Ok(to)) => {
                        let distance = from.distance_m(to);
                        let eta = emergency::unit_kind(&unit.kind)
                            .map(|kind| eta_for(kind, distance).as_secs_f64());
                        Some((distance, eta))
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        OpenOfferView {
            request: JobRef {
                kind: o.request_kind,
                id: o.request_id,
            },
            distance_m: travelled.map(|(d, _)| d),
            eta_s: travelled.and_then(|(_, eta)| eta),
            offered_at: o.offered_at.and_utc(),
            expires_at: o.expires_at.and_utc(),
            expires_in_s: ((o.expires_at - now).num_milliseconds().max(0) as f64) / 1000.0,
            order_number,
        }
    });
    Ok(MyUnitView {
        unit,
        collector_id: collector.map(|c| c.id),
        open_offer,
        current_job,
    })
}
