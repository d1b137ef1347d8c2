//! Razorpay payments of medicine orders, insurance purchases and doctor appointments: the payment row per
//! provider order, and [`settle`], the one code path by which a checkout verification or a webhook moves
//! a payment (and confirms its order or appointment, or issues its insurance policy).
//!
//! Every move is a conditional write on the payment's status and provider payment id, so a replay, a
//! redelivery or a race changes nothing twice; a webhook's event id is claimed by the unique
//! `payment_events.provider_event_id` in the same transaction as its effect.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::{
    Conn,
    doctors::{self as doctor_rows},
    emergency::NewTransition,
    insurance,
    orders::{self as order_rows},
    schema::{
        appointments, entity_transitions, insurance_purchase_terms, insurance_purchases, orders,
        payment_events, payments,
    },
    with_retries,
};
use crate::{domain::order::OrderStatus, on_conn};

/// `payments.purpose` of medicine orders.
pub const PURPOSE_ORDER: &str = "order";
/// `payments.purpose` of insurance purchases.
pub const PURPOSE_INSURANCE: &str = "insurance";
/// `payments.purpose` of doctor appointments booked for online payment.
pub const PURPOSE_APPOINTMENT: &str = "appointment";
/// Prefix of `failure_reason` on a payment whose amount did not match: flagged for a person, never
/// captured or confirmed.
pub const AMOUNT_MISMATCH: &str = "amount_mismatch";

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = payments)]
pub struct Payment {
    pub id: i64,
    pub user_id: i64,
    pub purpose: String,
    pub reference_id: i64,
    pub provider_order_id: String,
    pub provider_payment_id: Option<String>,
    pub method: Option<String>,
    pub amount_paise: i64,
    pub currency: String,
    pub status: String,
    pub failure_reason: Option<String>,
    pub captured_at: Option<NaiveDateTime>,
    pub version: i64,
}

impl Payment {
    /// Flagged for a person (an amount mismatch): never captured by this server.
    pub fn is_flagged(&self) -> bool {
        self.failure_reason
            .as_deref()
            .is_some_and(|r| r.starts_with(AMOUNT_MISMATCH))
    }

    /// A payment the customer may still complete on its provider order.
    pub fn is_open(&self) -> bool {
        matches!(self.status.as_str(), "created" | "authorized" | "failed") && !self.is_flagged()
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = payments)]
struct NewPayment<'a> {
    user_id: i64,
    purpose: &'a str,
    reference_id: i64,
    provider_order_id: &'a str,
    amount_paise: i64,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

/// A webhook delivery to record (and deduplicate) with its effect.
#[derive(Debug, Clone, Copy)]
pub struct WebhookEvent<'a> {
    pub provider_event_id: &'a str,
    pub event_type: &'a str,
    pub payload: &'a str,
}

/// What a verification or webhook says happened to a payment.
#[derive(Debug, Clone, Copy)]
pub enum Action<'a> {
    /// The payment was captured (checkout signature verified, `payment.captured`, `order.paid`).
    /// `amount_paise` is checked against the stored amount when the provider reports one.
    Capture {
        payment_id: &'a str,
        signature: Option<&'a str>,
        method: Option<&'a str>,
        amount_paise: Option<i64>,
    },
    /// `payment.authorized`: only a `created` payment moves; a later status is never moved back.
    Authorize {
        payment_id: &'a str,
        method: Option<&'a str>,
        amount_paise: i64,
    },
    /// `payment.failed`: the attempt failed; the customer may pay again on the same provider order.
    Fail { payment_id: &'a str, reason: &'a str },
    /// An event this server records but does not act on.
    Nothing,
}

/// One settlement: which provider order, whose (verification is scoped to the customer), what
/// happened, and the webhook event that reported it.
#[derive(Debug, Clone, Copy)]
pub struct Settle<'a> {
    pub provider_order_id: &'a str,
    pub customer_id: Option<i64>,
    pub event: Option<WebhookEvent<'a>>,
    pub action: Action<'a>,
}

