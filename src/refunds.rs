//! The refund worker: sends the refunds that cancellations recorded to the payment provider and
//! applies its answers. It runs on every node, started by each cancellation that owes money and by a
//! periodic sweep (which also picks up refunds left by a crash or a failed attempt); each attempt is
//! claimed by one node with a conditional write, so a refund is never sent twice at once, and the
//! provider's idempotency key makes a retry after a lost answer harmless.

use chrono::Utc;

use crate::{
    bus::Event,
    db::{
        self, DbError,
        payments::PURPOSE_ORDER,
        refunds::{self, Applied, Outcome, Settlement},
    },
    state::AppState,
};

/// The provider idempotency key of refund `id`: the same for every attempt of it.
pub fn idempotency_key(refund_id: i64) -> String {
    format!("onemedi-refund-{refund_id}")
}

/// Sends every due refund this node can claim; returns how many were settled or accepted.
pub async fn process_due(state: &AppState) -> Result<usize, DbError> {
    let settings = &state.settings.payments;
    let mut conn = state.db.write().await?;
    let claimed = refunds::claim_due(
        &mut conn,
        db::now(),
        settings.refund_lease(),
        refunds::SWEEP_BATCH,
    )
    .await?;
    drop(conn);
    let mut done = 0;
    for claim in claimed {
        let refund = &claim.refund;
        let answer = state
            .payments
            .refund(
                &claim.provider_payment_id,
                refund.amount_paise,
                &idempotency_key(refund.id),
                &format!("refund-{}", refund.id),
            )
            .await;
        let mut conn = state.db.write().await?;
        match answer {
            Ok(provider) if provider.status == "processed" => {
                let outcome = refunds::settle(
                    &mut conn,
                    refund.id,
                    Settlement::Processed {
                        provider_refund_id: &provider.id,
                    },
                )
                .await?;
                drop(conn);
                tracing::info!(refund = refund.id, provider_refund = %provider.id, "refund processed");
                announce(state, &outcome).await;
                done += 1;
            }
            Ok(provider) if provider.status == "failed" => {
                refunds::settle(
                    &mut conn,
                    refund.id,
                    Settlement::Failed {
                        provider_refund_id: &provider.id,
                        reason: "the provider refused the refund",
                    },
                )
                .await?;
                tracing::error!(refund = refund.id, provider_refund = %provider.id, "refund failed at the provider; staff must follow it up");
                done += 1;
            }
            Ok(provider) => {
                // Accepted and settled later by the provider's webhook.
                refunds::accepted(&mut conn, refund, &provider.id).await?;
                tracing::info!(refund = refund.id, provider_refund = %provider.id, status = %provider.status, "refund accepted by the provider");
                done += 1;
            }
            Err(error) => {
                let give_up = refund.attempts >= settings.refund_max_attempts.max(1);
                let retry_at = db::now() + settings.refund_backoff(refund.attempts);
                refunds::attempt_failed(&mut conn, refund, &format!("{error:#}"), retry_at, give_up).await?;
                if give_up {
                    tracing::error!(refund = refund.id, attempts = refund.attempts, error = %format!("{error:#}"), "refund gave up; staff must follow it up");
                } else {
                    tracing::warn!(refund = refund.id, attempts = refund.attempts, error = %format!("{error:#}"), "refund attempt failed; retried later");
                }
            }
        }
    }
    Ok(done)
}

/// Starts sending due refunds now, off the request path (after a cancellation that owes money).
pub fn kick(state: &actix_web::web::Data<AppState>) {
    let state = state.clone();
    actix_web::rt::spawn(async move {
        if let Err(error) = process_due(&state).await {
            tracing::warn!(error = %error, "refunds not sent now; the sweep retries");
        }
    });
}

/// Announces money that went back, after commit: `order_refunded` on `order:{id}` (which also mails the
/// customer).
pub async fn announce(state: &AppState, outcome: &Outcome) {
    let Outcome::Processed(Applied {
        refund_id,
        amount_paise,
        purpose,
        reference_id,
        ..
    }) = outcome
    else {
        return;
    };
    if purpose == PURPOSE_ORDER {
        let event = Event::OrderRefunded {
            order_id: *reference_id,
            refund_id: *refund_id,
            amount_paise: *amount_paise,
            at: Utc::now(),
        };
        state
            .bus
            .publish_event(&[format!("order:{reference_id}")], &event)
            .await;
    }
}
