//! Doctor appointments paid online: the fee fixed at booking is the amount, verifications and webhooks
//! racing confirm the appointment once, a cancelled paid appointment is refunded, and an appointment left
//! unpaid past the payment window lapses, frees its slot, and has a late payment refunded.

use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use onemedi::{db::schema, on_conn};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, spawn_app, spawn_app_with},
    insurance::{captured, post_webhook, simulate},
    slots::{doctor, first_slot, hold},
};

/// A customer's appointment booked for online payment and its provider order:
/// (token, appointment id, slot id, razorpay order id).
async fn unpaid_appointment(app: &TestApp, email: &str) -> (String, i64, i64, String) {
    let (_, doctor) = doctor(app, "General Physician").await;
    let slot = first_slot(app, doctor).await;
    let (token, _) = app.register_customer(email).await;
    assert_eq!(hold(app, slot, &token).await.status, StatusCode::OK);
    let booked = app
        .post(
            "/api/v1/doctors/appointments",
            &json!({"slot_id": slot, "mode": "video", "payment_method": "razorpay"}),
            Some(&token),
        )
        .await;
    assert_eq!(booked.status, StatusCode::CREATED, "{}", booked.body);
    assert_eq!(booked.body["status"], "pending_payment");
    assert_eq!(booked.body["paid_online"], false);
    let appointment = booked.body["id"].as_i64().unwrap();
    let order = app
        .post(
            "/api/v1/payments/create-order",
            &json!({"appointment_id": appointment}),
            Some(&token),
        )
        .await;
    assert_eq!(order.status, StatusCode::OK, "{}", order.body);
    assert_eq!(order.body["purpose"], "appointment");
    assert_eq!(order.body["appointment_id"], appointment);
    assert_eq!(
        order.body["amount_paise"], booked.body["fee_paise"],
        "the fee fixed at booking"
    );
    let provider_order = order.body["razorpay_order_id"].as_str().unwrap().to_owned();
    (token, appointment, slot, provider_order)
}

async fn verify(app: &TestApp, token: &str, checkout: &Value) -> crate::helpers::Reply {
    app.post("/api/v1/payments/verify", checkout, Some(token)).await
}

/// How many `payment_captured` rows the appointment's timeline has.
async fn confirmations(app: &TestApp, appointment: i64) -> i64 {
    use schema::entity_transitions as et;
    let mut conn = app.app.db.read().await.unwrap();
    on_conn!(&mut conn, c => et::table
        .filter(
            et::entity_type
                .eq("appointment")
                .and(et::entity_id.eq(appointment))
                .and(et::event.eq("payment_captured")),
        )
        .count()
        .get_result::<i64>(c)
        .await)
    .unwrap()
}

/// (payment status, refunds recorded) of the appointment's payments.
async fn money(app: &TestApp, appointment: i64) -> (Vec<String>, i64) {
    use schema::{payments as p, refunds as r};
    let mut conn = app.app.db.read().await.unwrap();
    let statuses: Vec<String> = on_conn!(&mut conn, c => p::table
        .filter(p::purpose.eq("appointment").and(p::reference_id.eq(appointment)))
        .order(p::id.asc())
        .select(p::status)
        .load(c)
        .await)
    .unwrap();
    let refunds: i64 = on_conn!(&mut conn, c => r::table
        .inner_join(p::table)
        .filter(p::purpose.eq("appointment").and(p::reference_id.eq(appointment)))
        .count()
        .get_result(c)
        .await)
    .unwrap();
    (statuses, refunds)
}

