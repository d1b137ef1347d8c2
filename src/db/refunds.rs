//! Refunds of captured payments: recorded in the same transaction as the cancellation that owes them,
//! then sent to the provider by a worker on any node. Each attempt is claimed by a conditional write
//! (so two nodes never send the same refund at once, and a node that dies mid-call leaves a lease that
//! lapses), the provider call carries an idempotency key derived from the refund's id (so a retry after
//! a lost answer never refunds twice), and applying the provider's answer is one conditional
//! transaction that moves the refund, the payment and the order exactly once.

use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde::Serialize;
use utoipa::ToSchema;

use super::{
    Conn,
    emergency::NewTransition,
    orders::ENTITY as ORDER_ENTITY,
    payments::PURPOSE_ORDER,
    schema::{entity_transitions, orders, payment_events, payments, refunds},
    with_retries,
};
use crate::on_conn;

/// Refunds claimed per sweep at most; the rest wait for the next sweep.
pub const SWEEP_BATCH: i64 = 50;

/// Records a full refund of every captured payment of `(purpose, reference)` that has no live refund
/// yet. Expands to a future (`Result<usize, diesel::result::Error>`, the refunds recorded) to await
/// inside a transaction in a backend arm of `on_conn!`, next to the write that makes the refund owed.
macro_rules! record_refunds {
    ($c:expr, $purpose:expr, $reference:expr, $reason:expr, $requested_by:expr, $now:expr) => {
        async {
            use $crate::db::schema::{payments as p, refunds as r};
            let captured: Vec<(i64, i64, i64)> = p::table
                .filter(
                    p::purpose
                        .eq($purpose)
                        .and(p::reference_id.eq($reference))
                        .and(p::status.eq("captured")),
                )
                .order(p::id.asc())
                .select((p::id, p::amount_paise, p::refunded_paise))
                .load($c)
                .await?;
            let mut recorded = 0_usize;
            for (payment_id, amount, refunded) in captured {
                let live: i64 = r::table
                    .filter(r::payment_id.eq(payment_id).and(r::status.ne("failed")))
                    .count()
                    .get_result($c)
                    .await?;
                if live > 0 || amount <= refunded {
                    continue;
                }
                recorded += diesel::insert_into(r::table)
                    .values((
                        r::payment_id.eq(payment_id),
                        r::amount_paise.eq(amount - refunded),
                        r::reason.eq($reason),
                        r::status.eq("pending"),
                        r::requested_by.eq($requested_by),
                        r::next_attempt_at.eq($now),
                        r::created_at.eq($now),
                        r::updated_at.eq($now),
                    ))
                    .execute($c)
                    .await?;
            }
            Ok::<usize, diesel::result::Error>(recorded)
        }
    };
}
pub(crate) use record_refunds;

