//! Medicine orders: checkout (cart → order in one transaction, stock and coupon claimed by conditional
//! writes), reads scoped to the owner, status transitions recorded in `entity_transitions`, and the
//! rider's delivery: retries of packed orders nobody took, and proof of delivery by the customer's code
//! (bounded attempts by a conditional increment, delivery and the rider's release in one transaction).

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde::Serialize;
use utoipa::ToSchema;

use super::{
    Conn,
    addresses::Address,
    coupons::{Coupon, CouponProblem, user_rules},
    schema::{
        addresses, cart_items, coupon_redemptions, coupons, dispatch_offers, entity_transitions, medicines,
        order_delivery_codes, order_items, orders, prescriptions, units, users,
    },
    with_retries,
};
use crate::db::{emergency::NewTransition, prepared::PreparedExt};
use crate::{
    domain::order::{IllegalTransition, OrderStatus, PricedLine, totals},
    on_conn,
};

/// `entity_transitions.entity_type` of orders.
pub const ENTITY: &str = "order";

/// Gives the rider's unit back (to available) if it is still on this order's delivery; expands to the
/// query's future inside a backend arm of `on_conn!`.
macro_rules! release_rider {
    ($c:expr, $unit:expr, $order:expr, $now:expr) => {
        diesel::update(
            units::table
                .find($unit)
                .filter(units::request_kind.eq(ENTITY).and(units::request_id.eq($order))),
        )
        .set((
            units::status.eq("available"),
            units::request_kind.eq(None::<String>),
            units::request_id.eq(None::<i64>),
            units::version.eq(units::version + 1),
            units::updated_at.eq($now),
        ))
        .execute($c)
    };
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = orders)]
pub struct Order {
    pub id: i64,
    pub order_number: String,
    pub user_id: i64,
    pub address_id: Option<i64>,
    pub ship_name: String,
    pub ship_phone: String,
    pub ship_address: String,
    pub ship_city: String,
    pub ship_pincode: String,
    pub ship_lat: f64,
    pub ship_lng: f64,
    pub status: String,
    pub subtotal_paise: i64,
    pub discount_paise: i64,
    pub tax_paise: i64,
    pub delivery_paise: i64,
    pub total_paise: i64,
    pub coupon_id: Option<i64>,
    pub prescription_id: Option<i64>,
    pub payment_method: String,
    pub payment_status: String,
    pub cancel_reason: Option<String>,
    pub version: i64,
    pub placed_at: NaiveDateTime,
    pub delivered_at: Option<NaiveDateTime>,
    pub cancelled_at: Option<NaiveDateTime>,
    /// The rider's unit once one accepted the delivery.
    pub rider_unit_id: Option<i64>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = orders)]
struct NewOrder<'a> {
    order_number: &'a str,
    user_id: i64,
    address_id: Option<i64>,
    ship_name: &'a str,
    ship_phone: &'a str,
    ship_address: String,
    ship_city: &'a str,
    ship_pincode: &'a str,
    ship_lat: f64,
    ship_lng: f64,
    subtotal_paise: i64,
    discount_paise: i64,
    tax_paise: i64,
    delivery_paise: i64,
    total_paise: i64,
    coupon_id: Option<i64>,
    prescription_id: Option<i64>,
    payment_method: &'a str,
    delivery_code_hash: &'a str,
    placed_at: NaiveDateTime,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

/// A status change; `None` columns stay as they are.
#[derive(Debug, AsChangeset)]
#[diesel(table_name = orders)]
struct StatusChange<'a> {
    status: &'a str,
    cancel_reason: Option<&'a str>,
    cancelled_at: Option<NaiveDateTime>,
    delivered_at: Option<NaiveDateTime>,
    updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Serialize, ToSchema, Queryable, Selectable)]
#[diesel(table_name = order_items)]
pub struct OrderItem {
    pub medicine_id: i64,
    pub medicine_name: String,
    pub prescription_required: bool,
    pub unit_price_paise: i64,
    pub mrp_paise: i64,
    pub quantity: i32,
    pub line_total_paise: i64,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = order_items)]