/// Waits until the appointment's payment reads `status` (the refund worker runs in the background).
async fn payment_becomes(app: &TestApp, appointment: i64, status: &str) {
    for _ in 0..100 {
        if money(app, appointment).await.0 == [status] {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "payment of appointment {appointment} never became {status}: {:?}",
        money(app, appointment).await
    );
}

#[actix_web::test]
async fn verifications_and_webhooks_racing_confirm_a_paid_appointment_once() {
    let app = spawn_app().await;
    let (token, appointment, _, provider_order) = unpaid_appointment(&app, "asha@example.in").await;
    let again = app
        .post(
            "/api/v1/payments/create-order",
            &json!({"appointment_id": appointment}),
            Some(&token),
        )
        .await;
    assert_eq!(again.body["razorpay_order_id"], provider_order.as_str());
    let (stranger, _) = app.register_customer("rahul@example.in").await;
    let theirs = app
        .post(
            "/api/v1/payments/create-order",
            &json!({"appointment_id": appointment}),
            Some(&stranger),
        )
        .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND, "{}", theirs.body);

    let checkout = simulate(&app, &token, &provider_order).await;
    let payment_id = checkout["razorpay_payment_id"].as_str().unwrap().to_owned();
    let webhook = captured(&provider_order, &payment_id, 50_000);
    let verifies = futures_util::future::join_all((0..4).map(|_| verify(&app, &token, &checkout)));
    let event_ids: Vec<String> = (0..3).map(|i| format!("evt_apt_{i}")).collect();
    let hooks = futures_util::future::join_all(event_ids.iter().map(|id| post_webhook(&app, &webhook, id)));
    let (verifies, hooks) = futures_util::join!(verifies, hooks);
    for reply in &verifies {
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(reply.body["appointment_id"], appointment);
        assert_eq!(reply.body["appointment_status"], "confirmed");
    }
    for reply in &hooks {
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    assert_eq!(confirmations(&app, appointment).await, 1);
    assert_eq!(money(&app, appointment).await, (vec!["captured".to_owned()], 0));
    let seen = app
        .get(
            &format!("/api/v1/doctors/appointments/{appointment}"),
            Some(&token),
        )
        .await;
    assert_eq!(seen.body["status"], "confirmed");
    assert_eq!(seen.body["paid_online"], true);
    let paid = app
        .post(
            "/api/v1/payments/create-order",
            &json!({"appointment_id": appointment}),
            Some(&token),
        )
        .await;
    assert_eq!((paid.status, paid.code()), (StatusCode::CONFLICT, "already_paid"));
}

#[actix_web::test]
async fn cancelling_a_paid_appointment_refunds_it_once_and_reopens_the_slot() {
    let app = spawn_app().await;
    let (token, appointment, slot, provider_order) = unpaid_appointment(&app, "asha@example.in").await;
    let checkout = simulate(&app, &token, &provider_order).await;
    assert_eq!(verify(&app, &token, &checkout).await.status, StatusCode::OK);

    let path = format!("/api/v1/doctors/appointments/{appointment}/cancel");
    let reason = json!({"reason": "feeling better"});
    let cancels =
        futures_util::future::join_all((0..3).map(|_| app.post(&path, &reason, Some(&token)))).await;
    let ok = cancels.iter().filter(|r| r.status == StatusCode::OK).count();
    assert_eq!(ok, 1, "one cancellation wins");
    for reply in cancels.iter().filter(|r| r.status != StatusCode::OK) {
        assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.body);
    }
    payment_becomes(&app, appointment, "refunded").await;
    assert_eq!(money(&app, appointment).await.1, 1, "one refund");
    let (other, _) = app.register_customer("rahul@example.in").await;
    assert_eq!(
        hold(&app, slot, &other).await.status,
        StatusCode::OK,
        "the slot is open again"
    );
}

#[actix_web::test]
async fn an_unpaid_appointment_lapses_after_the_payment_window_and_a_late_payment_is_refunded() {
    let app = spawn_app_with(|s| {
        s.care.payment_window_secs = 1;
        s.care.hold_sweep_ms = 200;
    })
    .await;
    let (token, appointment, slot, provider_order) = unpaid_appointment(&app, "asha@example.in").await;
    let checkout = simulate(&app, &token, &provider_order).await;

    let mut status = String::new();
    for _ in 0..100 {
        let seen = app
            .get(
                &format!("/api/v1/doctors/appointments/{appointment}"),
                Some(&token),
            )
            .await;
        status = seen.body["status"].as_str().unwrap().to_owned();
        if status == "cancelled" {
            assert_eq!(seen.body["cancel_reason"], "not paid in time");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, "cancelled", "the unpaid appointment lapsed");
    let (other, _) = app.register_customer("rahul@example.in").await;
    assert_eq!(
        hold(&app, slot, &other).await.status,
        StatusCode::OK,
        "its slot is open"
    );
    let late_order = app
        .post(
            "/api/v1/payments/create-order",
            &json!({"appointment_id": appointment}),
            Some(&token),
        )
        .await;
    assert_eq!(
        (late_order.status, late_order.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "payment_not_applicable")
    );

    // The customer's checkout completes after the lapse: the money is taken and owed back at once.
    let late = verify(&app, &token, &checkout).await;
    assert_eq!(late.status, StatusCode::OK, "{}", late.body);
    assert_eq!(late.body["appointment_status"], "cancelled");
    assert_eq!(confirmations(&app, appointment).await, 0);
    payment_becomes(&app, appointment, "refunded").await;
    assert_eq!(money(&app, appointment).await.1, 1);
    let replay = verify(&app, &token, &checkout).await;
    assert_eq!(replay.status, StatusCode::OK, "{}", replay.body);
    assert_eq!(money(&app, appointment).await.1, 1, "a replay owes nothing more");
}
