//! An order's delivery by a rider: the live tracking view (status, rider position with last-seen age,
//! ETA), proof of delivery with the customer's one-time code, and expiring read-only share links that
//! show the tracking view without a login.

use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, NaiveDateTime, Utc};
use onemedi_actors::{
    fleet::{UnitKind, eta_for},
    position::Position,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    Problems,
    emergency::{PositionView, position_of},
};
use crate::{
    auth::AuthUser,
    db::{
        emergency,
        orders::{self, Order, OrderError},
    },
    domain::{OrderStatus, delivery},
    error::{ApiError, ErrorBody, ErrorCode},
    state::AppState,
};

/// Shortest and longest share link, in hours.
pub const SHARE_HOURS: std::ops::RangeInclusive<i64> = 1..=48;
/// A share link's lifetime when the owner names none, in hours.
pub const DEFAULT_SHARE_HOURS: i64 = 4;

/// The rider carrying an order, as the customer sees them.
#[derive(Debug, Serialize, ToSchema)]
pub struct RiderView {
    pub unit_id: i64,
    pub call_sign: String,
    /// Last known position: `live` from the fleet index, else the last stored one; absent before the
    /// rider's first ping.
    pub position: Option<PositionView>,
}

/// One step of an order's timeline as tracking shows it (no actor ids).
#[derive(Debug, Serialize, ToSchema)]
pub struct TrackingStep {
    pub event: String,
    pub status: String,
    pub at: NaiveDateTime,
}

/// What tracking an order shows: the same for the owner and for a share link.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrackingView {
    pub order_id: i64,
    pub order_number: String,
    pub status: String,
    pub placed_at: NaiveDateTime,
    pub delivered_at: Option<NaiveDateTime>,
    /// The rider once one accepted the delivery, until it is delivered.
    pub rider: Option<RiderView>,
    /// Estimated seconds from the rider's last position to the delivery address (rider speed profile,
    /// as ambulance ETAs); absent without a rider position.
    pub eta_s: Option<f64>,
    pub timeline: Vec<TrackingStep>,
}

/// The tracking view of `order` with its timeline.
pub async fn tracking_view(state: &AppState, order: &Order) -> Result<TrackingView, ApiError> {
    let mut conn = state.db.read().await?;
    let timeline = orders::transitions(&mut conn, order.id).await?;
    let carrying = matches!(order.status.as_str(), "packed" | "shipped" | "out_for_delivery");
    let unit = match order.rider_unit_id {
        Some(unit) if carrying => emergency::find_unit(&mut conn, unit).await?,
        _ => None,
    };
    drop(conn);
    let destination = Position::new(order.ship_lat, order.ship_lng).ok();
    let rider = unit.map(|unit| RiderView {
        unit_id: unit.id,
        position: position_of(state, &unit),
        call_sign: unit.call_sign,
    });
    let eta_s = match (&rider, destination) {
        (
            Some(RiderView {
                position: Some(at), ..
            }),
            Some(to),
        ) => Position::new(at.lat, at.lng)
            .ok()
            .map(|from| eta_for(UnitKind::Rider, from.distance_m(to)).as_secs_f64()),
        _ => None,
    };
    Ok(TrackingView {
        order_id: order.id,
        order_number: order.order_number.clone(),
        status: order.status.clone(),
        placed_at: order.placed_at,
        delivered_at: order.delivered_at,
        rider,
        eta_s,
        timeline: timeline
            .into_iter()
            .map(|t| TrackingStep {
                event: t.event,
                status: t.to_status,
                at: t.at,
            })
            .collect(),
    })
}