struct NewOrderItem<'a> {
    order_id: i64,
    medicine_id: i64,
    medicine_name: &'a str,
    prescription_required: bool,
    unit_price_paise: i64,
    mrp_paise: i64,
    quantity: i32,
    line_total_paise: i64,
    created_at: NaiveDateTime,
    gst_rate_percent: Option<i32>,
}

/// One recorded status change.
#[derive(Debug, Clone, Serialize, ToSchema, Queryable, Selectable)]
#[diesel(table_name = entity_transitions)]
pub struct Transition {
    pub event: String,
    pub from_status: Option<String>,
    pub to_status: String,
    pub actor_user_id: Option<i64>,
    pub reason: Option<String>,
    pub at: NaiveDateTime,
}

/// A row of `entity_transitions` about to be written.
/// Why a checkout or transition did not happen. Everything it wrote is rolled back.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error("the cart is empty")]
    CartEmpty,
    #[error("no such address")]
    AddressNotFound,
    #[error("not enough stock of {name}")]
    OutOfStock { medicine_id: i64, name: String },
    #[error("an approved prescription is needed for: {}", medicines.join(", "))]
    PrescriptionRequired { medicines: Vec<String> },
    #[error(transparent)]
    Coupon(CouponProblem),
    #[error("no such order")]
    NotFound,
    #[error(transparent)]
    Illegal(IllegalTransition),
    #[error("the order changed meanwhile")]
    Conflict,
    #[error("wrong delivery code")]
    WrongCode { attempts_left: i32 },
    #[error("too many wrong delivery codes")]
    CodeLocked,
    #[error("the order is {0}, not out for delivery")]
    NotOutForDelivery(String),
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

/// A checkout request, already validated.
#[derive(Debug, Clone)]
pub struct Checkout {
    pub user_id: i64,
    pub address_id: i64,
    pub coupon_code: Option<String>,
    pub payment_method: &'static str,
    /// The delivery code's hash and sealed form (`domain::delivery::issue`).
    pub delivery_code_hash: String,
    pub delivery_code_sealed: String,
}

impl super::Retryable for OrderError {
    fn db_error(&self) -> Option<&diesel::result::Error> {
        match self {
            Self::Db(error) => Some(error),
            _ => None,
        }
    }
}

fn order_number(now: NaiveDateTime) -> String {
    let random = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
    format!("OM{}{}", now.format("%y%m%d"), &random[..10])
}