/// The body of [`settle`], to run inside a transaction in a backend arm of `on_conn!`.
macro_rules! settle_in {
    ($c:expr, $refund_id:expr, $settlement:expr, $now:expr) => {
        async {
            let (provider_refund_id, status, error) = match $settlement {
                Settlement::Processed { provider_refund_id } => (provider_refund_id, "processed", None),
                Settlement::Failed {
                    provider_refund_id,
                    reason,
                } => (
                    provider_refund_id,
                    "failed",
                    Some(reason.chars().take(500).collect::<String>()),
                ),
            };
            let refund: Option<Refund> = diesel::update(
                refunds::table.filter(
                    refunds::id.eq($refund_id).and(refunds::status.eq("pending")).and(
                        refunds::provider_refund_id
                            .is_null()
                            .or(refunds::provider_refund_id.eq(provider_refund_id)),
                    ),
                ),
            )
            .set((
                refunds::status.eq(status),
                refunds::provider_refund_id.eq(provider_refund_id),
                refunds::processed_at.eq((status == "processed").then_some($now)),
                refunds::last_error.eq(error),
                refunds::version.eq(refunds::version + 1),
                refunds::updated_at.eq($now),
            ))
            .returning(Refund::as_returning())
            .get_result($c)
            .await
            .optional()?;
            let Some(refund) = refund else {
                return Ok::<Outcome, diesel::result::Error>(Outcome::Unchanged);
            };
            if status != "processed" {
                return Ok(Outcome::Failed);
            }
            // The check constraint (refunded ≤ amount) guards the sum; only full refunds are recorded.
            let (user_id, purpose, reference_id, amount, refunded): (i64, String, i64, i64, i64) =
                diesel::update(payments::table.find(refund.payment_id))
                    .set((
                        payments::refunded_paise.eq(payments::refunded_paise + refund.amount_paise),
                        payments::version.eq(payments::version + 1),
                        payments::updated_at.eq($now),
                    ))
                    .returning((
                        payments::user_id,
                        payments::purpose,
                        payments::reference_id,
                        payments::amount_paise,
                        payments::refunded_paise,
                    ))
                    .get_result($c)
                    .await?;
            if refunded >= amount {
                diesel::update(payments::table.find(refund.payment_id))
                    .set(payments::status.eq("refunded"))
                    .execute($c)
                    .await?;
                if purpose == PURPOSE_ORDER {
                    let order_status: Option<String> = diesel::update(orders::table.find(reference_id))
                        .set((orders::payment_status.eq("refunded"), orders::updated_at.eq($now)))
                        .returning(orders::status)
                        .get_result($c)
                        .await
                        .optional()?;
                    if let Some(order_status) = order_status {
                        let reason = format!("refund {provider_refund_id}");
                        diesel::insert_into(entity_transitions::table)
                            .values(&NewTransition {
                                entity_type: ORDER_ENTITY,
                                entity_id: reference_id,
                                event: "refunded",
                                from_status: Some(&order_status),
                                to_status: &order_status,
                                actor_user_id: None,
                                reason: Some(&reason),
                                at: $now,
                                actor_unit_id: None,
                                command_id: None,
                                details: None,
                            })
                            .execute($c)
                            .await?;
                    }
                }
            }
            Ok(Outcome::Processed(Applied {
                refund_id: refund.id,
                amount_paise: refund.amount_paise,
                purpose,
                reference_id,
                user_id,
            }))
        }
    };
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = refunds)]
pub struct Refund {
    pub id: i64,
    pub payment_id: i64,
    pub amount_paise: i64,
    pub reason: String,
    pub status: String,
    pub provider_refund_id: Option<String>,
    pub processed_at: Option<NaiveDateTime>,
    pub version: i64,
    pub attempts: i32,
    pub next_attempt_at: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
}

/// A refund as its customer sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RefundView {
    pub id: i64,
    pub amount_paise: i64,
    /// `pending` (being sent to the provider, or accepted by it and not yet settled), `processed` or
    /// `failed` (staff follow it up).
    pub status: String,
    pub reason: String,
    pub requested_at: NaiveDateTime,
    pub processed_at: Option<NaiveDateTime>,
}

impl From<Refund> for RefundView {
    fn from(r: Refund) -> Self {
        Self {
            id: r.id,
            amount_paise: r.amount_paise,
            status: r.status,
            reason: r.reason,
            requested_at: r.created_at,
            processed_at: r.processed_at,
        }
    }
}

/// A refund claimed for one attempt, with what the provider call needs.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub refund: Refund,
    /// The captured payment's provider id (`pay_…`).
    pub provider_payment_id: String,
    pub purpose: String,
    pub reference_id: i64,
}

/// What applying a processed refund changed, for the announcements after commit.
#[derive(Debug, Clone)]
pub struct Applied {
    pub refund_id: i64,
    pub amount_paise: i64,
    pub purpose: String,
    pub reference_id: i64,
    pub user_id: i64,
}

/// The refunds of an order's payments, oldest first.
pub async fn for_order(conn: &mut Conn, order_id: i64) -> QueryResult<Vec<Refund>> {
    on_conn!(conn, c => refunds::table
        .inner_join(payments::table)
        .filter(payments::purpose.eq(PURPOSE_ORDER).and(payments::reference_id.eq(order_id)))
        .order(refunds::id.asc())
        .select(Refund::as_select())
        .load(c)
        .await)
}

