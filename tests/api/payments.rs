//! Razorpay payments: provider orders, checkout verification, webhooks (signature on the raw body,
//! event-id dedupe, any delivery order), a capture race, and the Orders API client against a loopback
//! fake. The HMAC primitive's RFC 4231 vectors are a unit test in `src/integrations/razorpay.rs`.

use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use futures_util::future::join_all;
use onemedi::{
    db::payments::{self, Payment},
    domain::Role,
    integrations::razorpay::{self, RazorpayClient},
};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::{
    helpers::{Reply, TestApp, into_reply, spawn_app, spawn_app_with},
    shop::{Customer, add_to_cart, category, customer, medicine},
};

/// A customer with a pending Razorpay order; returns (customer, order id, order total).
async fn razorpay_order(app: &TestApp) -> (Customer, i64, i64) {
    let (staff, _) = app.user_with_role(Role::Staff).await;
    let pain = category(app, &staff, &format!("Pain {}", uuid::Uuid::new_v4().simple())).await;
    let id = medicine(
        app,
        &staff,
        pain,
        json!({"price_paise": 25_000, "mrp_paise": 26_000}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let who = customer(app).await;
    add_to_cart(app, &who, id, 2).await;
    let reply = app
        .post(
            "/api/v1/orders",
            &json!({"address_id": who.address_id, "payment_method": "razorpay"}),
            Some(&who.token),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let order_id = reply.body["id"].as_i64().unwrap();
    let total = reply.body["total_paise"].as_i64().unwrap();
    (who, order_id, total)
}

pub(crate) async fn create_order(app: &TestApp, who: &Customer, order_id: i64) -> Reply {
    app.post(
        "/api/v1/payments/create-order",
        &json!({"order_id": order_id}),
        Some(&who.token),
    )
    .await
}

/// The checkout stand-in's answer for `who`'s provider order.
pub(crate) async fn simulate(app: &TestApp, who: &Customer, provider_order_id: &str) -> Value {
    let reply = app
        .post(
            "/api/v1/payments/simulate",
            &json!({"razorpay_order_id": provider_order_id}),
            Some(&who.token),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

pub(crate) async fn verify(app: &TestApp, who: &Customer, checkout: &Value) -> Reply {
    app.post("/api/v1/payments/verify", checkout, Some(&who.token))
        .await
}

/// A Razorpay-shaped webhook body for a payment event.
fn payment_event(event: &str, provider_order_id: &str, payment_id: &str, amount: i64) -> String {
    let status = match event {
        "payment.authorized" => "authorized",
        "payment.failed" => "failed",
        _ => "captured",
    };
    json!({
        "entity": "event",
        "account_id": "acc_TESTACCOUNT01",
        "event": event,
        "contains": ["payment"],
        "payload": {"payment": {"entity": {
            "id": payment_id, "entity": "payment", "amount": amount, "currency": "INR",
            "status": status, "order_id": provider_order_id, "method": "upi",
            "error_description": if status == "failed" { Value::from("Payment declined") } else { Value::Null },
        }}},
        "created_at": 1_767_000_000,
    })
    .to_string()
}

fn sign(secret: &SecretString, body: &[u8]) -> String {
    hex::encode(razorpay::hmac_sha256(secret.expose_secret().as_bytes(), body))
}

/// Posts a raw webhook body with the given signature and event id.
async fn post_webhook(app: &TestApp, body: &str, signature: &str, event_id: &str) -> Reply {
    let response = app
        .client
        .post(app.url("/api/v1/payments/webhook"))
        .header("content-type", "application/json")
        .header("x-razorpay-signature", signature)
        .header("x-razorpay-event-id", event_id)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    into_reply(response).await
}

/// Posts a webhook signed with the app's webhook secret.
async fn webhook(app: &TestApp, body: &str, event_id: &str) -> Reply {
    let signature = sign(app.app.payments.webhook_secret(), body.as_bytes());
    post_webhook(app, body, &signature, event_id).await
}

async fn stored_payment(app: &TestApp, order_id: i64) -> Payment {
    let mut conn = app.app.db.read().await.unwrap();
    let mut rows = payments::for_order(&mut conn, order_id).await.unwrap();
    assert_eq!(rows.len(), 1, "one payment row per order");
    rows.remove(0)
}

/// The order as its customer sees it, and how many timeline rows moved it to confirmed.
async fn order_state(app: &TestApp, who: &Customer, order_id: i64) -> (String, String, usize) {
    let reply = app
        .get(&format!("/api/v1/orders/{order_id}"), Some(&who.token))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let confirmations = reply.body["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["to_status"] == "confirmed")
        .count();
    (
        reply.body["status"].as_str().unwrap().to_owned(),
        reply.body["payment_status"].as_str().unwrap().to_owned(),
        confirmations,
    )
}

fn unique_event_id() -> String {
    format!("evt_{}", uuid::Uuid::new_v4().simple())
}

#[actix_web::test]
async fn create_order_payment_is_idempotent_and_charges_the_stored_total() {
    let app = spawn_app().await;
    let (asha, order_id, total) = razorpay_order(&app).await;
    let first = create_order(&app, &asha, order_id).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let provider_order = first.body["razorpay_order_id"].as_str().unwrap();
    assert!(
        razorpay::is_provider_id(provider_order, "order"),
        "{provider_order}"
    );
    assert_eq!(first.body["amount_paise"], total);
    assert_eq!(first.body["currency"], "INR");
    assert_eq!(first.body["key_id"], razorpay::OFFLINE_KEY_ID);

    let second = create_order(&app, &asha, order_id).await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(
        second.body["razorpay_order_id"], provider_order,
        "the same provider order"
    );
    let concurrent = join_all((0..5).map(|_| create_order(&app, &asha, order_id))).await;
    for reply in concurrent {
        assert_eq!(reply.body["razorpay_order_id"], provider_order);
    }
    assert_eq!(stored_payment(&app, order_id).await.amount_paise, total);

    let ravi = customer(&app).await;
    let reply = create_order(&app, &ravi, order_id).await;
    assert_eq!((reply.status, reply.code()), (StatusCode::NOT_FOUND, "not_found"));
    let reply = app
        .post(
            "/api/v1/payments/create-order",
            &json!({"order_id": order_id, "amount_paise": 1}),
            Some(&asha.token),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "a client amount is refused"
    );

    // Cash on delivery is not paid online.
    let (staff, _) = app.user_with_role(Role::Staff).await;
    let pain = category(&app, &staff, "Rehydration").await;
    let med = medicine(&app, &staff, pain, json!({"name": "ORS"})).await["id"]
        .as_i64()
        .unwrap();
    add_to_cart(&app, &ravi, med, 1).await;
    let cod = app
        .post(
            "/api/v1/orders",
            &json!({"address_id": ravi.address_id, "payment_method": "cod"}),
            Some(&ravi.token),
        )
        .await;
    let reply = create_order(&app, &ravi, cod.body["id"].as_i64().unwrap()).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "payment_not_applicable")
    );
}

#[actix_web::test]
async fn a_verified_checkout_confirms_the_order_once() {
    let app = spawn_app().await;
    let (asha, order_id, _) = razorpay_order(&app).await;
    let created = create_order(&app, &asha, order_id).await;
    let provider_order = created.body["razorpay_order_id"].as_str().unwrap();
    let checkout = simulate(&app, &asha, provider_order).await;

    let reply = verify(&app, &asha, &checkout).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["payment_status"], "captured");
    assert_eq!(reply.body["order_status"], "confirmed");
    assert_eq!(reply.body["order_id"], order_id);
    let replay = verify(&app, &asha, &checkout).await;
    assert_eq!(replay.status, StatusCode::OK, "{}", replay.body);
    assert_eq!(replay.body, reply.body, "a replay answers the same");

    assert_eq!(
        order_state(&app, &asha, order_id).await,
        ("confirmed".to_owned(), "paid".to_owned(), 1)
    );
    let payment = stored_payment(&app, order_id).await;
    assert_eq!(payment.status, "captured");
    assert_eq!(
        payment.provider_payment_id.as_deref(),
        checkout["razorpay_payment_id"].as_str()
    );
    let reply = create_order(&app, &asha, order_id).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::CONFLICT, "already_paid")
    );

    // A second, different (validly signed) payment for a paid order is refused and changes nothing.
    let other = simulate(&app, &asha, provider_order).await;
    let reply = verify(&app, &asha, &other).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::CONFLICT, "already_paid")
    );
    assert_eq!(order_state(&app, &asha, order_id).await.2, 1);
}

