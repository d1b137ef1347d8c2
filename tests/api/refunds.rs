//! Refunds of paid orders: a cancellation owes exactly one refund however many cancellations race
//! across two nodes; the refund worker sends it once (offline, or through the Refunds API of a loopback
//! fake with one idempotency key across a failed and a retried attempt); the `refund.processed` webhook
//! applies it once; the customer is mailed once; cash-on-delivery orders owe nothing.

use std::sync::{Arc, Mutex};

use futures_util::future::join_all;
use onemedi::{db::refunds, domain::Role, integrations::razorpay};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, spawn_app_with, spawn_second_node},
    mail::{messages, subjects},
    payments::{
        Seen, create_order, fake_razorpay, razorpay_order, simulate, unique_event_id, verify, webhook,
    },
    shop::{Customer, add_to_cart, category, customer, medicine},
    ws_client::eventually,
};

/// Sweeps every second and retries a failed refund after a second, so tests wait briefly.
fn quick_refunds(settings: &mut onemedi::config::Settings) {
    settings.payments.refund_sweep_secs = 1;
    settings.payments.refund_retry_secs = 1;
}

/// A Razorpay order paid through the offline checkout stand-in; returns (customer, order id, total).
async fn paid_order(app: &TestApp) -> (Customer, i64, i64) {
    let (who, order_id, total) = razorpay_order(app).await;
    let reply = create_order(app, &who, order_id).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let checkout = simulate(app, &who, reply.body["razorpay_order_id"].as_str().unwrap()).await;
    let reply = verify(app, &who, &checkout).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["order_status"], "confirmed");
    (who, order_id, total)
}

