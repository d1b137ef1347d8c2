//! `/payments`: Razorpay checkout for medicine orders and insurance purchases — create the provider
//! order, verify the checkout signature, receive webhooks — and, in offline mode only, a stand-in for the
//! checkout that signs a payment.
//!
//! Verification and webhooks share [`payments::settle`], so a payment is captured and its order
//! confirmed (or its policy issued) once, whichever arrives first and however often either is repeated.

use actix_web::{HttpRequest, HttpResponse, post, web};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Problems;
use crate::{
    auth::AuthUser,
    bus::Event,
    db::{
        doctors, insurance, orders,
        payments::{self, Action, Outcome, PaymentError, Settle, Settled, WebhookEvent},
        refunds::{self, Settlement, WebhookOutcome},
    },
    domain::{OrderStatus, PaymentMethod},
    error::{ApiError, ErrorBody, ErrorCode},
    integrations::razorpay::{self, MAX_ID_LEN},
    state::AppState,
};

/// Largest webhook body read; Razorpay's payment events are a few KiB.
pub const MAX_WEBHOOK_BYTES: usize = 64 * 1024;
/// Longest accepted signature (hex SHA-256 is 64).
const MAX_SIGNATURE_LEN: usize = 128;
/// Header carrying the webhook signature.
pub const SIGNATURE_HEADER: &str = "x-razorpay-signature";
/// Header carrying the webhook event id (the deduplication key).
pub const EVENT_ID_HEADER: &str = "x-razorpay-event-id";
/// Longest accepted stored failure description.
const MAX_FAILURE_CHARS: usize = 300;

