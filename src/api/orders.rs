//! `/orders`: checkout, the customer's orders, cancellation, and status changes by staff and by the
//! order's rider (picked up, out for delivery). A customer asking for another customer's order gets 404.
//! Every change is announced on `order:{id}` after commit; packing starts the rider offer cascade.

use actix_web::{HttpResponse, get, post, put, web};
use chrono::{NaiveDateTime, Utc};
use onemedi_actors::{events::DomainEvent, machines::Agent};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Page, PageQuery, Problems, cart::parse_coupon_code};
use crate::{
    auth::AuthUser,
    bus::Event,
    db::orders::{self, Checkout, Order, OrderError, OrderItem, Transition},
    domain::{OrderStatus, PaymentMethod, Role},
    error::{ApiError, ErrorBody, ErrorCode},
    state::AppState,
};

/// Longest cancellation or status-change reason.
const MAX_REASON_CHARS: usize = 500;

#[derive(Debug, Serialize, ToSchema)]
pub struct ShippingView {
    pub name: String,
    pub phone: String,
    pub address: String,
    pub city: String,
    pub pincode: String,
    pub lat: f64,
    pub lng: f64,
}

/// An order; `items` and `timeline` are filled on the single-order answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderView {
    pub id: i64,
    pub order_number: String,
    pub status: String,
    pub payment_method: String,
    pub payment_status: String,
    pub subtotal_paise: i64,
    pub discount_paise: i64,
    pub tax_paise: i64,
    pub delivery_paise: i64,
    pub total_paise: i64,
    pub coupon_id: Option<i64>,
    pub prescription_id: Option<i64>,
    pub shipping: ShippingView,
    pub cancel_reason: Option<String>,
    pub version: i64,
    pub placed_at: NaiveDateTime,
    pub delivered_at: Option<NaiveDateTime>,
    pub cancelled_at: Option<NaiveDateTime>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<OrderItem>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<Transition>,
    /// The rider's unit once one accepted the delivery.
    pub rider_unit_id: Option<i64>,
    /// The one-time code the customer gives the rider at the door: shown to the order's owner only,
    /// until the order is delivered or cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_code: Option<String>,
    /// Live tracking (status, rider position with last-seen age, ETA, timeline); single-order answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracking: Option<super::delivery::TrackingView>,
    /// Refunds of what was paid online (owed by a cancellation); single-order answers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refunds: Vec<crate::db::refunds::RefundView>,
}

impl OrderView {
    fn new(o: Order, items: Vec<OrderItem>, timeline: Vec<Transition>) -> Self {
        Self {
            rider_unit_id: o.rider_unit_id,
            delivery_code: None,
            tracking: None,
            refunds: Vec::new(),
            id: o.id,
            order_number: o.order_number,
            status: o.status,
            payment_method: o.payment_method,
            payment_status: o.payment_status,
            subtotal_paise: o.subtotal_paise,
            discount_paise: o.discount_paise,
            tax_paise: o.tax_paise,
            delivery_paise: o.delivery_paise,
            total_paise: o.total_paise,
            coupon_id: o.coupon_id,
            prescription_id: o.prescription_id,
            shipping: ShippingView {
                name: o.ship_name,
                phone: o.ship_phone,
                address: o.ship_address,
                city: o.ship_city,
                pincode: o.ship_pincode,
                lat: o.ship_lat,
                lng: o.ship_lng,
            },
            cancel_reason: o.cancel_reason,
            version: o.version,
            placed_at: o.placed_at,
            delivered_at: o.delivered_at,
            cancelled_at: o.cancelled_at,
            items,
            timeline,
        }
    }
}