/// How a settlement ended. Every variant but `Captured` and `Authorized`/`Failed` changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// This call captured the payment; `order_confirmed` when it also moved the order (or the
    /// appointment) to confirmed.
    Captured {
        order_confirmed: bool,
    },
    /// Captured before, with this payment id (a replay or redelivery).
    AlreadyCaptured,
    /// The order is paid by another provider payment.
    OtherPaymentCaptured,
    Authorized,
    Failed,
    /// The amount differs from the stored one: the payment is flagged (status failed) and never captured.
    Flagged,
    /// The event changed nothing (an out-of-order or irrelevant event, an unknown provider order).
    Ignored,
    /// This webhook event id was processed before.
    Duplicate,
}

/// The result of [`settle`]: the payment as it is now and how it got there.
#[derive(Debug, Clone)]
pub struct Settled {
    pub payment: Option<Payment>,
    pub outcome: Outcome,
    /// The order's status after the settlement (for orders).
    pub order_status: Option<String>,
    /// The purchase after the settlement (for insurance).
    pub purchase: Option<insurance::Purchase>,
    /// This settlement issued the purchase's policy.
    pub policy_issued: bool,
    /// The appointment's status after the settlement (for appointments).
    pub appointment_status: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("no such payment")]
    NotFound,
    #[error("cannot be paid online: {0}")]
    NotPayable(String),
    #[error("paid already")]
    AlreadyPaid,
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

impl super::Retryable for PaymentError {
    fn db_error(&self) -> Option<&diesel::result::Error> {
        match self {
            Self::Db(error) => Some(error),
            _ => None,
        }
    }
}

/// The payments of an order, oldest first.
pub async fn for_order(conn: &mut Conn, order_id: i64) -> QueryResult<Vec<Payment>> {
    for_reference(conn, PURPOSE_ORDER, order_id).await
}

/// The payments of what `(purpose, reference)` names, oldest first.
pub async fn for_reference(conn: &mut Conn, purpose: &str, reference: i64) -> QueryResult<Vec<Payment>> {
    on_conn!(conn, c => payments::table
        .filter(payments::purpose.eq(purpose).and(payments::reference_id.eq(reference)))
        .order(payments::id.asc())
        .select(Payment::as_select())
        .load(c)
        .await)
}

/// The payment of a provider order if it belongs to `user_id`.
pub async fn find_for_customer(
    conn: &mut Conn,
    provider_order_id: &str,
    user_id: i64,
) -> QueryResult<Option<Payment>> {
    on_conn!(conn, c => payments::table
        .filter(payments::provider_order_id.eq(provider_order_id).and(payments::user_id.eq(user_id)))
        .select(Payment::as_select())
        .first(c)
        .await
        .optional())
}

/// Records the payment of `order_id` on `provider_order_id`, unless a concurrent call got there first:
/// the order row is claimed first (`UPDATE orders … WHERE status = 'pending'`, which holds its lock on
/// PostgreSQL and is serialised by the single writer on SQLite), then the existing payments are read
/// again, so two concurrent calls end with one payment row and both answer it.
pub async fn insert_for_order(
    conn: &mut Conn,
    user_id: i64,
    order_id: i64,
    amount_paise: i64,
    provider_order_id: &str,
) -> Result<Payment, PaymentError> {
    insert_for(
        conn,
        PURPOSE_ORDER,
        user_id,
        order_id,
        amount_paise,
        provider_order_id,
    )
    .await
}

/// Records the payment of a pending insurance purchase, exactly like [`insert_for_order`]: the purchase
/// row is claimed first (`… WHERE status = 'pending_payment'`), so concurrent calls end with one payment.
pub async fn insert_for_purchase(
    conn: &mut Conn,
    user_id: i64,
    purchase_id: i64,
    amount_paise: i64,
    provider_order_id: &str,
) -> Result<Payment, PaymentError> {
    insert_for(
        conn,
        PURPOSE_INSURANCE,
        user_id,
        purchase_id,
        amount_paise,
        provider_order_id,
    )
    .await
}