/// Claims up to `limit` due refunds for one attempt each: pending, not yet accepted by the provider,
/// and past `next_attempt_at`. Each claim is a conditional write on the refund's version that pushes
/// `next_attempt_at` to `now + lease`, so a concurrent sweep on another node skips it and a node that
/// dies mid-attempt leaves it to be claimed again once the lease lapses.
pub async fn claim_due(
    conn: &mut Conn,
    now: NaiveDateTime,
    lease: TimeDelta,
    limit: i64,
) -> QueryResult<Vec<Claimed>> {
    let due: Vec<(Refund, Option<String>, String, i64)> = on_conn!(conn, c => refunds::table
        .inner_join(payments::table)
        .filter(
            refunds::status
                .eq("pending")
                .and(refunds::provider_refund_id.is_null())
                .and(refunds::next_attempt_at.is_null().or(refunds::next_attempt_at.le(now))),
        )
        .order(refunds::id.asc())
        .limit(limit)
        .select((Refund::as_select(), payments::provider_payment_id, payments::purpose, payments::reference_id))
        .load(c)
        .await)?;
    let mut claimed = Vec::with_capacity(due.len());
    for (refund, provider_payment_id, purpose, reference_id) in due {
        let Some(provider_payment_id) = provider_payment_id else {
            tracing::warn!(
                refund = refund.id,
                "refund of a payment without a provider payment id"
            );
            continue;
        };
        let until = now + lease;
        let won: Option<Refund> = on_conn!(conn, c => diesel::update(refunds::table.filter(
            refunds::id
                .eq(refund.id)
                .and(refunds::version.eq(refund.version))
                .and(refunds::status.eq("pending")),
        ))
        .set((
            refunds::attempts.eq(refunds::attempts + 1),
            refunds::next_attempt_at.eq(until),
            refunds::version.eq(refunds::version + 1),
            refunds::updated_at.eq(now),
        ))
        .returning(Refund::as_returning())
        .get_result(c)
        .await
        .optional())?;
        if let Some(refund) = won {
            claimed.push(Claimed {
                refund,
                provider_payment_id,
                purpose,
                reference_id,
            });
        }
    }
    Ok(claimed)
}

/// Records a failed attempt of a claimed refund: retried at `retry_at`, or marked `failed` for staff
/// when `give_up`. Conditional on the claim (`version`), so a stale attempt changes nothing.
pub async fn attempt_failed(
    conn: &mut Conn,
    claimed: &Refund,
    error: &str,
    retry_at: NaiveDateTime,
    give_up: bool,
) -> QueryResult<bool> {
    let now = super::now();
    let error: String = error.chars().take(500).collect();
    let status = if give_up { "failed" } else { "pending" };
    let moved = on_conn!(conn, c => diesel::update(refunds::table.filter(
        refunds::id
            .eq(claimed.id)
            .and(refunds::version.eq(claimed.version))
            .and(refunds::status.eq("pending")),
    ))
    .set((
        refunds::status.eq(status),
        refunds::last_error.eq(error),
        refunds::next_attempt_at.eq(retry_at),
        refunds::version.eq(refunds::version + 1),
        refunds::updated_at.eq(now),
    ))
    .execute(c)
    .await)?;
    Ok(moved == 1)
}

/// The provider accepted a refund but has not settled it yet: its id is stored (so it is never sent
/// again) and the `refund.processed` / `refund.failed` webhook settles it.
pub async fn accepted(conn: &mut Conn, claimed: &Refund, provider_refund_id: &str) -> QueryResult<bool> {
    let now = super::now();
    let moved = on_conn!(conn, c => diesel::update(refunds::table.filter(
        refunds::id
            .eq(claimed.id)
            .and(refunds::status.eq("pending"))
            .and(refunds::provider_refund_id.is_null()),
    ))
    .set((
        refunds::provider_refund_id.eq(provider_refund_id),
        refunds::last_error.eq(None::<String>),
        refunds::version.eq(refunds::version + 1),
        refunds::updated_at.eq(now),
    ))
    .execute(c)
    .await)?;
    Ok(moved == 1)
}