#[actix_web::test]
async fn a_forged_signature_or_another_customers_order_changes_nothing() {
    let app = spawn_app().await;
    let (asha, order_id, _) = razorpay_order(&app).await;
    let created = create_order(&app, &asha, order_id).await;
    let provider_order = created.body["razorpay_order_id"].as_str().unwrap().to_owned();
    let checkout = simulate(&app, &asha, &provider_order).await;

    let mut forged = checkout.clone();
    forged["razorpay_payment_id"] = json!(razorpay::local_id("pay"));
    let reply = verify(&app, &asha, &forged).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::BAD_REQUEST, "signature_invalid")
    );
    let wrong_key = SecretString::from("not-the-key-secret".to_owned());
    forged = checkout.clone();
    forged["razorpay_signature"] = json!(razorpay::checkout_signature(
        &wrong_key,
        &provider_order,
        checkout["razorpay_payment_id"].as_str().unwrap()
    ));
    let reply = verify(&app, &asha, &forged).await;
    assert_eq!(reply.code(), "signature_invalid");

    // Ravi replays Asha's valid checkout: her order id is not his, so it does not exist for him.
    let ravi = customer(&app).await;
    let reply = verify(&app, &ravi, &checkout).await;
    assert_eq!((reply.status, reply.code()), (StatusCode::NOT_FOUND, "not_found"));
    let reply = app
        .post(
            "/api/v1/payments/simulate",
            &json!({"razorpay_order_id": provider_order}),
            Some(&ravi.token),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);

    assert_eq!(
        order_state(&app, &asha, order_id).await,
        ("pending".to_owned(), "pending".to_owned(), 0)
    );
    let payment = stored_payment(&app, order_id).await;
    assert_eq!(
        (payment.status.as_str(), payment.provider_payment_id),
        ("created", None)
    );
}