/// Records the payment of `(purpose, reference)` on `provider_order_id` for its owner, as
/// [`insert_for_order`] does: the payable row is claimed first (it must still await payment), then the
/// existing payments are read again, so concurrent calls end with one payment row.
pub async fn insert_for(
    conn: &mut Conn,
    purpose: &'static str,
    user_id: i64,
    reference: i64,
    amount_paise: i64,
    provider_order_id: &str,
) -> Result<Payment, PaymentError> {
    let now = super::now();
    with_retries(conn, async |conn| {
        on_conn!(conn, c => c.transaction(async move |c| {
            let claimed = if purpose == PURPOSE_APPOINTMENT {
                diesel::update(appointments::table.filter(
                    appointments::id
                        .eq(reference)
                        .and(appointments::user_id.eq(user_id))
                        .and(appointments::status.eq(doctor_rows::PENDING_PAYMENT)),
                ))
                .set(appointments::updated_at.eq(now))
                .execute(c)
                .await?
            } else if purpose == PURPOSE_INSURANCE {
                diesel::update(insurance_purchases::table.filter(
                    insurance_purchases::id
                        .eq(reference)
                        .and(insurance_purchases::user_id.eq(user_id))
                        .and(insurance_purchases::status.eq(insurance::PENDING_PAYMENT)),
                ))
                .set(insurance_purchases::updated_at.eq(now))
                .execute(c)
                .await?
            } else {
                diesel::update(orders::table.filter(
                    orders::id
                        .eq(reference)
                        .and(orders::user_id.eq(user_id))
                        .and(orders::status.eq(OrderStatus::Pending.as_str()))
                        .and(orders::payment_status.eq("pending")),
                ))
                .set(orders::updated_at.eq(now))
                .execute(c)
                .await?
            };
            if claimed == 0 {
                return Err(PaymentError::NotPayable(format!("the {purpose} is no longer awaiting payment")));
            }
            let existing: Vec<Payment> = payments::table
                .filter(payments::purpose.eq(purpose).and(payments::reference_id.eq(reference)))
                .order(payments::id.asc())
                .select(Payment::as_select())
                .load(c)
                .await?;
            if existing.iter().any(|p| p.status == "captured") {
                return Err(PaymentError::AlreadyPaid);
            }
            if let Some(open) = existing.into_iter().find(Payment::is_open) {
                return Ok(open);
            }
            Ok(diesel::insert_into(payments::table)
                .values(&NewPayment {
                    user_id,
                    purpose,
                    reference_id: reference,
                    provider_order_id,
                    amount_paise,
                    created_at: now,
                    updated_at: now,
                })
                .returning(Payment::as_returning())
                .get_result(c)
                .await?)
        }).await)
    })
    .await
}

/// The timeline reason of what a capture moved: the provider's payment id.
fn capture_reason(action: &Action<'_>) -> String {
    match action {
        Action::Capture { payment_id, .. } => format!("razorpay payment {payment_id}"),
        _ => "razorpay payment".to_owned(),
    }
}

/// The timeline row of what a capture moved: `(entity type, id)`, `event`, `(from, to)`.
fn captured_row<'a>(
    entity: (&'a str, i64),
    event: &'a str,
    (from, to): (&'a str, &'a str),
    actor: Option<i64>,
    reason: &'a str,
    at: NaiveDateTime,
) -> NewTransition<'a> {
    NewTransition {
        entity_type: entity.0,
        entity_id: entity.1,
        event,
        from_status: Some(from),
        to_status: to,
        actor_user_id: actor,
        reason: Some(reason),
        at,
        actor_unit_id: None,
        command_id: None,
        details: None,
    }
}