impl From<PaymentError> for ApiError {
    fn from(error: PaymentError) -> Self {
        match error {
            PaymentError::NotFound => ApiError::not_found("payment"),
            PaymentError::NotPayable(why) => ApiError::new(ErrorCode::PaymentNotApplicable, why),
            PaymentError::AlreadyPaid => ApiError::new(ErrorCode::AlreadyPaid, "this is paid already"),
            PaymentError::Db(error) => error.into(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePaymentOrder {
    /// A medicine order to pay (give this or `insurance_purchase_id`).
    pub order_id: Option<i64>,
    /// A pending insurance purchase to pay.
    pub insurance_purchase_id: Option<i64>,
    /// An appointment booked with `payment_method: razorpay` to pay.
    pub appointment_id: Option<i64>,
}

/// What the Razorpay checkout needs.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentOrderView {
    pub razorpay_order_id: String,
    pub amount_paise: i64,
    pub currency: String,
    pub key_id: String,
    /// `order`, `insurance` or `appointment`.
    pub purpose: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insurance_purchase_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub appointment_id: Option<i64>,
    /// `created`, `authorized` or `failed` (a failed attempt may be retried on the same order).
    pub payment_status: String,
}

fn provider_failed(cause: anyhow::Error) -> ApiError {
    let mut error = ApiError::new(
        ErrorCode::PaymentProviderFailed,
        "the payment provider did not answer; retry",
    );
    error.cause = Some(cause);
    error
}

/// Something other than a medicine order awaiting online payment, as stored: never a client amount.
struct Payable {
    purpose: &'static str,
    reference: i64,
    amount_paise: i64,
    receipt: String,
}

/// The provider order of a pending insurance purchase or appointment (the same one on every call).
async fn create_reference_order(
    state: &AppState,
    auth: &AuthUser,
    due: Payable,
) -> Result<PaymentOrderView, ApiError> {
    let mut conn = state.db.read().await?;
    let existing = payments::for_reference(&mut conn, due.purpose, due.reference).await?;
    drop(conn);
    if existing.iter().any(|p| p.status == "captured") {
        return Err(PaymentError::AlreadyPaid.into());
    }
    let payment = match existing.into_iter().find(payments::Payment::is_open) {
        Some(open) => open,
        None => {
            let provider_order_id = state
                .payments
                .create_order(due.amount_paise, &due.receipt)
                .await
                .map_err(provider_failed)?;
            let mut conn = state.db.write().await?;
            payments::insert_for(
                &mut conn,
                due.purpose,
                auth.id.0,
                due.reference,
                due.amount_paise,
                &provider_order_id,
            )
            .await?
        }
    };
    let is = |purpose: &str| (due.purpose == purpose).then_some(due.reference);
    Ok(PaymentOrderView {
        razorpay_order_id: payment.provider_order_id,
        amount_paise: payment.amount_paise,
        currency: payment.currency,
        key_id: state.payments.key_id.clone(),
        purpose: due.purpose.to_owned(),
        order_id: None,
        insurance_purchase_id: is(payments::PURPOSE_INSURANCE),
        appointment_id: is(payments::PURPOSE_APPOINTMENT),
        payment_status: payment.status,
    })
}

/// What a pending insurance purchase of the caller owes.
async fn purchase_due(state: &AppState, auth: &AuthUser, purchase_id: i64) -> Result<Payable, ApiError> {
    let mut conn = state.db.read().await?;
    let purchase = insurance::find_purchase(&mut conn, purchase_id)
        .await?
        .filter(|p| p.user_id == auth.id.0)
        .ok_or_else(|| ApiError::not_found("insurance purchase"))?;
    if purchase.status == insurance::ACTIVE {
        return Err(ApiError::new(
            ErrorCode::AlreadyPaid,
            "the policy is issued and paid already",
        ));
    }
    if purchase.status != insurance::PENDING_PAYMENT {
        return Err(PaymentError::NotPayable(format!("the purchase is {}", purchase.status)).into());
    }
    Ok(Payable {
        purpose: payments::PURPOSE_INSURANCE,
        reference: purchase.id,
        amount_paise: purchase.premium_paise,
        receipt: format!("INS-{}", purchase.id),
    })
}

/// What an appointment of the caller booked for online payment owes: the fee fixed at booking.
async fn appointment_due(
    state: &AppState,
    auth: &AuthUser,
    appointment_id: i64,
) -> Result<Payable, ApiError> {
    let mut conn = state.db.read().await?;
    let (appointment, _, _) = doctors::find_for_user(&mut conn, appointment_id, auth.id.0)
        .await?
        .ok_or_else(|| ApiError::not_found("appointment"))?;
    if appointment.payment_id.is_some() {
        return Err(PaymentError::AlreadyPaid.into());
    }
    if appointment.status != doctors::PENDING_PAYMENT {
        return Err(PaymentError::NotPayable(format!("the appointment is {}", appointment.status)).into());
    }
    Ok(Payable {
        purpose: payments::PURPOSE_APPOINTMENT,
        reference: appointment.id,
        amount_paise: appointment.fee_paise,
        receipt: format!("APT-{}", appointment.id),
    })
}

#[utoipa::path(
    tag = "payments",
    request_body = CreatePaymentOrder,
    responses(
        (status = 200, body = PaymentOrderView, description = "the provider order (the same one on every call)"),
        (status = 404, description = "not_found", body = ErrorBody),
        (status = 409, description = "already_paid", body = ErrorBody),
        (status = 422, description = "payment_not_applicable", body = ErrorBody),
        (status = 502, description = "payment_provider_failed", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/payments/create-order")]
pub async fn create_order(
    state: web::Data<AppState>,
    auth: AuthUser,
    body: web::Json<CreatePaymentOrder>,
) -> Result<web::Json<PaymentOrderView>, ApiError> {
    let order_id = match (body.order_id, body.insurance_purchase_id, body.appointment_id) {
        (Some(order_id), None, None) => order_id,
        (None, Some(purchase_id), None) => {
            let due = purchase_due(&state, &auth, purchase_id).await?;
            return Ok(web::Json(create_reference_order(&state, &auth, due).await?));
        }
        (None, None, Some(appointment_id)) => {
            let due = appointment_due(&state, &auth, appointment_id).await?;
            return Ok(web::Json(create_reference_order(&state, &auth, due).await?));
        }
        _ => {
            return Err(ApiError::field(
                "order_id",
                "give exactly one of order_id, insurance_purchase_id and appointment_id",
            ));
        }
    };
    let mut conn = state.db.read().await?;
    let order = orders::find(&mut conn, order_id)
        .await?
        .filter(|o| o.user_id == auth.id.0)
        .ok_or_else(|| ApiError::not_found("order"))?;
    if order.payment_status == "paid" {
        return Err(PaymentError::AlreadyPaid.into());
    }
    if order.payment_method != PaymentMethod::Razorpay.as_str() {
        return Err(PaymentError::NotPayable("the order is paid on delivery".to_owned()).into());
    }
    if order.status != OrderStatus::Pending.as_str() {
        return Err(PaymentError::NotPayable(format!("the order is {}", order.status)).into());
    }
    let existing = payments::for_order(&mut conn, order.id).await?;
    drop(conn);
    if existing.iter().any(|p| p.status == "captured") {
        return Err(PaymentError::AlreadyPaid.into());
    }
    let payment = match existing.into_iter().find(payments::Payment::is_open) {
        Some(open) => open,
        None => {
            // Never a client amount: the order's stored total.
            let provider_order_id = state
                .payments
                .create_order(order.total_paise, &order.order_number)
                .await
                .map_err(provider_failed)?;
            let mut conn = state.db.write().await?;
            payments::insert_for_order(
                &mut conn,
                auth.id.0,
                order.id,
                order.total_paise,
                &provider_order_id,
            )
            .await?
        }
    };
    Ok(web::Json(PaymentOrderView {
        razorpay_order_id: payment.provider_order_id,
        amount_paise: payment.amount_paise,
        currency: payment.currency,
        key_id: state.payments.key_id.clone(),
        purpose: payments::PURPOSE_ORDER.to_owned(),
        order_id: Some(order.id),
        insurance_purchase_id: None,
        appointment_id: None,
        payment_status: payment.status,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyPayment {
    pub razorpay_order_id: String,
    pub razorpay_payment_id: String,
    pub razorpay_signature: String,
}

/// A captured payment and what it paid for: its order, or its insurance purchase and policy.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerifiedPayment {
    pub razorpay_order_id: String,
    pub razorpay_payment_id: String,
    pub payment_status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insurance_purchase_id: Option<i64>,
    /// `active` once the policy is issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purchase_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub appointment_id: Option<i64>,
    /// `confirmed` once paid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub appointment_status: Option<String>,
}

fn check_id(p: &mut Problems, field: &str, value: &str, prefix: &str) {
    if !razorpay::is_provider_id(value, prefix) {
        p.add(
            field,
            format!(
                "must be a Razorpay id: {prefix}_ and letters or digits, at most {MAX_ID_LEN} characters"
            ),
        );
    }
}

#[utoipa::path(
    tag = "payments",
    request_body = VerifyPayment,
    responses(
        (status = 200, body = VerifiedPayment, description = "captured (a replay answers the same)"),
        (status = 400, description = "validation_failed or signature_invalid", body = ErrorBody),
        (status = 404, description = "not_found (also another customer's order)", body = ErrorBody),
        (status = 409, description = "already_paid (by another payment) or conflict", body = ErrorBody),
        (status = 422, description = "payment_not_applicable (the payment is flagged)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/payments/verify")]
pub async fn verify(
    state: web::Data<AppState>,
    auth: AuthUser,
    body: web::Json<VerifyPayment>,
) -> Result<web::Json<VerifiedPayment>, ApiError> {
    let mut p = Problems::default();
    check_id(&mut p, "razorpay_order_id", &body.razorpay_order_id, "order");
    check_id(&mut p, "razorpay_payment_id", &body.razorpay_payment_id, "pay");
    if body.razorpay_signature.is_empty() || body.razorpay_signature.len() > MAX_SIGNATURE_LEN {
        p.add(
            "razorpay_signature",
            "must be the hex signature from the checkout",
        );
    }
    p.finish()?;
    let mut conn = state.db.read().await?;
    let found = payments::find_for_customer(&mut conn, &body.razorpay_order_id, auth.id.0).await?;
    drop(conn);
    if found.is_none() {
        return Err(ApiError::not_found("payment"));
    }
    if !razorpay::verify_checkout_signature(
        state.payments.key_secret(),
        &body.razorpay_order_id,
        &body.razorpay_payment_id,
        &body.razorpay_signature,
    ) {
        tracing::warn!(user = auth.id.0, order = %body.razorpay_order_id, "checkout signature refused");
        return Err(ApiError::new(
            ErrorCode::SignatureInvalid,
            "the checkout signature does not match",
        ));
    }
    let mut conn = state.db.write().await?;
    let settled = payments::settle(
        &mut conn,
        Settle {
            provider_order_id: &body.razorpay_order_id,
            customer_id: Some(auth.id.0),
            event: None,
            action: Action::Capture {
                payment_id: &body.razorpay_payment_id,
                signature: Some(&body.razorpay_signature),
                method: None,
                amount_paise: None,
            },
        },
    )
    .await?;
    drop(conn);
    announce(&state, &settled).await;
    let Some(payment) = settled.payment else {
        return Err(ApiError::not_found("payment"));
    };
    match settled.outcome {
        Outcome::Captured { .. } | Outcome::AlreadyCaptured => {
            let for_order = payment.purpose == payments::PURPOSE_ORDER;
            let for_appointment = payment.purpose == payments::PURPOSE_APPOINTMENT;
            let purchase = settled.purchase;
            Ok(web::Json(VerifiedPayment {
                razorpay_order_id: payment.provider_order_id,
                razorpay_payment_id: body.razorpay_payment_id.clone(),
                payment_status: payment.status,
                order_id: for_order.then_some(payment.reference_id),
                order_status: for_order.then(|| settled.order_status.unwrap_or_default()),
                insurance_purchase_id: purchase.as_ref().map(|p| p.id),
                purchase_status: purchase.as_ref().map(|p| p.status.clone()),
                policy_number: purchase.and_then(|p| p.policy_number),
                appointment_id: for_appointment.then_some(payment.reference_id),
                appointment_status: settled.appointment_status,
            }))
        }
        Outcome::OtherPaymentCaptured => Err(PaymentError::AlreadyPaid.into()),
        Outcome::Flagged => Err(PaymentError::NotPayable(
            "the payment is flagged for review; contact support".to_owned(),
        )
        .into()),
        _ => Err(ApiError::new(
            ErrorCode::Conflict,
            "another payment attempt holds this order; reload and retry",
        )),
    }
}

/// Publishes, after commit, the order confirmation or the policy issue a settlement made, and starts the
/// refund a capture for a cancelled order owes.
async fn announce(state: &web::Data<AppState>, settled: &Settled) {
    let purpose = settled.payment.as_ref().map(|p| p.purpose.as_str());
    if settled.outcome
        == (Outcome::Captured {
            order_confirmed: false,
        })
        && matches!(
            purpose,
            Some(payments::PURPOSE_ORDER | payments::PURPOSE_APPOINTMENT)
        )
    {
        // Captured for an order or appointment cancelled meanwhile: the refund it owes was recorded
        // with the capture; send it now.
        crate::refunds::kick(state);
    }
    if let (
        Outcome::Captured {
            order_confirmed: true,
        },
        Some(payment),
        Some(payments::PURPOSE_APPOINTMENT),
    ) = (settled.outcome, &settled.payment, purpose)
    {
        let event = serde_json::json!({
            "type": "appointment_confirmed",
            "v": 1,
            "appointment_id": payment.reference_id,
            "cause": "payment_captured",
            "at": chrono::Utc::now(),
        });
        state
            .bus
            .publish(&[format!("user:{}", payment.user_id)], event)
            .await;
        tracing::info!(
            appointment = payment.reference_id,
            "appointment confirmed by its payment"
        );
        return;
    }
    if settled.policy_issued
        && let Some(purchase) = &settled.purchase
    {
        let event = serde_json::json!({
            "type": "policy_issued",
            "v": 1,
            "purchase_id": purchase.id,
            "policy_number": purchase.policy_number,
            "starts_on": purchase.starts_on,
            "ends_on": purchase.ends_on,
            "at": chrono::Utc::now(),
        });
        state
            .bus
            .publish(&[format!("user:{}", purchase.user_id)], event)
            .await;
        tracing::info!(purchase = purchase.id, "insurance policy issued on payment");
        return;
    }
    let (
        Outcome::Captured {
            order_confirmed: true,
        },
        Some(payment),
    ) = (settled.outcome, &settled.payment)
    else {
        return;
    };
    let event = Event::OrderStatusChanged {
        order_id: payment.reference_id,
        from: OrderStatus::Pending.as_str().to_owned(),
        to: OrderStatus::Confirmed.as_str().to_owned(),
        cause: "payment_captured".to_owned(),
        at: chrono::Utc::now(),
    };
    state
        .bus
        .publish_event(&[format!("order:{}", payment.reference_id)], &event)
        .await;
    tracing::info!(
        order = payment.reference_id,
        payment = payment.id,
        "order confirmed by its payment"
    );
}

/// Reads at most `limit` bytes of the body: 413 above, without reading the rest.
async fn read_bounded(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    let too_large = || {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the body exceeds {limit} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(0));
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::new(ErrorCode::MalformedJson, format!("reading the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Razorpay's webhook body (the fields this server reads).
#[derive(Debug, Deserialize)]
struct WebhookBody {
    event: String,
    #[serde(default)]
    payload: WebhookPayload,
}

#[derive(Debug, Default, Deserialize)]
struct WebhookPayload {
    payment: Option<Wrapped<PaymentEntity>>,
    order: Option<Wrapped<OrderEntity>>,
    refund: Option<Wrapped<RefundEntity>>,
}

#[derive(Debug, Deserialize)]
struct RefundEntity {
    id: String,
    payment_id: String,
}

#[derive(Debug, Deserialize)]
struct Wrapped<T> {
    entity: T,
}

#[derive(Debug, Deserialize)]
struct PaymentEntity {
    id: String,
    order_id: Option<String>,
    amount: i64,
    method: Option<String>,
    error_description: Option<String>,
}

#[derive(Debug, Deserialize)]
struct OrderEntity {
    id: String,
}

/// The webhook's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookReceipt {
    /// `processed`, `duplicate` (this event id was seen before) or `ignored`.
    pub status: String,
}

#[utoipa::path(
    tag = "payments",
    request_body(content = String, description = "Razorpay's webhook JSON, signed as sent (at most 64 KiB)"),
    params(
        ("X-Razorpay-Signature" = String, Header, description = "hex HMAC-SHA256 of the raw body with the webhook secret"),
        ("X-Razorpay-Event-Id" = String, Header, description = "the event id; a redelivery changes nothing"),
    ),
    responses(
        (status = 200, body = WebhookReceipt),
        (status = 400, description = "signature_invalid, validation_failed or malformed_json", body = ErrorBody),
        (status = 413, description = "payload_too_large", body = ErrorBody),
    )
)]
#[post("/payments/webhook")]
pub async fn webhook(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let raw = read_bounded(&req, payload, MAX_WEBHOOK_BYTES).await?;
    let signature = req
        .headers()
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if signature.len() > MAX_SIGNATURE_LEN
        || !razorpay::verify_webhook_signature(state.payments.webhook_secret(), &raw, signature)
    {
        tracing::warn!("webhook with a missing or wrong signature refused");
        return Err(ApiError::new(
            ErrorCode::SignatureInvalid,
            "the webhook signature does not match the body",
        ));
    }
    let event_id = req
        .headers()
        .get(EVENT_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| !id.is_empty() && id.len() <= MAX_ID_LEN && id.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| ApiError::field("X-Razorpay-Event-Id", "must be the event id Razorpay sends"))?;
    let body: WebhookBody = serde_json::from_slice(&raw)
        .map_err(|e| ApiError::new(ErrorCode::MalformedJson, format!("not a Razorpay event: {e}")))?;
    let payload_text = String::from_utf8_lossy(&raw);
    if let ("refund.processed" | "refund.failed", Some(refund)) = (
        body.event.as_str(),
        body.payload.refund.as_ref().map(|w| &w.entity),
    ) {
        return refund_webhook(&state, &body.event, event_id, &payload_text, refund).await;
    }
    let payment = body.payload.payment.as_ref().map(|w| &w.entity);
    let provider_order_id = payment
        .and_then(|p| p.order_id.as_deref())
        .or(body.payload.order.as_ref().map(|w| w.entity.id.as_str()))
        .unwrap_or_default();
    let mut p = Problems::default();
    if !provider_order_id.is_empty() {
        check_id(
            &mut p,
            "payload.payment.entity.order_id",
            provider_order_id,
            "order",
        );
    }
    if let Some(payment) = payment {
        check_id(&mut p, "payload.payment.entity.id", &payment.id, "pay");
        if payment.method.as_ref().is_some_and(|m| m.len() > MAX_ID_LEN) {
            p.add("payload.payment.entity.method", "too long");
        }
    }
    p.finish()?;
    let failure: Option<String> = payment.map(|p| {
        p.error_description
            .as_deref()
            .unwrap_or("the payment failed")
            .chars()
            .take(MAX_FAILURE_CHARS)
            .collect()
    });
    let action = match (body.event.as_str(), payment) {
        ("payment.captured" | "order.paid", Some(entity)) => Action::Capture {
            payment_id: &entity.id,
            signature: None,
            method: entity.method.as_deref(),
            amount_paise: Some(entity.amount),
        },
        ("payment.authorized", Some(entity)) => Action::Authorize {
            payment_id: &entity.id,
            method: entity.method.as_deref(),
            amount_paise: entity.amount,
        },
        ("payment.failed", Some(entity)) => Action::Fail {
            payment_id: &entity.id,
            reason: failure.as_deref().unwrap_or("the payment failed"),
        },
        _ => Action::Nothing,
    };
    let mut conn = state.db.write().await?;
    let settled = payments::settle(
        &mut conn,
        Settle {
            provider_order_id,
            customer_id: None,
            event: Some(WebhookEvent {
                provider_event_id: event_id,
                event_type: &body.event,
                payload: &payload_text,
            }),
            action,
        },
    )
    .await?;
    drop(conn);
    announce(&state, &settled).await;
    let status = match settled.outcome {
        Outcome::Duplicate => "duplicate",
        Outcome::Ignored | Outcome::AlreadyCaptured => "ignored",
        Outcome::OtherPaymentCaptured => {
            tracing::warn!(
                order = provider_order_id,
                "a second payment was captured for a paid order; refund it"
            );
            "ignored"
        }
        Outcome::Flagged => {
            tracing::warn!(
                order = provider_order_id,
                "payment amount differs from the order; flagged"
            );
            "processed"
        }
        Outcome::Captured { .. } | Outcome::Authorized | Outcome::Failed => "processed",
    };
    tracing::info!(event = %body.event, event_id, outcome = ?settled.outcome, "webhook handled");
    Ok(HttpResponse::Ok().json(WebhookReceipt {
        status: status.to_owned(),
    }))
}

/// `refund.processed` / `refund.failed`: settles the refund the worker sent (once, whatever the
/// delivery order or count) and tells the customer when money went back.
async fn refund_webhook(
    state: &AppState,
    event_type: &str,
    event_id: &str,
    payload: &str,
    refund: &RefundEntity,
) -> Result<HttpResponse, ApiError> {
    let mut p = Problems::default();
    check_id(&mut p, "payload.refund.entity.id", &refund.id, "rfnd");
    check_id(
        &mut p,
        "payload.refund.entity.payment_id",
        &refund.payment_id,
        "pay",
    );
    p.finish()?;
    let settlement = if event_type == "refund.processed" {
        Settlement::Processed {
            provider_refund_id: &refund.id,
        }
    } else {
        Settlement::Failed {
            provider_refund_id: &refund.id,
            reason: "the provider reported the refund failed",
        }
    };
    let mut conn = state.db.write().await?;
    let outcome = refunds::settle_webhook(
        &mut conn,
        event_id,
        event_type,
        payload,
        &refund.payment_id,
        settlement,
    )
    .await?;
    drop(conn);
    let status = match &outcome {
        WebhookOutcome::Duplicate => "duplicate",
        WebhookOutcome::Ignored | WebhookOutcome::Settled(refunds::Outcome::Unchanged) => "ignored",
        WebhookOutcome::Settled(settled) => {
            if let refunds::Outcome::Failed = settled {
                tracing::error!(refund = %refund.id, "refund failed at the provider; staff must follow it up");
            }
            crate::refunds::announce(state, settled).await;
            "processed"
        }
    };
    tracing::info!(event = event_type, event_id, status, "refund webhook handled");
    Ok(HttpResponse::Ok().json(WebhookReceipt {
        status: status.to_owned(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SimulateCheckout {
    pub razorpay_order_id: String,
}

/// What Razorpay's checkout hands the client after a successful payment.
#[derive(Debug, Serialize, ToSchema)]
pub struct SimulatedPayment {
    pub razorpay_order_id: String,
    pub razorpay_payment_id: String,
    pub razorpay_signature: String,
}

#[utoipa::path(
    tag = "payments",
    request_body = SimulateCheckout,
    responses(
        (status = 200, body = SimulatedPayment),
        (status = 404, description = "not_found: not this customer's order, or real keys are configured", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/payments/simulate")]
pub async fn simulate(
    state: web::Data<AppState>,
    auth: AuthUser,
    body: web::Json<SimulateCheckout>,
) -> Result<web::Json<SimulatedPayment>, ApiError> {
    if !state.payments.is_offline() {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "the checkout stand-in exists in offline mode only",
        ));
    }
    let mut p = Problems::default();
    check_id(&mut p, "razorpay_order_id", &body.razorpay_order_id, "order");
    p.finish()?;
    let mut conn = state.db.read().await?;
    let payment = payments::find_for_customer(&mut conn, &body.razorpay_order_id, auth.id.0)
        .await?
        .ok_or_else(|| ApiError::not_found("payment"))?;
    drop(conn);
    let payment_id = razorpay::local_id("pay");
    let signature = razorpay::checkout_signature(
        state.payments.key_secret(),
        &payment.provider_order_id,
        &payment_id,
    );
    Ok(web::Json(SimulatedPayment {
        razorpay_order_id: payment.provider_order_id,
        razorpay_payment_id: payment_id,
        razorpay_signature: signature,
    }))
}
