//! `/admin/orders`: every customer's orders for the back office, filtered by status, each with the
//! statuses the state machine allows next (what the admin page offers as buttons). Moves themselves go
//! through `PUT /orders/{id}/status`.

use actix_web::{get, web};
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{Page, PageQuery};
use crate::{
    auth::{Authorized, extract::StaffOnly},
    db::orders::{self, Order},
    domain::OrderStatus,
    error::{ApiError, ErrorBody},
    state::AppState,
};

/// The statuses `from` may legally move to, in state-machine order.
pub fn next_statuses(from: OrderStatus) -> Vec<OrderStatus> {
    OrderStatus::ALL
        .into_iter()
        .filter(|to| from.transition(*to).is_ok())
        .collect()
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct OrderFilter {
    /// Only orders in this status.
    pub status: Option<OrderStatus>,
}

/// One row of the back-office order list.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminOrderView {
    pub id: i64,
    pub order_number: String,
    pub user_id: i64,
    pub status: String,
    pub payment_method: String,
    pub payment_status: String,
    pub total_paise: i64,
    pub ship_name: String,
    pub ship_city: String,
    pub placed_at: NaiveDateTime,
    pub version: i64,
    /// Where staff may move it next (empty when it is over).
    pub next_statuses: Vec<OrderStatus>,
}

impl TryFrom<Order> for AdminOrderView {
    type Error = ApiError;

    fn try_from(o: Order) -> Result<Self, ApiError> {
        let status = OrderStatus::parse(&o.status)
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("order {} has status {:?}", o.id, o.status)))?;
        Ok(Self {
            id: o.id,
            order_number: o.order_number,
            user_id: o.user_id,
            status: o.status,
            payment_method: o.payment_method,
            payment_status: o.payment_status,
            total_paise: o.total_paise,
            ship_name: o.ship_name,
            ship_city: o.ship_city,
            placed_at: o.placed_at,
            version: o.version,
            next_statuses: next_statuses(status),
        })
    }
}

/// Every customer's orders, newest first (staff and administrators).
#[utoipa::path(
    tag = "admin",
    params(PageQuery, OrderFilter),
    responses(
        (status = 200, body = Page<AdminOrderView>),
        (status = 400, description = "validation_failed", body = ErrorBody),
        (status = 403, description = "forbidden", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/admin/orders")]
pub async fn list_orders(
    state: web::Data<AppState>,
    _staff: Authorized<StaffOnly>,
    page: web::Query<PageQuery>,
    filter: web::Query<OrderFilter>,
) -> Result<web::Json<Page<AdminOrderView>>, ApiError> {
    let page = page.validate()?;
    let mut conn = state.db.read().await?;
    let status = filter.status.map(OrderStatus::as_str);
    let (rows, total) = orders::list_all(&mut conn, status, page.limit(), page.offset()).await?;
    drop(conn);
    let items = rows
        .into_iter()
        .map(AdminOrderView::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(web::Json(page.wrap(items, total)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_legal_moves_are_offered() {
        use OrderStatus::*;
        assert_eq!(next_statuses(Pending), [Confirmed, Cancelled]);
        assert_eq!(next_statuses(Packed), [Shipped, Cancelled]);
        assert_eq!(next_statuses(OutForDelivery), [Delivered]);
        assert!(next_statuses(Delivered).is_empty());
        assert!(next_statuses(Cancelled).is_empty());
    }
}