/// How a provider's answer or webhook settles a refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement<'a> {
    /// The money went back: the refund is processed, the payment's refunded amount grows, a fully
    /// refunded payment (and its order) becomes `refunded`.
    Processed { provider_refund_id: &'a str },
    /// The provider could not refund: the refund is `failed` for staff to follow up.
    Failed {
        provider_refund_id: &'a str,
        reason: &'a str,
    },
}

/// What settling a refund did.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// It was settled before (a replayed webhook, or a webhook racing the worker's own answer).
    Unchanged,
    /// It is failed now.
    Failed,
    /// The money went back now.
    Processed(Applied),
}

/// Settles refund `refund_id` (still pending) in one transaction, so its effects happen exactly once.
pub async fn settle(conn: &mut Conn, refund_id: i64, settlement: Settlement<'_>) -> QueryResult<Outcome> {
    let now = super::now();
    with_retries(conn, async |conn| {
        on_conn!(conn, c => c.transaction(async move |c| settle_in!(c, refund_id, settlement, now).await).await)
    })
    .await
}

/// What a refund webhook did.
#[derive(Debug, Clone)]
pub enum WebhookOutcome {
    /// This event id was processed before.
    Duplicate,
    /// No refund of ours matches.
    Ignored,
    /// How the matching refund was settled (`Unchanged` when it was settled before).
    Settled(Outcome),
}

/// Applies a `refund.processed` / `refund.failed` webhook in one transaction: the event id is claimed
/// (a redelivery changes nothing), the refund is found by its provider id, or, when the worker's own
/// call never got its answer back, as the live refund of the payment, and settled.
pub async fn settle_webhook(
    conn: &mut Conn,
    provider_event_id: &str,
    event_type: &str,
    payload: &str,
    provider_payment_id: &str,
    settlement: Settlement<'_>,
) -> QueryResult<WebhookOutcome> {
    let now = super::now();
    let provider_refund_id = match settlement {
        Settlement::Processed { provider_refund_id }
        | Settlement::Failed {
            provider_refund_id, ..
        } => provider_refund_id,
    };
    with_retries(conn, async |conn| {
        on_conn!(conn, c => c.transaction(async move |c| {
            let payment_id: Option<i64> = payments::table
                .filter(payments::provider_payment_id.eq(provider_payment_id))
                .select(payments::id)
                .first(c)
                .await
                .optional()?;
            let recorded = diesel::insert_into(payment_events::table)
                .values((
                    payment_events::provider_event_id.eq(provider_event_id),
                    payment_events::event_type.eq(event_type),
                    payment_events::payment_id.eq(payment_id),
                    payment_events::payload.eq(payload),
                    payment_events::signature_valid.eq(true),
                    payment_events::received_at.eq(now),
                    payment_events::processed_at.eq(now),
                ))
                .on_conflict(payment_events::provider_event_id)
                .do_nothing()
                .execute(c)
                .await?;
            if recorded == 0 {
                return Ok(WebhookOutcome::Duplicate);
            }
            let Some(payment_id) = payment_id else {
                return Ok(WebhookOutcome::Ignored);
            };
            let refund_id: Option<i64> = refunds::table
                .filter(
                    refunds::payment_id.eq(payment_id).and(
                        refunds::provider_refund_id
                            .eq(provider_refund_id)
                            .or(refunds::provider_refund_id.is_null().and(refunds::status.eq("pending"))),
                    ),
                )
                .order(refunds::id.desc())
                .select(refunds::id)
                .first(c)
                .await
                .optional()?;
            let Some(refund_id) = refund_id else {
                return Ok(WebhookOutcome::Ignored);
            };
            Ok(WebhookOutcome::Settled(settle_in!(c, refund_id, settlement, now).await?))
        }).await)
    })
    .await
}
