//! `GET /orders/{id}/invoice.pdf`: the order's tax invoice as a PDF, for its owner and for staff; others
//! get 404, as for the order itself.

use actix_web::{HttpResponse, get, http::header, web};

use crate::{
    auth::AuthUser,
    db::{self, orders},
    domain::{OrderStatus, Role},
    error::{ApiError, ErrorBody, ErrorCode},
    invoice::{self, InvoiceData},
    state::AppState,
};

/// Orders that have an invoice: confirmed (paid, or cash on delivery accepted) and onwards.
fn invoiced(status: &str) -> bool {
    matches!(
        OrderStatus::parse(status),
        Some(
            OrderStatus::Confirmed
                | OrderStatus::Packed
                | OrderStatus::Shipped
                | OrderStatus::OutForDelivery
                | OrderStatus::Delivered
        )
    )
}

#[utoipa::path(
    tag = "orders",
    params(("id" = i64, Path, description = "Order id")),
    responses(
        (status = 200, description = "the invoice", content_type = "application/pdf"),
        (status = 404, description = "not_found", body = ErrorBody),
        (status = 409, description = "invoice_not_available (not confirmed yet, or cancelled)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[get("/orders/{id}/invoice.pdf")]
pub async fn invoice_pdf(
    state: web::Data<AppState>,
    auth: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.db.read().await?;
    let order = orders::find(&mut conn, *id)
        .await?
        .filter(|o| o.user_id == auth.id.0 || auth.has_role(&[Role::Staff, Role::Admin]))
        .ok_or_else(|| ApiError::not_found("order"))?;
    if !invoiced(&order.status) {
        return Err(ApiError::new(
            ErrorCode::InvoiceNotAvailable,
            format!("an order that is {} has no invoice", order.status),
        ));
    }
    let lines = db::mail::invoice_lines(&mut conn, order.id).await?;
    let email = db::users::find(&mut conn, order.user_id)
        .await?
        .and_then(|u| u.email);
    drop(conn);
    let data = InvoiceData {
        order: &order,
        lines: &lines,
        customer_email: email.as_deref(),
    };
    let pdf = invoice::render(&state.settings.invoice, &data);
    Ok(HttpResponse::Ok()
        .content_type("application/pdf")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("inline; filename=\"invoice-{}.pdf\"", order.order_number),
        ))
        .insert_header((header::CACHE_CONTROL, "private, no-store"))
        .body(pdf))
}