/// Turns the customer's cart into an order in one transaction: the cart lines are taken with a DELETE
/// (so two concurrent checkouts of one cart cannot both see it), stock is claimed per medicine in id
/// order with `stock = stock - q WHERE stock >= q` (the consistent order avoids deadlocks), the coupon
/// use with `used_count < global_limit`, then the order, its lines, the redemption and the first
/// transition are written. Any refusal rolls everything back.
pub async fn place(conn: &mut Conn, checkout: &Checkout) -> Result<(Order, Vec<OrderItem>), OrderError> {
    let now = super::now();
    let number = order_number(now);
    with_retries(conn, async |conn| {
        let number = number.as_str();
        on_conn!(conn, c => c.transaction(async move |c| {
            let user_id = checkout.user_id;
            let (address, ship_name, ship_phone) = addresses::table
                .inner_join(users::table)
                .filter(addresses::id.eq(checkout.address_id).and(addresses::user_id.eq(user_id)))
                .select((Address::as_select(), users::name, users::phone))
                .first::<(Address, String, Option<String>)>(c)
                .await
                .optional()?
                .ok_or(OrderError::AddressNotFound)?;
            let mut lines: Vec<(i64, i32)> = diesel::delete(cart_items::table.filter(cart_items::user_id.eq(user_id)))
                .returning((cart_items::medicine_id, cart_items::quantity))
                .get_results(c)
                .await?;
            if lines.is_empty() {
                return Err(OrderError::CartEmpty);
            }
            lines.sort_unstable();

            let mut claimed = Vec::with_capacity(lines.len());
            for &(medicine_id, quantity) in &lines {
                let row = diesel::update(medicines::table.filter(
                    medicines::id
                        .eq(medicine_id)
                        .and(medicines::stock.ge(quantity))
                        .and(medicines::is_active.eq(true)),
                ))
                .set((
                    medicines::stock.eq(medicines::stock - quantity),
                    medicines::version.eq(medicines::version + 1),
                    medicines::updated_at.eq(now),
                ))
                .returning((
                    medicines::name,
                    medicines::price_paise,
                    medicines::mrp_paise,
                    medicines::gst_rate_percent,
                    medicines::prescription_required,
                ))
                .prepared()
                .get_result::<(String, i64, i64, i32, bool)>(c)
                .await
                .optional()?;
                match row {
                    Some(row) => claimed.push((medicine_id, quantity, row)),
                    None => {
                        let name = medicines::table
                            .find(medicine_id)
                            .select(medicines::name)
                            .first::<String>(c)
                            .await
                            .optional()?
                            .unwrap_or_default();
                        return Err(OrderError::OutOfStock { medicine_id, name });
                    }
                }
            }

            let needs_prescription: Vec<String> = claimed
                .iter()
                .filter(|(_, _, row)| row.4)
                .map(|(_, _, row)| row.0.clone())
                .collect();
            let prescription_id = if needs_prescription.is_empty() {
                None
            } else {
                let found = prescriptions::table
                    .filter(
                        prescriptions::user_id
                            .eq(user_id)
                            .and(prescriptions::status.eq("approved"))
                            .and(prescriptions::valid_until.is_null().or(prescriptions::valid_until.ge(now.date()))),
                    )
                    .order(prescriptions::id.desc())
                    .select(prescriptions::id)
                    .first::<i64>(c)
                    .await
                    .optional()?;
                Some(found.ok_or(OrderError::PrescriptionRequired { medicines: needs_prescription })?)
            };

            let priced: Vec<PricedLine> = claimed
                .iter()
                .map(|(_, quantity, row)| PricedLine {
                    unit_price_paise: row.1,
                    quantity: *quantity,
                    gst_rate_percent: row.3,
                })
                .collect();
            let subtotal = totals(&priced, 0).subtotal_paise;

            // The coupon is read and priced here but claimed last, just before commit: the claim locks
            // the coupon row until then, so every checkout with the same coupon waits on it only for
            // the last few statements.
            let mut redemption = None;
            if let Some(code) = &checkout.coupon_code {
                let coupon = coupons::table
                    .filter(coupons::code.eq(code))
                    .select(Coupon::as_select())
                    .first(c)
                    .await
                    .optional()?
                    .ok_or_else(|| OrderError::Coupon(CouponProblem::Invalid("no such coupon".to_owned())))?;
                let discount = coupon.discount_for(subtotal, now).map_err(OrderError::Coupon)?;
                redemption = Some((coupon, discount));
            }

            let money = totals(&priced, redemption.as_ref().map_or(0, |(_, d)| *d));
            let ship_address = match &address.line2 {
                Some(line2) => format!("{}, {}, {}", address.line1, line2, address.state),
                None => format!("{}, {}", address.line1, address.state),
            };
            let order = diesel::insert_into(orders::table)
                .values(&NewOrder {
                    order_number: number,
                    user_id,
                    address_id: Some(address.id),
                    ship_name: &ship_name,
                    ship_phone: ship_phone.as_deref().unwrap_or(""),
                    ship_address,
                    ship_city: &address.city,
                    ship_pincode: &address.pincode,
                    ship_lat: address.lat,
                    ship_lng: address.lng,
                    subtotal_paise: money.subtotal_paise,
                    discount_paise: money.discount_paise,
                    tax_paise: money.tax_paise,
                    delivery_paise: money.delivery_paise,
                    total_paise: money.total_paise,
                    coupon_id: redemption.as_ref().map(|(coupon, _)| coupon.id),
                    prescription_id,
                    payment_method: checkout.payment_method,
                    delivery_code_hash: &checkout.delivery_code_hash,
                    placed_at: now,
                    created_at: now,
                    updated_at: now,
                })
                .returning(Order::as_returning())
                .prepared()
                .get_result(c)
                .await?;
            diesel::insert_into(order_delivery_codes::table)
                .values((
                    order_delivery_codes::order_id.eq(order.id),
                    order_delivery_codes::code_sealed.eq(&checkout.delivery_code_sealed),
                    order_delivery_codes::created_at.eq(now),
                ))
                .execute(c)
                .await?;
            let new_items: Vec<NewOrderItem<'_>> = claimed
                .iter()
                .map(|(medicine_id, quantity, row)| NewOrderItem {
                    order_id: order.id,
                    medicine_id: *medicine_id,
                    medicine_name: &row.0,
                    prescription_required: row.4,
                    unit_price_paise: row.1,
                    mrp_paise: row.2,
                    quantity: *quantity,
                    line_total_paise: row.1 * i64::from(*quantity),
                    created_at: now,
                    gst_rate_percent: Some(row.3),
                })
                .collect();
            let mut items = Vec::with_capacity(new_items.len());
            for item in &new_items {
                items.push(
                    diesel::insert_into(order_items::table)
                        .values(item)
                        .returning(OrderItem::as_returning())
                        .prepared()
                        .get_result(c)
                        .await?,
                );
            }
            diesel::insert_into(entity_transitions::table)
                .values(&NewTransition {
                    entity_type: ENTITY,
                    entity_id: order.id,
                    event: "placed",
                    from_status: None,
                    to_status: OrderStatus::Pending.as_str(),
                    actor_user_id: Some(user_id),
                    reason: None,
                    at: now,
                    actor_unit_id: None,
                    command_id: None,
                    details: None,
                })
                .prepared()
                .execute(c)
                .await?;
            if let Some((coupon, _)) = &redemption {
                diesel::insert_into(coupon_redemptions::table)
                    .values((
                        coupon_redemptions::coupon_id.eq(coupon.id),
                        coupon_redemptions::user_id.eq(user_id),
                        coupon_redemptions::order_id.eq(order.id),
                        coupon_redemptions::discount_paise.eq(money.discount_paise),
                        coupon_redemptions::created_at.eq(now),
                    ))
                    .execute(c)
                    .await?;
                let won = diesel::update(coupons::table.filter(
                    coupons::id.eq(coupon.id).and(coupons::is_active.eq(true)).and(
                        coupons::global_limit
                            .is_null()
                            .or(coupons::used_count.lt(coupons::global_limit.assume_not_null())),
                    ),
                ))
                .set((
                    coupons::used_count.eq(coupons::used_count + 1),
                    coupons::version.eq(coupons::version + 1),
                    coupons::updated_at.eq(now),
                ))
                .prepared()
                .execute(c)
                .await?;
                if won == 0 {
                    return Err(OrderError::Coupon(CouponProblem::Exhausted(
                        "this coupon has no uses left".to_owned(),
                    )));
                }
                // Counted after the claim: the claim holds the coupon row, so concurrent redeemers of
                // this coupon are serialised and these counts include every committed redemption (and
                // this order's own, which is not an earlier use).
                let used_by_user: i64 = coupon_redemptions::table
                    .filter(coupon_redemptions::coupon_id.eq(coupon.id).and(coupon_redemptions::user_id.eq(user_id)))
                    .count()
                    .get_result(c)
                    .await?;
                let earlier_orders: i64 = orders::table
                    .filter(
                        orders::user_id
                            .eq(user_id)
                            .and(orders::status.ne("cancelled"))
                            .and(orders::id.ne(order.id)),
                    )
                    .count()
                    .get_result(c)
                    .await?;
                user_rules(coupon, used_by_user - 1, earlier_orders).map_err(OrderError::Coupon)?;
            }
            items.sort_by_key(|item| item.medicine_id);
            Ok((order, items))
        }).await)
    })
    .await
}