impl From<OrderError> for ApiError {
    fn from(error: OrderError) -> Self {
        match error {
            OrderError::CartEmpty => ApiError::new(ErrorCode::CartEmpty, "the cart has nothing to order"),
            OrderError::AddressNotFound => ApiError::field("address_id", "no such address"),
            OrderError::OutOfStock { medicine_id, name } => {
                ApiError::new(ErrorCode::OutOfStock, format!("not enough stock of {name}"))
                    .with_details(serde_json::json!({ "medicine_id": medicine_id, "name": name }))
            }
            OrderError::PrescriptionRequired { medicines } => ApiError::new(
                ErrorCode::PrescriptionRequired,
                "an approved prescription is needed for this order",
            )
            .with_details(serde_json::json!({ "medicines": medicines })),
            OrderError::Coupon(problem) => super::cart::coupon_error(problem),
            OrderError::NotFound => ApiError::not_found("order"),
            OrderError::Illegal(illegal) => ApiError::new(ErrorCode::InvalidTransition, illegal.to_string()),
            OrderError::Conflict => ApiError::new(
                ErrorCode::Conflict,
                "the order changed meanwhile; reload it and try again",
            ),
            OrderError::WrongCode { attempts_left } => {
                ApiError::new(ErrorCode::DeliveryCodeInvalid, "the delivery code is wrong")
                    .with_details(serde_json::json!({ "attempts_left": attempts_left }))
            }
            OrderError::CodeLocked => ApiError::new(
                ErrorCode::DeliveryCodeLocked,
                "too many wrong delivery codes; the order is locked",
            ),
            OrderError::NotOutForDelivery(status) => ApiError::new(
                ErrorCode::InvalidTransition,
                format!("the order is {status}, not out for delivery"),
            ),
            OrderError::Db(error) => error.into(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrder {
    pub address_id: i64,
    pub coupon_code: Option<String>,
    pub payment_method: PaymentMethod,
}

#[utoipa::path(
    tag = "orders",
    request_body = PlaceOrder,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with the same key create one order")),
    responses(
        (status = 201, body = OrderView),
        (status = 400, description = "validation_failed", body = ErrorBody),
        (status = 409, description = "out_of_stock or coupon_exhausted", body = ErrorBody),
        (status = 422, description = "cart_empty, coupon_invalid or prescription_required", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/orders")]
pub async fn place_order(
    state: web::Data<AppState>,
    auth: AuthUser,
    body: web::Json<PlaceOrder>,
) -> Result<HttpResponse, ApiError> {
    let mut p = Problems::default();
    let coupon_code = match body
        .coupon_code
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        Some(raw) => parse_coupon_code(&mut p, "coupon_code", raw),
        None => None,
    };
    p.finish()?;
    let code = crate::domain::delivery::issue(state.jwt.delivery_key());
    let checkout = Checkout {
        user_id: auth.id.0,
        address_id: body.address_id,
        coupon_code,
        payment_method: body.payment_method.as_str(),
        delivery_code_hash: code.hash,
        delivery_code_sealed: code.sealed,
    };
    let mut conn = state.db.write().await?;
    let (order, items) = orders::place(&mut conn, &checkout).await?;
    drop(conn);
    // The timeline of a new order is its `placed` row, written by the checkout just now.
    let timeline = vec![orders::Transition {
        event: "placed".to_owned(),
        from_status: None,
        to_status: OrderStatus::Pending.as_str().to_owned(),
        actor_user_id: Some(order.user_id),
        reason: None,
        at: order.placed_at,
    }];
    tracing::info!(
        order = order.id,
        user = auth.id.0,
        total_paise = order.total_paise,
        "order placed"
    );
    announce_placed(&state, &order).await;
    let mut view = OrderView::new(order, items, timeline);
    view.delivery_code = Some(code.code);
    Ok(HttpResponse::Created().json(view))
}

/// `order_placed` on the order's and the customer's topics, after commit.
async fn announce_placed(state: &AppState, order: &Order) {
    let event = Event::OrderPlaced {
        order_id: order.id,
        user_id: order.user_id,
        order_number: order.order_number.clone(),
        payment_method: order.payment_method.clone(),
        total_paise: order.total_paise,
        at: chrono::Utc::now(),
    };
    let topics = [format!("order:{}", order.id), format!("user:{}", order.user_id)];
    state.bus.publish_event(&topics, &event).await;
}

#[utoipa::path(
    tag = "orders",
    params(PageQuery),
    responses((status = 200, body = Page<OrderView>)),
    security(("bearer" = []))
)]
#[get("/orders")]
pub async fn list_orders(
    state: web::Data<AppState>,
    auth: AuthUser,
    page: web::Query<PageQuery>,
) -> Result<web::Json<Page<OrderView>>, ApiError> {
    let page = page.validate()?;
    let mut conn = state.db.read().await?;
    let (rows, total) = orders::list_for_user(&mut conn, auth.id.0, page.limit(), page.offset()).await?;
    let items = rows
        .into_iter()
        .map(|o| OrderView::new(o, Vec::new(), Vec::new()))
        .collect();
    Ok(web::Json(page.wrap(items, total)))
}

/// The order if `auth` may see it: its owner, staff and administrators, or the crew of its rider unit.
async fn visible_order(state: &AppState, auth: &AuthUser, id: i64) -> Result<Order, ApiError> {
    let mut conn = state.db.read().await?;
    let order = orders::find(&mut conn, id).await?;
    if let Some(order) = order {
        let rider = match order.rider_unit_id {
            Some(unit) if auth.role == Role::Rider => {
                crate::db::emergency::is_crew(&mut conn, auth.id.0, unit).await?
            }
            _ => false,
        };
        if order.user_id == auth.id.0 || auth.has_role(&[Role::Staff, Role::Admin]) || rider {
            return Ok(order);
        }
    }
    Err(ApiError::not_found("order"))
}

/// The single-order answer; `owner` set to the caller's id shows the delivery code if they own it.
pub(super) async fn full_view(
    state: &AppState,
    order: Order,
    viewer: Option<i64>,
) -> Result<OrderView, ApiError> {
    let tracking = super::delivery::tracking_view(state, &order).await?;
    let code = match viewer {
        Some(user) => super::delivery::code_for_owner(state, &order, user).await?,
        None => None,
    };
    let mut conn = state.db.read().await?;
    let items = orders::items(&mut conn, order.id).await?;
    let timeline = orders::transitions(&mut conn, order.id).await?;
    let refunds = crate::db::refunds::for_order(&mut conn, order.id).await?;
    let mut view = OrderView::new(order, items, timeline);
    view.refunds = refunds.into_iter().map(Into::into).collect();
    view.delivery_code = code;
    view.tracking = Some(tracking);
    Ok(view)
}

/// Announces a committed status change on `order:{id}`: `order_status_changed` for the customer, and
/// the machine's `state_changed`, which also stops a running rider cascade once the order is cancelled
/// or has left the pharmacy.
pub(super) async fn announce(
    state: &AppState,
    order: &Order,
    from: OrderStatus,
    to: OrderStatus,
    cause: &str,
) {
    let topics = [format!("order:{}", order.id)];
    let changed = Event::OrderStatusChanged {
        order_id: order.id,
        from: from.as_str().to_owned(),
        to: to.as_str().to_owned(),
        cause: cause.to_owned(),
        at: Utc::now(),
    };
    state.bus.publish_event(&topics, &changed).await;
    let machine = DomainEvent::StateChanged {
        entity: crate::dispatch::order_key(order.id),
        from: from.as_str().to_owned(),
        to: to.as_str().to_owned(),
        event: cause.to_owned(),
        version: u64::try_from(order.version).unwrap_or(0),
        at: Utc::now(),
        agent: Agent::System,
    };
    state.bus.publish(&topics, machine.to_json()).await;
}

#[utoipa::path(
    tag = "orders",
    params(("id" = i64, Path, description = "Order id")),
    responses((status = 200, body = OrderView), (status = 404, description = "not_found", body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/orders/{id}")]
pub async fn get_order(
    state: web::Data<AppState>,
    auth: AuthUser,
    id: web::Path<i64>,
) -> Result<web::Json<OrderView>, ApiError> {
    let order = visible_order(&state, &auth, *id).await?;
    Ok(web::Json(full_view(&state, order, Some(auth.id.0)).await?))
}

fn stored_status(order: &Order) -> Result<OrderStatus, ApiError> {
    OrderStatus::parse(&order.status).ok_or_else(|| {
        ApiError::internal(anyhow::anyhow!(
            "order {} has status {:?}",
            order.id,
            order.status
        ))
    })
}

#[utoipa::path(
    tag = "orders",
    params(("id" = i64, Path, description = "Order id")),
    responses(
        (status = 200, body = OrderView),
        (status = 404, description = "not_found", body = ErrorBody),
        (status = 409, description = "invalid_transition (already packed or later) or conflict", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/orders/{id}/cancel")]
pub async fn cancel_order(
    state: web::Data<AppState>,
    auth: AuthUser,
    id: web::Path<i64>,
) -> Result<web::Json<OrderView>, ApiError> {
    let order = visible_order(&state, &auth, *id).await?;
    if order.user_id != auth.id.0 {
        return Err(ApiError::not_found("order"));
    }
    let from = stored_status(&order)?;
    if !from.customer_may_cancel() {
        return Err(ApiError::new(
            ErrorCode::InvalidTransition,
            format!("an order that is {from} can no longer be cancelled by the customer"),
        ));
    }
    let mut conn = state.db.write().await?;
    let order = orders::transition(
        &mut conn,
        order.id,
        from,
        order.version,
        OrderStatus::Cancelled,
        auth.id.0,
        None,
        Some("cancelled by the customer"),
    )
    .await?;
    drop(conn);
    announce(&state, &order, from, OrderStatus::Cancelled, "customer").await;
    if order.payment_status == "paid" {
        crate::refunds::kick(&state);
    }
    Ok(web::Json(full_view(&state, order, Some(auth.id.0)).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusUpdate {
    pub status: OrderStatus,
    pub reason: Option<String>,
}

/// Staff and administrators move an order along its legal transitions. The rider whose unit carries
/// the order may take the two steps that are theirs: `packed → shipped` (picked up) and
/// `shipped → out_for_delivery`. Packing starts the offer of the delivery to the nearest riders.
#[utoipa::path(
    tag = "orders",
    request_body = StatusUpdate,
    params(("id" = i64, Path, description = "Order id")),
    responses(
        (status = 200, body = OrderView),
        (status = 403, description = "forbidden (neither staff nor this order's rider, or not a rider's step)", body = ErrorBody),
        (status = 404, description = "not_found", body = ErrorBody),
        (status = 409, description = "invalid_transition or conflict", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[put("/orders/{id}/status")]
pub async fn update_status(
    state: web::Data<AppState>,
    auth: AuthUser,
    id: web::Path<i64>,
    body: web::Json<StatusUpdate>,
) -> Result<web::Json<OrderView>, ApiError> {
    let mut p = Problems::default();
    let reason = match body.reason.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
        Some(raw) => p.text("reason", raw, MAX_REASON_CHARS),
        None => None,
    };
    p.finish()?;
    let staff = auth.has_role(&[Role::Staff, Role::Admin]);
    let (order, rider_unit) = if staff {
        (visible_order(&state, &auth, *id).await?, None)
    } else if auth.role == Role::Rider {
        let (order, unit) = super::delivery::riders_order(&state, &auth, *id).await?;
        (order, Some(unit))
    } else {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "only staff or the order's rider may do this",
        ));
    };
    let from = stored_status(&order)?;
    if rider_unit.is_some()
        && !matches!(
            (from, body.status),
            (OrderStatus::Packed, OrderStatus::Shipped) | (OrderStatus::Shipped, OrderStatus::OutForDelivery)
        )
    {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "a rider may only mark the order picked up (shipped) and out for delivery",
        ));
    }
    let mut conn = state.db.write().await?;
    let order = orders::transition(
        &mut conn,
        order.id,
        from,
        order.version,
        body.status,
        auth.id.0,
        rider_unit,
        reason.as_deref(),
    )
    .await?;
    drop(conn);
    tracing::info!(order = order.id, user = auth.id.0, from = %from, to = %body.status, "order status changed");
    let cause = if rider_unit.is_some() { "rider" } else { "staff" };
    announce(&state, &order, from, body.status, cause).await;
    if body.status == OrderStatus::Packed {
        state
            .emergency
            .dispatch_order(order.id, order.ship_lat, order.ship_lng);
    }
    if body.status == OrderStatus::Cancelled
        && let Some(unit) = order.rider_unit_id
    {
        crate::dispatch::announce_unit_status(&state.bus, unit, "available").await;
    }
    if body.status == OrderStatus::Cancelled && order.payment_status == "paid" {
        crate::refunds::kick(&state);
    }
    Ok(web::Json(full_view(&state, order, Some(auth.id.0)).await?))
}