#[actix_web::test]
async fn the_webhook_signature_covers_the_raw_body_and_event_ids_are_deduplicated() {
    let app = spawn_app().await;
    let (asha, order_id, total) = razorpay_order(&app).await;
    let created = create_order(&app, &asha, order_id).await;
    let provider_order = created.body["razorpay_order_id"].as_str().unwrap();
    let payment_id = razorpay::local_id("pay");
    let body = payment_event("payment.captured", provider_order, &payment_id, total);
    let signature = sign(app.app.payments.webhook_secret(), body.as_bytes());

    // One byte changed after signing: refused, nothing recorded.
    let mut tampered = body.clone().into_bytes();
    let at = body.find("upi").unwrap();
    tampered[at] = b'U';
    let tampered = String::from_utf8(tampered).unwrap();
    let event_id = unique_event_id();
    let reply = post_webhook(&app, &tampered, &signature, &event_id).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::BAD_REQUEST, "signature_invalid")
    );
    let reply = post_webhook(&app, &body, "", &event_id).await;
    assert_eq!(reply.code(), "signature_invalid", "a missing signature");
    assert_eq!(order_state(&app, &asha, order_id).await.0, "pending");

    // Oversized bodies are refused before anything else.
    let huge = "x".repeat(onemedi::api::payments::MAX_WEBHOOK_BYTES + 1);
    let reply = post_webhook(&app, &huge, &signature, &event_id).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );

    // The same id as the refused attempts: refusals did not claim it.
    let reply = post_webhook(&app, &body, &signature, &event_id).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["status"], "processed");
    assert_eq!(
        order_state(&app, &asha, order_id).await,
        ("confirmed".to_owned(), "paid".to_owned(), 1)
    );
    let redelivered = post_webhook(&app, &body, &signature, &event_id).await;
    assert_eq!(redelivered.status, StatusCode::OK);
    assert_eq!(redelivered.body["status"], "duplicate");
    // A `payment.failed` redelivered under an already-seen id must not touch anything either.
    let failed = payment_event("payment.failed", provider_order, &payment_id, total);
    let reply = webhook(&app, &failed, &event_id).await;
    assert_eq!(reply.body["status"], "duplicate");
    let payment = stored_payment(&app, order_id).await;
    assert_eq!(payment.status, "captured");
    assert_eq!(payment.method.as_deref(), Some("upi"));
    assert_eq!(order_state(&app, &asha, order_id).await.2, 1);
}