async fn order_view(app: &TestApp, who: &Customer, order_id: i64) -> Value {
    let reply = app
        .get(&format!("/api/v1/orders/{order_id}"), Some(&who.token))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

async fn refund_rows(app: &TestApp, order_id: i64) -> Vec<refunds::Refund> {
    let mut conn = app.app.db.read().await.unwrap();
    refunds::for_order(&mut conn, order_id).await.unwrap()
}

fn timeline_events(view: &Value, event: &str) -> usize {
    view["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["event"] == event)
        .count()
}

/// "Order … has been refunded" mails across the given nodes' outboxes.
fn refund_mails(nodes: &[&TestApp]) -> usize {
    nodes
        .iter()
        .flat_map(|node| subjects(&messages(&node.data_dir.path().join("outbox/mail"))))
        .filter(|s| s.ends_with("has been refunded"))
        .count()
}

#[actix_web::test]
async fn racing_cancellations_of_a_paid_order_across_two_nodes_refund_it_once() {
    let a = spawn_app_with(quick_refunds).await;
    let b = spawn_second_node(&a).await;
    let (staff, _) = a.user_with_role(Role::Staff).await;
    let (who, order_id, total) = paid_order(&a).await;

    // Eight cancellations at once, by the customer and by staff, on both nodes: one wins.
    let calls = (0..8).map(|i| {
        let node = if i % 2 == 0 { &a } else { &b };
        let (who, staff) = (&who, &staff);
        async move {
            if i < 4 {
                node.post(
                    &format!("/api/v1/orders/{order_id}/cancel"),
                    &json!({}),
                    Some(&who.token),
                )
                .await
            } else {
                node.put(
                    &format!("/api/v1/orders/{order_id}/status"),
                    &json!({"status": "cancelled", "reason": "out of stock at the pharmacy"}),
                    Some(staff),
                )
                .await
            }
        }
    });
    let replies = join_all(calls).await;
    let won = replies.iter().filter(|r| r.status == StatusCode::OK).count();
    assert_eq!(
        won,
        1,
        "{:?}",
        replies
            .iter()
            .map(|r| (r.status, r.body.clone()))
            .collect::<Vec<_>>()
    );
    for lost in replies.iter().filter(|r| r.status != StatusCode::OK) {
        assert_eq!(lost.status, StatusCode::CONFLICT, "{}", lost.body);
    }

    // The refund is sent at once and settles the payment, the order and the mail exactly once.
    eventually(async || order_view(&a, &who, order_id).await["payment_status"] == "refunded").await;
    eventually(async || refund_mails(&[&a, &b]) == 1).await;
    let view = order_view(&b, &who, order_id).await;
    assert_eq!(view["status"], "cancelled");
    let listed = view["refunds"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{view}");
    assert_eq!(listed[0]["status"], "processed");
    assert_eq!(listed[0]["amount_paise"], total);
    assert_eq!(timeline_events(&view, "refunded"), 1, "{view}");
    let rows = refund_rows(&a, order_id).await;
    assert_eq!(rows.len(), 1);
    assert!(
        rows[0]
            .provider_refund_id
            .as_deref()
            .is_some_and(|id| razorpay::is_provider_id(id, "rfnd"))
    );
    assert_eq!(rows[0].attempts, 1, "sent once");

    // Sweeps on both nodes afterwards change nothing.
    assert_eq!(onemedi::refunds::process_due(&a.app).await.unwrap(), 0);
    assert_eq!(onemedi::refunds::process_due(&b.app).await.unwrap(), 0);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(refund_rows(&a, order_id).await.len(), 1);
    assert_eq!(refund_mails(&[&a, &b]), 1);
}

#[actix_web::test]
async fn a_refund_goes_through_the_refunds_api_once_despite_a_failed_attempt_and_a_redelivered_webhook() {
    let seen = Arc::new(Mutex::new(Seen {
        refund_failures: 1,
        refund_status: Some("pending".to_owned()),
        ..Seen::default()
    }));
    let base = fake_razorpay("rzp_test_KEY", "key-secret", seen.clone());
    let keys = move |settings: &mut onemedi::config::Settings| {
        quick_refunds(settings);
        settings.payments.key_id = "rzp_test_KEY".to_owned();
        settings.payments.key_secret = SecretString::from("key-secret".to_owned());
        settings.payments.webhook_secret = SecretString::from("hook-secret".to_owned());
        settings.payments.api_base_url = base.clone();
    };
    let a = spawn_app_with(keys.clone()).await;
    let b = crate::helpers::spawn_second_node_with(&a, keys).await;

    // Pay with a checkout signed by the real key secret.
    let (who, order_id, total) = razorpay_order(&a).await;
    let reply = create_order(&a, &who, order_id).await;
    let provider_order = reply.body["razorpay_order_id"].as_str().unwrap().to_owned();
    let payment_id = razorpay::local_id("pay");
    let checkout = json!({
        "razorpay_order_id": provider_order,
        "razorpay_payment_id": payment_id,
        "razorpay_signature": razorpay::checkout_signature(
            &SecretString::from("key-secret".to_owned()), &provider_order, &payment_id),
    });
    assert_eq!(
        verify(&a, &who, &checkout).await.body["order_status"],
        "confirmed"
    );
    let reply = a
        .post(
            &format!("/api/v1/orders/{order_id}/cancel"),
            &json!({}),
            Some(&who.token),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);

    // The first call fails; a later sweep (on either node) retries with the same key and the provider
    // accepts the refund as pending; nothing is sent again after that.
    eventually(async || {
        refund_rows(&a, order_id)
            .await
            .first()
            .is_some_and(|r| r.provider_refund_id.is_some())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let calls = seen.lock().unwrap().refunds.clone();
    assert_eq!(calls.len(), 2, "one failed attempt and one accepted: {calls:?}");
    let expected_key = onemedi::refunds::idempotency_key(refund_rows(&a, order_id).await[0].id);
    for (auth, key, paid, body) in &calls {
        assert!(auth.as_deref().is_some_and(|a| a.starts_with("Basic ")));
        assert_eq!(key.as_deref(), Some(expected_key.as_str()));
        assert_eq!(paid, &payment_id);
        assert_eq!(body["amount"], total);
        assert_eq!(body["speed"], "normal");
    }
    let row = refund_rows(&a, order_id).await.remove(0);
    assert_eq!((row.status.as_str(), row.attempts), ("pending", 2));
    assert!(row.last_error.is_none(), "the accepted attempt clears the error");
    assert_eq!(order_view(&a, &who, order_id).await["payment_status"], "paid");

    // Razorpay settles it by webhook, delivered three times at once to both nodes, plus a second event
    // id for the same refund: applied once.
    let refund_id = row.provider_refund_id.clone().unwrap();
    let body = json!({
        "entity": "event", "account_id": "acc_TESTACCOUNT01", "event": "refund.processed",
        "contains": ["refund", "payment"],
        "payload": {
            "refund": {"entity": {"id": refund_id, "entity": "refund", "amount": total, "currency": "INR",
                "payment_id": payment_id, "status": "processed"}},
            "payment": {"entity": {"id": payment_id, "entity": "payment", "amount": total, "currency": "INR",
                "status": "refunded", "order_id": provider_order, "method": "upi"}},
        },
        "created_at": 1_767_000_100,
    })
    .to_string();
    let event_id = unique_event_id();
    let deliveries = [&a, &b, &a].map(|node| webhook(node, &body, &event_id));
    let receipts = join_all(deliveries).await;
    let statuses: Vec<_> = receipts
        .iter()
        .map(|r| r.body["status"].as_str().unwrap_or("").to_owned())
        .collect();
    for receipt in &receipts {
        assert_eq!(receipt.status, StatusCode::OK, "{}", receipt.body);
    }
    assert_eq!(
        statuses.iter().filter(|s| *s == "processed").count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        webhook(&b, &body, &unique_event_id()).await.body["status"],
        "ignored"
    );

    let view = order_view(&a, &who, order_id).await;
    assert_eq!(view["payment_status"], "refunded");
    assert_eq!(view["refunds"][0]["status"], "processed");
    assert_eq!(timeline_events(&view, "refunded"), 1);
    eventually(async || refund_mails(&[&a, &b]) == 1).await;
    assert_eq!(
        seen.lock().unwrap().refunds.len(),
        2,
        "settled refunds are never sent again"
    );
}

#[actix_web::test]
async fn a_payment_captured_after_its_order_was_cancelled_is_refunded() {
    let app = spawn_app_with(quick_refunds).await;
    let (who, order_id, total) = razorpay_order(&app).await;
    let reply = create_order(&app, &who, order_id).await;
    let checkout = simulate(&app, &who, reply.body["razorpay_order_id"].as_str().unwrap()).await;
    // The customer cancels while the payment is still in flight: nothing is owed yet.
    let reply = app
        .post(
            &format!("/api/v1/orders/{order_id}/cancel"),
            &json!({}),
            Some(&who.token),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(refund_rows(&app, order_id).await.is_empty());
    // The capture lands afterwards: the order stays cancelled and the money goes back.
    let reply = verify(&app, &who, &checkout).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["order_status"], "cancelled");
    eventually(async || order_view(&app, &who, order_id).await["payment_status"] == "refunded").await;
    let view = order_view(&app, &who, order_id).await;
    assert_eq!(view["status"], "cancelled");
    assert_eq!(view["refunds"][0]["amount_paise"], total);
    // A replayed verification neither captures again nor owes a second refund.
    let again = verify(&app, &who, &checkout).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(refund_rows(&app, order_id).await.len(), 1);
}

#[actix_web::test]
async fn a_cancelled_cash_on_delivery_order_owes_no_refund() {
    let app = spawn_app_with(quick_refunds).await;
    let (staff, _) = app.user_with_role(Role::Staff).await;
    let pain = category(&app, &staff, &format!("Pain {}", uuid::Uuid::new_v4().simple())).await;
    let id = medicine(
        &app,
        &staff,
        pain,
        json!({"price_paise": 9_000, "mrp_paise": 9_500}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let who = customer(&app).await;
    add_to_cart(&app, &who, id, 1).await;
    let reply = app
        .post(
            "/api/v1/orders",
            &json!({"address_id": who.address_id, "payment_method": "cod"}),
            Some(&who.token),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let order_id = reply.body["id"].as_i64().unwrap();
    let reply = app
        .post(
            &format!("/api/v1/orders/{order_id}/cancel"),
            &json!({}),
            Some(&who.token),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(onemedi::refunds::process_due(&app.app).await.unwrap(), 0);
    let view = order_view(&app, &who, order_id).await;
    assert_eq!(view["payment_status"], "pending");
    assert!(view.get("refunds").is_none(), "{view}");
    assert!(refund_rows(&app, order_id).await.is_empty());
}