/// Moves an order from `from` (at `version`, as the caller read it) to `to` with a conditional update;
/// `Conflict` when another request moved it first. A cancellation puts the stock back and releases the
/// coupon use in the same transaction, so it happens exactly once however many cancels race; it also
/// gives an assigned rider back. Leaving `packed` closes any open offer of the delivery.
/// `actor_unit_id` is the rider's unit when a rider made the move.
#[expect(
    clippy::too_many_arguments,
    reason = "one conditional write's inputs, all required"
)]
pub async fn transition(
    conn: &mut Conn,
    order_id: i64,
    from: OrderStatus,
    version: i64,
    to: OrderStatus,
    actor_user_id: i64,
    actor_unit_id: Option<i64>,
    reason: Option<&str>,
) -> Result<Order, OrderError> {
    from.transition(to).map_err(OrderError::Illegal)?;
    let now = super::now();
    with_retries(conn, async |conn| {
        on_conn!(conn, c => c.transaction(async move |c| {
            let cancelling = to == OrderStatus::Cancelled;
            let change = StatusChange {
                status: to.as_str(),
                cancel_reason: if cancelling { reason } else { None },
                cancelled_at: cancelling.then_some(now),
                delivered_at: (to == OrderStatus::Delivered).then_some(now),
                updated_at: now,
            };
            let order = diesel::update(orders::table.filter(
                orders::id.eq(order_id).and(orders::status.eq(from.as_str())).and(orders::version.eq(version)),
            ))
            .set((&change, orders::version.eq(orders::version + 1)))
            .returning(Order::as_returning())
            .get_result(c)
            .await
            .optional()?
            .ok_or(OrderError::Conflict)?;
            if from == OrderStatus::Packed {
                <super::entity_store::OfferRows as super::entity_store::OfferRowQueries<_>>::close_all(c, ENTITY, order_id, now).await?;
            }
            if cancelling && let Some(rider) = order.rider_unit_id {
                release_rider!(c, rider, order_id, now).await?;
            }
            if cancelling {
                // Money already taken for it goes back: the refund is owed by this same write, so it is
                // recorded exactly once however many cancellations race (the worker sends it).
                let reason = reason.unwrap_or("order cancelled");
                super::refunds::record_refunds!(c, super::payments::PURPOSE_ORDER, order_id, reason, Some(actor_user_id), now).await?;
                let lines: Vec<(i64, i32)> = order_items::table
                    .filter(order_items::order_id.eq(order_id))
                    .order(order_items::medicine_id.asc())
                    .select((order_items::medicine_id, order_items::quantity))
                    .load(c)
                    .await?;
                for (medicine_id, quantity) in lines {
                    diesel::update(medicines::table.find(medicine_id))
                        .set((
                            medicines::stock.eq(medicines::stock + quantity),
                            medicines::version.eq(medicines::version + 1),
                            medicines::updated_at.eq(now),
                        ))
                        .execute(c)
                        .await?;
                }
                if let Some(coupon_id) = order.coupon_id {
                    let released = diesel::delete(coupon_redemptions::table.filter(coupon_redemptions::order_id.eq(order_id)))
                        .execute(c)
                        .await?;
                    if released > 0 {
                        diesel::update(coupons::table.filter(coupons::id.eq(coupon_id).and(coupons::used_count.gt(0))))
                            .set((
                                coupons::used_count.eq(coupons::used_count - 1),
                                coupons::version.eq(coupons::version + 1),
                                coupons::updated_at.eq(now),
                            ))
                            .execute(c)
                            .await?;
                    }
                }
            }
            diesel::insert_into(entity_transitions::table)
                .values(&NewTransition {
                    entity_type: ENTITY,
                    entity_id: order_id,
                    event: if cancelling { "cancelled" } else { "status_changed" },
                    from_status: Some(from.as_str()),
                    to_status: to.as_str(),
                    actor_user_id: Some(actor_user_id),
                    reason,
                    at: now,
                    actor_unit_id,
                    command_id: None,
                    details: None,
                })
                .execute(c)
                .await?;
            Ok(order)
        }).await)
    })
    .await
}