#[actix_web::test]
async fn webhooks_arriving_out_of_order_never_move_a_payment_back() {
    let app = spawn_app().await;
    let (asha, order_id, total) = razorpay_order(&app).await;
    let created = create_order(&app, &asha, order_id).await;
    let provider_order = created.body["razorpay_order_id"].as_str().unwrap();
    let payment_id = razorpay::local_id("pay");

    let captured = payment_event("payment.captured", provider_order, &payment_id, total);
    assert_eq!(
        webhook(&app, &captured, &unique_event_id()).await.body["status"],
        "processed"
    );
    let authorized = payment_event("payment.authorized", provider_order, &payment_id, total);
    let reply = webhook(&app, &authorized, &unique_event_id()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["status"], "ignored");
    let failed = payment_event("payment.failed", provider_order, &payment_id, total);
    assert_eq!(
        webhook(&app, &failed, &unique_event_id()).await.body["status"],
        "ignored"
    );
    let paid = payment_event("order.paid", provider_order, &payment_id, total);
    assert_eq!(
        webhook(&app, &paid, &unique_event_id()).await.body["status"],
        "ignored"
    );
    assert_eq!(stored_payment(&app, order_id).await.status, "captured");
    assert_eq!(
        order_state(&app, &asha, order_id).await,
        ("confirmed".to_owned(), "paid".to_owned(), 1)
    );

    // In order on a second order: authorized, then a failed attempt, then another payment captured.
    let (ravi, second, total) = razorpay_order(&app).await;
    let created = create_order(&app, &ravi, second).await;
    let provider_order = created.body["razorpay_order_id"].as_str().unwrap();
    let first_try = razorpay::local_id("pay");
    let body = payment_event("payment.authorized", provider_order, &first_try, total);
    assert_eq!(
        webhook(&app, &body, &unique_event_id()).await.body["status"],
        "processed"
    );
    assert_eq!(stored_payment(&app, second).await.status, "authorized");
    let body = payment_event("payment.failed", provider_order, &first_try, total);
    assert_eq!(
        webhook(&app, &body, &unique_event_id()).await.body["status"],
        "processed"
    );
    assert_eq!(stored_payment(&app, second).await.status, "failed");
    assert_eq!(order_state(&app, &ravi, second).await.0, "pending");
    let retry = simulate(&app, &ravi, provider_order).await;
    let reply = verify(&app, &ravi, &retry).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(order_state(&app, &ravi, second).await.2, 1);
}

#[actix_web::test]
async fn a_payment_whose_amount_differs_is_flagged_and_never_confirms_the_order() {
    let app = spawn_app().await;
    let (asha, order_id, total) = razorpay_order(&app).await;
    let created = create_order(&app, &asha, order_id).await;
    let provider_order = created.body["razorpay_order_id"].as_str().unwrap();
    let payment_id = razorpay::local_id("pay");
    let short = payment_event("payment.captured", provider_order, &payment_id, total - 100);
    let reply = webhook(&app, &short, &unique_event_id()).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let payment = stored_payment(&app, order_id).await;
    assert_eq!(payment.status, "failed");
    assert!(payment.is_flagged(), "{:?}", payment.failure_reason);
    assert_eq!(order_state(&app, &asha, order_id).await.0, "pending");

    // Neither a matching capture nor a signed checkout gets past the flag.
    let full = payment_event("payment.captured", provider_order, &payment_id, total);
    webhook(&app, &full, &unique_event_id()).await;
    let checkout = simulate(&app, &asha, provider_order).await;
    let reply = verify(&app, &asha, &checkout).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "payment_not_applicable")
    );
    assert_eq!(
        order_state(&app, &asha, order_id).await,
        ("pending".to_owned(), "pending".to_owned(), 0)
    );
}

#[actix_web::test]
async fn concurrent_verifies_and_webhooks_capture_the_payment_once() {
    let app = spawn_app().await;
    let (asha, order_id, total) = razorpay_order(&app).await;
    let created = create_order(&app, &asha, order_id).await;
    let provider_order = created.body["razorpay_order_id"].as_str().unwrap();
    let checkout = simulate(&app, &asha, provider_order).await;
    let payment_id = checkout["razorpay_payment_id"].as_str().unwrap();
    let captured = payment_event("payment.captured", provider_order, payment_id, total);
    let paid = payment_event("order.paid", provider_order, payment_id, total);
    let shared_event = unique_event_id();

    let verifies = (0..8).map(|_| {
        let app = &app;
        let asha = &asha;
        let checkout = &checkout;
        Box::pin(async move { verify(app, asha, checkout).await })
            as std::pin::Pin<Box<dyn std::future::Future<Output = Reply>>>
    });
    let hooks = (0..12).map(|i| {
        let app = &app;
        let body = if i % 2 == 0 { &captured } else { &paid };
        // Some deliveries share an event id (redeliveries), the rest are distinct events.
        let event_id = if i < 4 {
            shared_event.clone()
        } else {
            unique_event_id()
        };
        Box::pin(async move { webhook(app, body, &event_id).await })
            as std::pin::Pin<Box<dyn std::future::Future<Output = Reply>>>
    });
    let replies = join_all(verifies.chain(hooks)).await;
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    let processed = replies.iter().filter(|r| r.body["status"] == "processed").count();
    assert!(processed <= 1, "at most one webhook captured: {processed}");

    let payment = stored_payment(&app, order_id).await;
    assert_eq!(payment.status, "captured");
    assert_eq!(payment.provider_payment_id.as_deref(), Some(payment_id));
    assert_eq!(
        order_state(&app, &asha, order_id).await,
        ("confirmed".to_owned(), "paid".to_owned(), 1),
        "one transition row to confirmed"
    );
}