/// Applies one verification or webhook event in one transaction: the event id is claimed (a duplicate
/// changes nothing), the payment moves by a conditional write, and a capture confirms a pending order
/// (`OrderStatus::transition`, a conditional update and an `entity_transitions` row).
pub async fn settle(conn: &mut Conn, settle: Settle<'_>) -> Result<Settled, PaymentError> {
    let now = super::now();
    with_retries(conn, async |conn| {
        on_conn!(conn, c => c.transaction(async move |c| {
            // The payment row is locked first, by a write that changes no key (PostgreSQL takes a
            // FOR NO KEY UPDATE lock). Reading it plainly and then recording the event would take a
            // KEY SHARE lock through the event's foreign key in every concurrent call, and their later
            // updates of `provider_payment_id` (a unique column: FOR UPDATE) would deadlock each other.
            let target = payments::table.filter(payments::provider_order_id.eq(settle.provider_order_id));
            let payment = match settle.customer_id {
                Some(customer) => diesel::update(target.filter(payments::user_id.eq(customer)))
                    .set(payments::updated_at.eq(now))
                    .returning(Payment::as_returning())
                    .get_result(c)
                    .await
                    .optional()?,
                None => diesel::update(target)
                    .set(payments::updated_at.eq(now))
                    .returning(Payment::as_returning())
                    .get_result(c)
                    .await
                    .optional()?,
            };

            if let Some(event) = settle.event {
                let recorded = diesel::insert_into(payment_events::table)
                    .values((
                        payment_events::provider_event_id.eq(event.provider_event_id),
                        payment_events::event_type.eq(event.event_type),
                        payment_events::payment_id.eq(payment.as_ref().map(|p| p.id)),
                        payment_events::payload.eq(event.payload),
                        payment_events::signature_valid.eq(true),
                        payment_events::received_at.eq(now),
                        payment_events::processed_at.eq(now),
                    ))
                    .on_conflict(payment_events::provider_event_id)
                    .do_nothing()
                    .execute(c)
                    .await?;
                if recorded == 0 {
                    return Ok(Settled {
                        payment,
                        outcome: Outcome::Duplicate,
                        order_status: None,
                        purchase: None,
                        policy_issued: false,
                        appointment_status: None,
                    });
                }
            }
            let Some(payment) = payment else {
                return match settle.customer_id {
                    Some(_) => Err(PaymentError::NotFound),
                    None => Ok(Settled {
                        payment: None,
                        outcome: Outcome::Ignored,
                        order_status: None,
                        purchase: None,
                        policy_issued: false,
                        appointment_status: None,
                    }),
                };
            };
            let open_statuses = ["created", "authorized", "failed"];
            let not_flagged = payments::failure_reason
                .is_null()
                .or(payments::failure_reason.not_like(format!("{AMOUNT_MISMATCH}%")));

            let reported_amount = match settle.action {
                Action::Capture { amount_paise, .. } => amount_paise,
                Action::Authorize { amount_paise, .. } => Some(amount_paise),
                Action::Fail { .. } | Action::Nothing => None,
            };
            let mut outcome = match reported_amount {
                Some(amount) if amount != payment.amount_paise && payment.status != "captured" => {
                    let reason = format!(
                        "{AMOUNT_MISMATCH}: the provider reported {amount} paise, the order is {} paise",
                        payment.amount_paise
                    );
                    diesel::update(payments::table.filter(
                        payments::id.eq(payment.id).and(payments::status.eq_any(open_statuses)),
                    ))
                    .set((
                        payments::status.eq("failed"),
                        payments::failure_reason.eq(reason),
                        payments::version.eq(payments::version + 1),
                        payments::updated_at.eq(now),
                    ))
                    .execute(c)
                    .await?;
                    Outcome::Flagged
                }
                _ => Outcome::Ignored,
            };

            if outcome != Outcome::Flagged {
                outcome = match settle.action {
                    Action::Capture { payment_id, signature, method, .. } => {
                        let won = diesel::update(payments::table.filter(
                            payments::id
                                .eq(payment.id)
                                .and(payments::status.eq_any(open_statuses))
                                .and(not_flagged)
                                .and(
                                    payments::provider_payment_id
                                        .is_null()
                                        .or(payments::provider_payment_id.eq(payment_id)),
                                ),
                        ))
                        .set((
                            payments::status.eq("captured"),
                            payments::provider_payment_id.eq(payment_id),
                            payments::provider_signature.eq(signature),
                            payments::method.eq(method),
                            payments::failure_reason.eq(None::<String>),
                            payments::captured_at.eq(now),
                            payments::version.eq(payments::version + 1),
                            payments::updated_at.eq(now),
                        ))
                        .execute(c)
                        .await?;
                        if won == 1 {
                            Outcome::Captured { order_confirmed: false }
                        } else {
                            // Lost to an earlier capture (or the payment is flagged): read what won.
                            let now_stored = payments::table
                                .find(payment.id)
                                .select(Payment::as_select())
                                .first(c)
                                .await?;
                            // A refunded payment was captured before: a replay answers as for a capture.
                            match now_stored.status.as_str() {
                                "captured" | "refunded"
                                    if now_stored.provider_payment_id.as_deref() == Some(payment_id) =>
                                {
                                    Outcome::AlreadyCaptured
                                }
                                "captured" | "refunded" => Outcome::OtherPaymentCaptured,
                                _ if now_stored.is_flagged() => Outcome::Flagged,
                                _ => Outcome::Ignored,
                            }
                        }
                    }
                    Action::Authorize { payment_id, method, .. } => {
                        let moved = diesel::update(payments::table.filter(
                            payments::id.eq(payment.id).and(payments::status.eq("created")).and(
                                payments::provider_payment_id
                                    .is_null()
                                    .or(payments::provider_payment_id.eq(payment_id)),
                            ),
                        ))
                        .set((
                            payments::status.eq("authorized"),
                            payments::provider_payment_id.eq(payment_id),
                            payments::method.eq(method),
                            payments::version.eq(payments::version + 1),
                            payments::updated_at.eq(now),
                        ))
                        .execute(c)
                        .await?;
                        if moved == 1 { Outcome::Authorized } else { Outcome::Ignored }
                    }
                    Action::Fail { payment_id, reason } => {
                        // The attempt's id is released, so the customer can pay again on this order.
                        let moved = diesel::update(payments::table.filter(
                            payments::id
                                .eq(payment.id)
                                .and(payments::status.eq_any(["created", "authorized"]))
                                .and(
                                    payments::provider_payment_id
                                        .is_null()
                                        .or(payments::provider_payment_id.eq(payment_id)),
                                ),
                        ))
                        .set((
                            payments::status.eq("failed"),
                            payments::provider_payment_id.eq(None::<String>),
                            payments::failure_reason.eq(reason),
                            payments::version.eq(payments::version + 1),
                            payments::updated_at.eq(now),
                        ))
                        .execute(c)
                        .await?;
                        if moved == 1 { Outcome::Failed } else { Outcome::Ignored }
                    }
                    Action::Nothing => Outcome::Ignored,
                };
            }

            let mut order_status = None;
            if payment.purpose == PURPOSE_ORDER {
                if let Outcome::Captured { .. } = outcome {
                    let from = OrderStatus::Pending;
                    let confirmed = from.transition(OrderStatus::Confirmed).is_ok()
                        && diesel::update(orders::table.filter(
                            orders::id.eq(payment.reference_id).and(orders::status.eq(from.as_str())),
                        ))
                        .set((
                            orders::status.eq(OrderStatus::Confirmed.as_str()),
                            orders::payment_status.eq("paid"),
                            orders::version.eq(orders::version + 1),
                            orders::updated_at.eq(now),
                        ))
                        .execute(c)
                        .await?
                            == 1;
                    if confirmed {
                        let reason = capture_reason(&settle.action);
                        diesel::insert_into(entity_transitions::table)
                            .values(&captured_row(
                                (order_rows::ENTITY, payment.reference_id),
                                "payment_captured",
                                (from.as_str(), OrderStatus::Confirmed.as_str()),
                                settle.customer_id,
                                &reason,
                                now,
                            ))
                            .execute(c)
                            .await?;
                    } else {
                        // Money taken for an order that moved on (e.g. cancelled meanwhile): the order
                        // records it as paid, its status is not touched, and a cancelled order's money
                        // is owed back at once.
                        let status: Option<String> = diesel::update(orders::table.find(payment.reference_id))
                            .set((orders::payment_status.eq("paid"), orders::updated_at.eq(now)))
                            .returning(orders::status)
                            .get_result(c)
                            .await
                            .optional()?;
                        if status.as_deref() == Some(OrderStatus::Cancelled.as_str()) {
                            super::refunds::record_refunds!(
                                c,
                                PURPOSE_ORDER,
                                payment.reference_id,
                                "paid after the order was cancelled",
                                None::<i64>,
                                now
                            )
                            .await?;
                        }
                        tracing::warn!(order = payment.reference_id, "payment captured for an order that is not pending");
                    }
                    outcome = Outcome::Captured { order_confirmed: confirmed };
                }
                order_status = orders::table
                    .find(payment.reference_id)
                    .select(orders::status)
                    .first::<String>(c)
                    .await
                    .optional()?;
            }
            let mut purchase = None;
            let mut policy_issued = false;
            if payment.purpose == PURPOSE_INSURANCE {
                if let Outcome::Captured { .. } = outcome {
                    // The policy is issued once: only a purchase still awaiting payment moves, under the
                    // terms fixed when it was bought.
                    let tenure = insurance_purchase_terms::table
                        .find(payment.reference_id)
                        .select(insurance_purchase_terms::tenure_months)
                        .first::<i32>(c)
                        .await
                        .optional()?;
                    let period = tenure.and_then(|months| {
                        insurance::cover_period(super::doctors::local_today(now), months)
                    });
                    if let Some((starts, ends)) = period {
                        policy_issued = diesel::update(insurance_purchases::table.filter(
                            insurance_purchases::id
                                .eq(payment.reference_id)
                                .and(insurance_purchases::status.eq(insurance::PENDING_PAYMENT)),
                        ))
                        .set((
                            insurance_purchases::status.eq(insurance::ACTIVE),
                            insurance_purchases::policy_number
                                .eq(insurance::policy_number(payment.reference_id, starts)),
                            insurance_purchases::starts_on.eq(starts),
                            insurance_purchases::ends_on.eq(ends),
                            insurance_purchases::payment_id.eq(payment.id),
                            insurance_purchases::version.eq(insurance_purchases::version + 1),
                            insurance_purchases::updated_at.eq(now),
                        ))
                        .execute(c)
                        .await?
                            == 1;
                    }
                    if policy_issued {
                        let reason = capture_reason(&settle.action);
                        diesel::insert_into(entity_transitions::table)
                            .values(&captured_row(
                                (insurance::ENTITY, payment.reference_id),
                                "policy_issued",
                                (insurance::PENDING_PAYMENT, insurance::ACTIVE),
                                settle.customer_id,
                                &reason,
                                now,
                            ))
                            .execute(c)
                            .await?;
                    } else {
                        tracing::warn!(
                            purchase = payment.reference_id,
                            "payment captured for an insurance purchase not awaiting payment; refund it"
                        );
                    }
                }
                purchase = insurance_purchases::table
                    .find(payment.reference_id)
                    .select(insurance::Purchase::as_select())
                    .first(c)
                    .await
                    .optional()?;
            }
            let mut appointment_status = None;
            if payment.purpose == PURPOSE_APPOINTMENT {
                if let Outcome::Captured { .. } = outcome {
                    // Only an appointment still awaiting payment is confirmed; one that was cancelled
                    // (or lapsed unpaid) meanwhile owes the money back at once.
                    let confirmed = diesel::update(appointments::table.filter(
                        appointments::id
                            .eq(payment.reference_id)
                            .and(appointments::status.eq(doctor_rows::PENDING_PAYMENT)),
                    ))
                    .set((
                        appointments::status.eq(doctor_rows::CONFIRMED),
                        appointments::payment_id.eq(payment.id),
                        appointments::version.eq(appointments::version + 1),
                        appointments::updated_at.eq(now),
                    ))
                    .execute(c)
                    .await?
                        == 1;
                    if confirmed {
                        let reason = capture_reason(&settle.action);
                        diesel::insert_into(entity_transitions::table)
                            .values(&captured_row(
                                (doctor_rows::ENTITY, payment.reference_id),
                                "payment_captured",
                                (doctor_rows::PENDING_PAYMENT, doctor_rows::CONFIRMED),
                                settle.customer_id,
                                &reason,
                                now,
                            ))
                            .execute(c)
                            .await?;
                    } else {
                        super::refunds::record_refunds!(
                            c,
                            PURPOSE_APPOINTMENT,
                            payment.reference_id,
                            "paid after the appointment was cancelled",
                            None::<i64>,
                            now
                        )
                        .await?;
                        tracing::warn!(
                            appointment = payment.reference_id,
                            "payment captured for an appointment not awaiting payment; refund recorded"
                        );
                    }
                    outcome = Outcome::Captured { order_confirmed: confirmed };
                }
                appointment_status = appointments::table
                    .find(payment.reference_id)
                    .select(appointments::status)
                    .first::<String>(c)
                    .await
                    .optional()?;
            }
            let payment = payments::table
                .find(payment.id)
                .select(Payment::as_select())
                .first(c)
                .await?;
            Ok(Settled {
                payment: Some(payment),
                outcome,
                order_status,
                purchase,
                policy_issued,
                appointment_status,
            })
        }).await)
    })
    .await
}