/// The sealed delivery code of an order, if it has one.
pub async fn sealed_code(conn: &mut Conn, order_id: i64) -> QueryResult<Option<String>> {
    on_conn!(conn, c => order_delivery_codes::table
        .find(order_id)
        .select(order_delivery_codes::code_sealed)
        .first::<String>(c)
        .await
        .optional())
}

pub async fn find(conn: &mut Conn, id: i64) -> QueryResult<Option<Order>> {
    on_conn!(conn, c => orders::table.find(id).select(Order::as_select()).first(c).await.optional())
}

/// One page of a customer's orders, newest first, with the total count.
pub async fn list_for_user(
    conn: &mut Conn,
    user_id: i64,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<Order>, i64)> {
    on_conn!(conn, c => {
        let rows = orders::table
            .filter(orders::user_id.eq(user_id))
            .order((orders::placed_at.desc(), orders::id.desc()))
            .limit(limit)
            .offset(offset)
            .select(Order::as_select())
            .load(c)
            .await?;
        let total = orders::table.filter(orders::user_id.eq(user_id)).count().get_result(c).await?;
        Ok((rows, total))
    })
}

/// Every customer's orders, newest first, optionally only those in `status` (the back-office list).
pub async fn list_all(
    conn: &mut Conn,
    status: Option<&str>,
    limit: i64,
    offset: i64,
) -> QueryResult<(Vec<Order>, i64)> {
    on_conn!(conn, c => {
        let mut rows = orders::table.into_boxed();
        let mut total = orders::table.into_boxed();
        if let Some(status) = status {
            rows = rows.filter(orders::status.eq(status));
            total = total.filter(orders::status.eq(status));
        }
        let rows = rows
            .order((orders::placed_at.desc(), orders::id.desc()))
            .limit(limit)
            .offset(offset)
            .select(Order::as_select())
            .load(c)
            .await?;
        let total = total.count().get_result(c).await?;
        Ok((rows, total))
    })
}

