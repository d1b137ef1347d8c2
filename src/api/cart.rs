//! `/cart`: the customer's cart with current prices, and a coupon preview. Another user's line answers
//! 404. Quantities are checked against `max_per_order` and stock here as a courtesy; stock is claimed
//! only at checkout.

use actix_web::{HttpResponse, delete, get, post, put, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Problems;
use crate::{
    auth::AuthUser,
    db::{
        cart::{self, AddOutcome},
        catalog::Medicine,
        coupons::{self, CouponProblem},
    },
    domain::order::{PricedLine, Totals, totals},
    error::{ApiError, ErrorBody, ErrorCode},
    state::AppState,
};

/// Most units of one medicine a request may ask for (each medicine's `max_per_order` is lower or equal).
pub const MAX_LINE_QUANTITY: i32 = 100;

#[derive(Debug, Serialize, ToSchema)]
pub struct CartLineView {
    pub id: i64,
    pub medicine_id: i64,
    pub name: String,
    pub unit_price_paise: i64,
    pub mrp_paise: i64,
    pub quantity: i32,
    pub line_total_paise: i64,
    pub stock: i32,
    pub max_per_order: i32,
    pub prescription_required: bool,
    /// False when the medicine was withdrawn or the stock no longer covers the quantity.
    pub available: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CartView {
    pub items: Vec<CartLineView>,
    /// Units across all lines.
    pub item_count: i64,
    /// Sum of the available lines at current prices, in paise.
    pub subtotal_paise: i64,
}

fn line_view(item: cart::CartItem, medicine: Medicine) -> CartLineView {
    CartLineView {
        id: item.id,
        medicine_id: medicine.id,
        available: medicine.is_active && medicine.stock >= item.quantity,
        line_total_paise: medicine.price_paise * i64::from(item.quantity),
        name: medicine.name,
        unit_price_paise: medicine.price_paise,
        mrp_paise: medicine.mrp_paise,
        quantity: item.quantity,
        stock: medicine.stock,
        max_per_order: medicine.max_per_order,
        prescription_required: medicine.prescription_required,
    }
}

async fn load_cart(state: &AppState, user_id: i64) -> Result<(CartView, Vec<PricedLine>), ApiError> {
    let mut conn = state.db.read().await?;
    let lines = cart::lines(&mut conn, user_id).await?;
    let priced: Vec<PricedLine> = lines
        .iter()
        .filter(|(item, m)| m.is_active && m.stock >= item.quantity)
        .map(|(item, m)| PricedLine {
            unit_price_paise: m.price_paise,
            quantity: item.quantity,
            gst_rate_percent: m.gst_rate_percent,
        })
        .collect();
    let items: Vec<CartLineView> = lines.into_iter().map(|(i, m)| line_view(i, m)).collect();
    let view = CartView {
        item_count: items.iter().map(|l| i64::from(l.quantity)).sum(),
        subtotal_paise: totals(&priced, 0).subtotal_paise,
        items,
    };
    Ok((view, priced))
}

fn check_quantity(p: &mut Problems, quantity: i32) {
    if !(1..=MAX_LINE_QUANTITY).contains(&quantity) {
        p.add("quantity", format!("must be between 1 and {MAX_LINE_QUANTITY}"));
    }
}

/// The refusal for a quantity over the medicine's per-order limit (400) or its stock (409).
fn too_many(medicine: &Medicine, wanted: i32) -> ApiError {
    if wanted > medicine.max_per_order {
        ApiError::field(
            "quantity",
            format!(
                "at most {} of {} per order",
                medicine.max_per_order, medicine.name
            ),
        )
    } else {
        ApiError::new(
            ErrorCode::OutOfStock,
            format!("only {} of {} in stock", medicine.stock, medicine.name),
        )
        .with_details(serde_json::json!({ "medicine_id": medicine.id, "available": medicine.stock }))
    }
}

#[utoipa::path(tag = "cart", responses((status = 200, body = CartView)), security(("bearer" = [])))]
#[get("/cart")]
pub async fn get_cart(state: web::Data<AppState>, auth: AuthUser) -> Result<web::Json<CartView>, ApiError> {
    Ok(web::Json(load_cart(&state, auth.id.0).await?.0))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddToCart {
    pub medicine_id: i64,
    pub quantity: i32,
}

#[utoipa::path(
    tag = "cart",
    request_body = AddToCart,
    responses(
        (status = 201, body = CartView),
        (status = 400, description = "validation_failed (quantity, max_per_order, cart size)", body = ErrorBody),
        (status = 404, description = "not_found: no such active medicine", body = ErrorBody),
        (status = 409, description = "out_of_stock", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/cart/items")]
pub async fn add_item(
    state: web::Data<AppState>,
    auth: AuthUser,
    body: web::Json<AddToCart>,
) -> Result<HttpResponse, ApiError> {
    let mut p = Problems::default();
    check_quantity(&mut p, body.quantity);
    p.finish()?;
    let mut conn = state.db.write().await?;
    let outcome = match cart::add(&mut conn, auth.id.0, body.medicine_id, body.quantity).await {
        // Two concurrent first adds of one medicine: the UNIQUE (user, medicine) line lets one insert
        // win; the other runs again and increments the winner's line.
        Err(diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)) => {
            cart::add(&mut conn, auth.id.0, body.medicine_id, body.quantity).await?
        }
        other => other?,
    };
    drop(conn);
    match outcome {
        AddOutcome::Saved(_) => Ok(HttpResponse::Created().json(load_cart(&state, auth.id.0).await?.0)),
        AddOutcome::NoMedicine => Err(ApiError::not_found("medicine")),
        AddOutcome::TooMany { medicine, wanted } => Err(too_many(&medicine, wanted)),
        AddOutcome::CartFull => Err(ApiError::field(
            "medicine_id",
            format!("a cart holds at most {} medicines", cart::MAX_CART_LINES),
        )),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CartQuantity {
    pub quantity: i32,
}

#[utoipa::path(
    tag = "cart",
    request_body = CartQuantity,
    params(("id" = i64, Path, description = "Cart line id")),
    responses(
        (status = 200, body = CartView),
        (status = 400, description = "validation_failed", body = ErrorBody),
        (status = 404, description = "not_found", body = ErrorBody),
        (status = 409, description = "out_of_stock", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[put("/cart/items/{id}")]
pub async fn update_item(
    state: web::Data<AppState>,
    auth: AuthUser,
    id: web::Path<i64>,
    body: web::Json<CartQuantity>,
) -> Result<web::Json<CartView>, ApiError> {
    let mut p = Problems::default();
    check_quantity(&mut p, body.quantity);
    p.finish()?;
    let mut conn = state.db.write().await?;
    let (_, medicine) = cart::find_owned(&mut conn, auth.id.0, *id)
        .await?
        .ok_or_else(|| ApiError::not_found("cart item"))?;
    if !medicine.is_active {
        return Err(ApiError::not_found("medicine"));
    }
    if body.quantity > medicine.max_per_order || body.quantity > medicine.stock {
        return Err(too_many(&medicine, body.quantity));
    }
    cart::set_quantity(&mut conn, auth.id.0, *id, body.quantity)
        .await?
        .ok_or_else(|| ApiError::not_found("cart item"))?;
    drop(conn);
    Ok(web::Json(load_cart(&state, auth.id.0).await?.0))
}

#[utoipa::path(
    tag = "cart",
    params(("id" = i64, Path, description = "Cart line id")),
    responses((status = 204), (status = 404, description = "not_found", body = ErrorBody)),
    security(("bearer" = []))
)]
#[delete("/cart/items/{id}")]
pub async fn delete_item(
    state: web::Data<AppState>,
    auth: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.db.write().await?;
    if cart::delete_owned(&mut conn, auth.id.0, *id).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::not_found("cart item"))
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CouponCode {
    pub code: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CouponPreview {
    pub code: String,
    pub description: String,
    /// What the order would cost with this coupon, at current prices.
    pub totals: Totals,
}

/// Maps a coupon refusal to its error code (422 invalid, 409 exhausted).
pub fn coupon_error(problem: CouponProblem) -> ApiError {
    match problem {
        CouponProblem::Invalid(message) => ApiError::new(ErrorCode::CouponInvalid, message),
        CouponProblem::Exhausted(message) => ApiError::new(ErrorCode::CouponExhausted, message),
    }
}

/// Trims and upper-cases a coupon code, refusing empty or overlong ones.
pub fn parse_coupon_code(p: &mut Problems, field: &str, raw: &str) -> Option<String> {
    let code = coupons::normalise_code(raw);
    if code.is_empty()
        || code.len() > 40
        || !code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        p.add(field, "must be 1 to 40 letters, digits, '-' or '_'");
        return None;
    }
    Some(code)
}

#[utoipa::path(
    tag = "cart",
    request_body = CouponCode,
    responses(
        (status = 200, body = CouponPreview),
        (status = 409, description = "coupon_exhausted", body = ErrorBody),
        (status = 422, description = "coupon_invalid or cart_empty", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/cart/coupon/preview")]
pub async fn preview_coupon(
    state: web::Data<AppState>,
    auth: AuthUser,
    body: web::Json<CouponCode>,
) -> Result<web::Json<CouponPreview>, ApiError> {
    let mut p = Problems::default();
    let code = parse_coupon_code(&mut p, "code", &body.code);
    p.finish()?;
    let code = code.unwrap_or_default();
    let (_, priced) = load_cart(&state, auth.id.0).await?;
    if priced.is_empty() {
        return Err(ApiError::new(
            ErrorCode::CartEmpty,
            "the cart has nothing to order",
        ));
    }
    let subtotal = totals(&priced, 0).subtotal_paise;
    let mut conn = state.db.read().await?;
    let coupon = coupons::find_by_code(&mut conn, &code)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::CouponInvalid, "no such coupon"))?;
    let discount = coupon
        .discount_for(subtotal, crate::db::now())
        .map_err(coupon_error)?;
    coupons::check_user_rules(&mut conn, &coupon, auth.id.0)
        .await?
        .map_err(coupon_error)?;
    Ok(web::Json(CouponPreview {
        code: coupon.code,
        description: coupon.description,
        totals: totals(&priced, discount),
    }))
}