/// The delivery code, for the order's owner only (never staff, never the rider), while it is useful.
pub async fn code_for_owner(state: &AppState, order: &Order, user: i64) -> Result<Option<String>, ApiError> {
    if order.user_id != user || matches!(order.status.as_str(), "delivered" | "cancelled") {
        return Ok(None);
    }
    let mut conn = state.db.read().await?;
    let sealed = orders::sealed_code(&mut conn, order.id).await?;
    Ok(sealed.and_then(|sealed| delivery::unseal(state.jwt.delivery_key(), &sealed)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliverBody {
    /// The code the customer reads out (6 digits).
    pub code: String,
}

/// The assigned rider confirms the hand-over with the customer's code. A right code delivers the order
/// and frees the rider; a wrong one is refused (422 `delivery_code_invalid`, nothing else changes) and
/// counted — after 5 wrong codes the order is locked (423 `delivery_code_locked`) and staff must step in.
#[utoipa::path(
    tag = "orders",
    request_body = DeliverBody,
    params(("id" = i64, Path, description = "Order id")),
    responses(
        (status = 200, body = super::orders::OrderView),
        (status = 400, description = "validation_failed", body = ErrorBody),
        (status = 404, description = "not_found (no such order carried by your unit)", body = ErrorBody),
        (status = 409, description = "invalid_transition (not out for delivery) or conflict", body = ErrorBody),
        (status = 422, description = "delivery_code_invalid; details.attempts_left", body = ErrorBody),
        (status = 423, description = "delivery_code_locked", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/orders/{id}/deliver")]
pub async fn deliver(
    state: web::Data<AppState>,
    auth: AuthUser,
    id: web::Path<i64>,
    body: web::Json<DeliverBody>,
) -> Result<web::Json<super::orders::OrderView>, ApiError> {
    let mut p = Problems::default();
    let code = body.code.trim();
    if code.len() != delivery::CODE_DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        p.add("code", format!("must be {} digits", delivery::CODE_DIGITS));
    }
    p.finish()?;
    let order = riders_order(&state, &auth, *id).await?;
    let unit = order.1;
    let mut conn = state.db.write().await?;
    let delivered = orders::deliver(&mut conn, *id, unit, auth.id.0, state.jwt.delivery_key(), code).await;
    drop(conn);
    let delivered = delivered.map_err(|error| match error {
        OrderError::WrongCode { attempts_left } => ApiError::new(
            ErrorCode::DeliveryCodeInvalid,
            "the delivery code is wrong; ask the customer again",
        )
        .with_details(serde_json::json!({ "attempts_left": attempts_left })),
        OrderError::CodeLocked => ApiError::new(
            ErrorCode::DeliveryCodeLocked,
            "too many wrong delivery codes; the order is locked, call support",
        ),
        other => other.into(),
    })?;
    tracing::info!(order = delivered.id, unit, "order delivered against its code");
    super::orders::announce(
        &state,
        &delivered,
        OrderStatus::OutForDelivery,
        OrderStatus::Delivered,
        "delivery_code",
    )
    .await;
    crate::dispatch::announce_unit_status(&state.bus, unit, "available").await;
    Ok(web::Json(
        super::orders::full_view(&state, delivered, None).await?,
    ))
}

/// The order `id` if the caller crews its rider unit, with that unit; 404 otherwise.
pub async fn riders_order(state: &AppState, auth: &AuthUser, id: i64) -> Result<(Order, i64), ApiError> {
    let mut conn = state.db.read().await?;
    let order = orders::find(&mut conn, id).await?;
    if let Some(order) = order
        && let Some(unit) = order.rider_unit_id
        && emergency::is_crew(&mut conn, auth.id.0, unit).await?
    {
        return Ok((order, unit));
    }
    Err(ApiError::not_found("order carried by your unit"))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShareBody {
    /// How long the link works, 1–48 hours (default 4).
    pub hours: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ShareLink {
    /// Path of the tracking page for this link (`/track/{token}`); its data is `GET /api/v1/track/{token}`.
    pub url: String,
    /// Signed (HS256, server secret), read-only, carries the order id and the expiry.
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// The owner creates a read-only tracking link that works without a login until it expires.
#[utoipa::path(
    tag = "orders",
    request_body = ShareBody,
    params(("id" = i64, Path, description = "Order id")),
    responses(
        (status = 201, body = ShareLink),
        (status = 400, description = "validation_failed (hours outside 1–48)", body = ErrorBody),
        (status = 404, description = "not_found (not your order)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/orders/{id}/share")]
pub async fn share(
    state: web::Data<AppState>,
    auth: AuthUser,
    id: web::Path<i64>,
    body: crate::api::body::OptionalJson<ShareBody>,
) -> Result<HttpResponse, ApiError> {
    let hours = body
        .into_inner()
        .and_then(|b| b.hours)
        .unwrap_or(DEFAULT_SHARE_HOURS);
    let mut p = Problems::default();
    if !SHARE_HOURS.contains(&hours) {
        p.add("hours", "must be between 1 and 48");
    }
    p.finish()?;
    let mut conn = state.db.read().await?;
    let order = orders::find(&mut conn, *id)
        .await?
        .filter(|o| o.user_id == auth.id.0)
        .ok_or_else(|| ApiError::not_found("order"))?;
    drop(conn);
    let expires_at = Utc::now() + chrono::TimeDelta::hours(hours);
    let token = state
        .jwt
        .issue_share(order.id, u64::try_from(expires_at.timestamp()).unwrap_or(0))
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Created().json(ShareLink {
        url: format!("/track/{token}"),
        token,
        expires_at,
    }))
}

/// The tracking view behind a share link; no login. Never shows the delivery code or the address.
#[utoipa::path(
    tag = "orders",
    params(("token" = String, Path, description = "The share link's token")),
    responses(
        (status = 200, body = TrackingView),
        (status = 401, description = "share_link_invalid (tampered or not a share link) or share_link_expired", body = ErrorBody),
        (status = 404, description = "not_found (the order is gone)", body = ErrorBody),
    )
)]
#[get("/track/{token}")]
pub async fn track(
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<web::Json<TrackingView>, ApiError> {
    if token.len() > 2048 {
        return Err(ApiError::new(
            ErrorCode::ShareLinkInvalid,
            "this is not a tracking link",
        ));
    }
    let claims = state
        .jwt
        .verify_share(&token)
        .map_err(|error| match error.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                ApiError::new(ErrorCode::ShareLinkExpired, "this tracking link has expired")
            }
            _ => ApiError::new(ErrorCode::ShareLinkInvalid, "this is not a valid tracking link"),
        })?;
    let id = claims
        .order_id()
        .ok_or_else(|| ApiError::new(ErrorCode::ShareLinkInvalid, "this is not a valid tracking link"))?;
    let mut conn = state.db.read().await?;
    let order = orders::find(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found("order"))?;
    drop(conn);
    Ok(web::Json(tracking_view(&state, &order).await?))
}