/// What the fake Orders API saw.
#[derive(Default)]
struct Seen {
    requests: Vec<(Option<String>, Value)>,
}

/// A stand-in for `api.razorpay.com` on 127.0.0.1 (random port): it checks the basic-auth header
/// (`key:secret`) and answers an order for the requested amount. Returns its base URL.
fn fake_razorpay(key: &str, secret: &str, seen: Arc<Mutex<Seen>>) -> String {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{key}:{secret}"))
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        let expected = expected.clone();
        let seen = seen.clone();
        App::new().route(
            "/v1/orders",
            web::post().to(move |req: HttpRequest, body: web::Json<Value>| {
                let expected = expected.clone();
                let seen = seen.clone();
                async move {
                    let auth = req
                        .headers()
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    seen.lock().unwrap().requests.push((auth.clone(), body.0.clone()));
                    if auth.as_deref() != Some(expected.as_str()) {
                        return HttpResponse::Unauthorized().json(json!({"error": {
                            "code": "BAD_REQUEST_ERROR", "description": "Authentication failed"}}));
                    }
                    HttpResponse::Ok().json(json!({
                        "id": razorpay::local_id("order"), "entity": "order",
                        "amount": body["amount"], "amount_paid": 0, "amount_due": body["amount"],
                        "currency": body["currency"], "receipt": body["receipt"], "status": "created",
                        "attempts": 0, "created_at": 1_767_000_000,
                    }))
                }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);
    format!("http://127.0.0.1:{port}")
}

#[actix_web::test]
async fn the_orders_api_client_sends_basic_auth_and_the_amount_to_a_loopback_fake() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let base = fake_razorpay("rzp_test_KEY", "key-secret", seen.clone());
    let timeout = std::time::Duration::from_secs(5);
    let client = RazorpayClient::new(
        &base,
        "rzp_test_KEY",
        SecretString::from("key-secret".to_owned()),
        timeout,
    )
    .unwrap();
    let order = client.create_order(50_000, "OM260101ABC").await.unwrap();
    assert!(razorpay::is_provider_id(&order.id, "order"));
    assert_eq!((order.amount, order.currency.as_str()), (50_000, "INR"));
    {
        let seen = seen.lock().unwrap();
        let (_, body) = &seen.requests[0];
        assert_eq!(
            body,
            &json!({"amount": 50_000, "currency": "INR", "receipt": "OM260101ABC"})
        );
    }
    let wrong = RazorpayClient::new(
        &base,
        "rzp_test_KEY",
        SecretString::from("wrong".to_owned()),
        timeout,
    )
    .unwrap();
    let error = wrong.create_order(50_000, "OM1").await.unwrap_err();
    assert!(format!("{error:#}").contains("401"), "{error:#}");

    // The server with real keys creates provider orders through the fake and has no checkout stand-in.
    let app = spawn_app_with(|settings| {
        settings.payments.key_id = "rzp_test_KEY".to_owned();
        settings.payments.key_secret = SecretString::from("key-secret".to_owned());
        settings.payments.webhook_secret = SecretString::from("hook-secret".to_owned());
        settings.payments.api_base_url = base.clone();
    })
    .await;
    let (asha, order_id, total) = razorpay_order(&app).await;
    let reply = create_order(&app, &asha, order_id).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["key_id"], "rzp_test_KEY");
    assert_eq!(reply.body["amount_paise"], total);
    let provider_order = reply.body["razorpay_order_id"].as_str().unwrap().to_owned();
    let again = create_order(&app, &asha, order_id).await;
    assert_eq!(again.body["razorpay_order_id"], provider_order.as_str());
    assert_eq!(
        seen.lock().unwrap().requests.len(),
        3,
        "the second call reused the order"
    );
    let reply = app
        .post(
            "/api/v1/payments/simulate",
            &json!({"razorpay_order_id": provider_order}),
            Some(&asha.token),
        )
        .await;
    assert_eq!((reply.status, reply.code()), (StatusCode::NOT_FOUND, "not_found"));
    // A checkout signed with the real key secret is accepted.
    let payment_id = razorpay::local_id("pay");
    let checkout = json!({
        "razorpay_order_id": provider_order,
        "razorpay_payment_id": payment_id,
        "razorpay_signature": razorpay::checkout_signature(
            &SecretString::from("key-secret".to_owned()), &provider_order, &payment_id),
    });
    let reply = verify(&app, &asha, &checkout).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["order_status"], "confirmed");
}