pub async fn items(conn: &mut Conn, order_id: i64) -> QueryResult<Vec<OrderItem>> {
    on_conn!(conn, c => order_items::table
        .filter(order_items::order_id.eq(order_id))
        .order(order_items::medicine_id.asc())
        .select(OrderItem::as_select())
        .load(c)
        .await)
}

/// The order's recorded transitions, oldest first.
pub async fn transitions(conn: &mut Conn, order_id: i64) -> QueryResult<Vec<Transition>> {
    on_conn!(conn, c => entity_transitions::table
        .filter(entity_transitions::entity_type.eq(ENTITY).and(entity_transitions::entity_id.eq(order_id)))
        .order((entity_transitions::at.asc(), entity_transitions::id.asc()))
        .select(Transition::as_select())
        .load(c)
        .await)
}

/// Packed orders with no rider and no open offer that no live node is dispatching: their lease lapsed
/// (the node died), or they were never leased and have not changed since `before`.
pub async fn awaiting_rider(
    conn: &mut Conn,
    before: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<(i64, f64, f64)>> {
    let now = super::now();
    on_conn!(conn, c => orders::table
        .filter(orders::status.eq("packed"))
        .filter(orders::rider_unit_id.is_null())
        .filter(
            orders::dispatch_lease_until
                .lt(now)
                .or(orders::dispatch_lease_until.is_null().and(orders::updated_at.lt(before))),
        )
        .filter(diesel::dsl::not(diesel::dsl::exists(
            dispatch_offers::table.filter(
                dispatch_offers::request_kind
                    .eq(ENTITY)
                    .and(dispatch_offers::request_id.eq(orders::id))
                    .and(dispatch_offers::status.eq("offered"))
                    .and(dispatch_offers::expires_at.gt(now)),
            ),
        )))
        .order(orders::updated_at.asc())
        .limit(limit)
        .select((orders::id, orders::ship_lat, orders::ship_lng))
        .load(c)
        .await)
}

/// Claims the delivery of an order no live node is dispatching: one conditional write on its lease,
/// so one node of several wins.
pub async fn adopt_for_delivery(
    conn: &mut Conn,
    id: i64,
    before: NaiveDateTime,
    node: &str,
    until: NaiveDateTime,
) -> QueryResult<bool> {
    let now = super::now();
    let changed = on_conn!(conn, c => diesel::update(orders::table.filter(
            orders::id
                .eq(id)
                .and(orders::status.eq("packed"))
                .and(orders::rider_unit_id.is_null())
                .and(
                    orders::dispatch_lease_until
                        .lt(now)
                        .or(orders::dispatch_lease_until.is_null().and(orders::updated_at.lt(before))),
                ),
        ))
        .set((orders::dispatch_node.eq(node), orders::dispatch_lease_until.eq(until)))
        .execute(c)
        .await)?;
    Ok(changed == 1)
}

/// Renews this node's leases on the orders whose delivery it dispatches, unless another node holds an
/// unexpired lease. Returns the ids renewed.
pub async fn renew_leases(
    conn: &mut Conn,
    ids: &[i64],
    node: &str,
    now: NaiveDateTime,
    until: NaiveDateTime,
) -> QueryResult<Vec<i64>> {
    let ids = ids.to_vec();
    on_conn!(conn, c => diesel::update(
            orders::table.filter(orders::id.eq_any(ids.clone())).filter(
                orders::dispatch_node
                    .is_null()
                    .or(orders::dispatch_node.eq(node))
                    .or(orders::dispatch_lease_until.lt(now))
                    .or(orders::dispatch_lease_until.is_null()),
            ),
        )
        .set((orders::dispatch_node.eq(node), orders::dispatch_lease_until.eq(until)))
        .returning(orders::id)
        .load(c)
        .await)
}

/// The rider of `unit` hands over order `order_id` against the customer's code. One attempt is claimed
/// first with a conditional increment (`order_delivery_codes.attempts < MAX`), so wrong guesses are bounded however
/// many race; a right code then moves the order `out_for_delivery → delivered` (conditional), gives the
/// unit back and records the step, in one transaction.
pub async fn deliver(
    conn: &mut Conn,
    order_id: i64,
    unit: i64,
    by_user: i64,
    key: &[u8],
    entered: &str,
) -> Result<Order, OrderError> {
    use crate::domain::delivery::{MAX_ATTEMPTS, matches};
    let now = super::now();
    let order = find(conn, order_id).await?.ok_or(OrderError::NotFound)?;
    if order.rider_unit_id != Some(unit) {
        return Err(OrderError::NotFound);
    }
    if order.status != "out_for_delivery" {
        return Err(OrderError::NotOutForDelivery(order.status));
    }
    let hash = on_conn!(conn, c => orders::table
        .find(order_id)
        .select(orders::delivery_code_hash)
        .first::<Option<String>>(c)
        .await)?;
    let attempts = on_conn!(conn, c => diesel::update(order_delivery_codes::table.filter(
            order_delivery_codes::order_id
                .eq(order_id)
                .and(order_delivery_codes::attempts.lt(MAX_ATTEMPTS)),
        ))
        .set(order_delivery_codes::attempts.eq(order_delivery_codes::attempts + 1))
        .returning(order_delivery_codes::attempts)
        .get_result::<i32>(c)
        .await)
    .optional()?
    .ok_or(OrderError::CodeLocked)?;
    if !hash.is_some_and(|hash| matches(key, &hash, entered)) {
        return Err(OrderError::WrongCode {
            attempts_left: (MAX_ATTEMPTS - attempts).max(0),
        });
    }
    with_retries(conn, async |conn| {
        on_conn!(conn, c => c.transaction(async move |c| {
            let order = diesel::update(orders::table.filter(
                orders::id
                    .eq(order_id)
                    .and(orders::rider_unit_id.eq(unit))
                    .and(orders::status.eq("out_for_delivery")),
            ))
            .set((
                orders::status.eq("delivered"),
                orders::delivered_at.eq(now),
                orders::version.eq(orders::version + 1),
                orders::updated_at.eq(now),
            ))
            .returning(Order::as_returning())
            .get_result(c)
            .await
            .optional()?
            .ok_or(OrderError::Conflict)?;
            release_rider!(c, unit, order_id, now).await?;
            diesel::insert_into(entity_transitions::table)
                .values(&NewTransition {
                    entity_type: ENTITY,
                    entity_id: order_id,
                    event: "delivered",
                    from_status: Some("out_for_delivery"),
                    to_status: "delivered",
                    actor_user_id: Some(by_user),
                    actor_unit_id: Some(unit),
                    reason: Some("delivery code confirmed"),
                    command_id: None,
                    at: now,
                    details: None,
                })
                .execute(c)
                .await?;
            Ok(order)
        }).await)
    })
    .await
}
