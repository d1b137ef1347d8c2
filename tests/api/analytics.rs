//! Back-office analytics: orders, revenue and refunds per India day (midnight boundaries to the
//! microsecond), bookings per service, ambulance response times per ARP category and collector
//! utilisation, all made through the API and checked exactly; and who may read them.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use onemedi::{
    db::{self, doctors::local_today, schema},
    domain::Role,
    on_conn,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    emergency::{ambulance, call, indexed, next_offer},
    helpers::{TestApp, spawn_app},
    lab_collections as lab,
    payments::{create_order, simulate, verify},
    shop::{Customer, add_to_cart, customer, medicine, order_body, shop},
    slots,
};

fn at(text: &str) -> chrono::NaiveDateTime {
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").unwrap()
}

/// Puts an order's placing time where the test needs it (orders can only be placed "now").
async fn placed_at(app: &TestApp, order: i64, when: &str) {
    use schema::orders as o;
    let mut conn = app.app.db.write().await.unwrap();
    let moved = on_conn!(&mut conn, c => diesel::update(o::table.find(order))
        .set(o::placed_at.eq(at(when)))
        .execute(c)
        .await)
    .unwrap();
    assert_eq!(moved, 1);
}

/// Places a one-line order of `quantity` units; returns (id, total).
async fn order(app: &TestApp, who: &Customer, medicine: i64, quantity: i64, method: &str) -> (i64, i64) {
    add_to_cart(app, who, medicine, quantity).await;
    let mut body = order_body(who, None);
    body["payment_method"] = json!(method);
    let reply = app.post("/api/v1/orders", &body, Some(&who.token)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    (
        reply.body["id"].as_i64().unwrap(),
        reply.body["total_paise"].as_i64().unwrap(),
    )
}

async fn set_status(app: &TestApp, staff: &str, order: i64, status: &str) {
    let reply = app
        .put(
            &format!("/api/v1/orders/{order}/status"),
            &json!({"status": status}),
            Some(staff),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{status}: {}", reply.body);
}

/// Pays an order through the Razorpay test checkout; the order is then confirmed and paid.
async fn pay(app: &TestApp, who: &Customer, order: i64) {
    let created = create_order(app, who, order).await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let checkout = simulate(app, who, created.body["razorpay_order_id"].as_str().unwrap()).await;
    let verified = verify(app, who, &checkout).await;
    assert_eq!(verified.body["order_status"], "confirmed", "{}", verified.body);
}

async fn analytics(app: &TestApp, query: &str, token: &str) -> Value {
    let reply = app
        .get(&format!("/api/v1/admin/analytics{query}"), Some(token))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

fn status_counts(list: &Value) -> Vec<(String, i64)> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["status"].as_str().unwrap().to_owned(),
                s["count"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn counts(pairs: &[(&str, i64)]) -> Vec<(String, i64)> {
    pairs.iter().map(|(s, n)| ((*s).to_owned(), *n)).collect()
}

#[actix_web::test]
async fn orders_revenue_and_refunds_are_counted_per_india_day_to_the_microsecond() {
    let app = spawn_app().await;
    let (staff, pain) = shop(&app).await;
    let (admin, _) = app.user_with_role(Role::Admin).await;
    let pill = medicine(
        &app,
        &staff,
        pain,
        json!({"price_paise": 10_000, "mrp_paise": 12_000, "stock": 100}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let asha = customer(&app).await;

    // Delivered cash on delivery: revenue, on the last microsecond of 2 January in India.
    let (delivered, delivered_total) = order(&app, &asha, pill, 1, "cod").await;
    for step in ["confirmed", "packed", "shipped", "out_for_delivery", "delivered"] {
        set_status(&app, &staff, delivered, step).await;
    }
    placed_at(&app, delivered, "2026-01-02 18:29:59.999999").await;
    // Cancelled before payment: counted, no revenue, on the first instant of 3 January in India.
    let (cancelled, _) = order(&app, &asha, pill, 2, "cod").await;
    let reply = app
        .post(
            &format!("/api/v1/orders/{cancelled}/cancel"),
            &json!({}),
            Some(&asha.token),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    placed_at(&app, cancelled, "2026-01-02 18:30:00").await;
    // Paid online and confirmed: revenue on 3 January.
    let (paid, paid_total) = order(&app, &asha, pill, 3, "razorpay").await;
    pay(&app, &asha, paid).await;
    placed_at(&app, paid, "2026-01-03 05:00:00").await;
    // Paid, then cancelled by staff and refunded: a refund on the span's last day.
    let (refunded, refunded_total) = order(&app, &asha, pill, 4, "razorpay").await;
    pay(&app, &asha, refunded).await;
    set_status(&app, &staff, refunded, "cancelled").await;
    {
        // No route issues refunds yet; the orders table's payment status is where one is recorded.
        use schema::orders as o;
        let mut conn = app.app.db.write().await.unwrap();
        on_conn!(&mut conn, c => diesel::update(o::table.find(refunded))
            .set(o::payment_status.eq("refunded"))
            .execute(c)
            .await)
        .unwrap();
    }
    placed_at(&app, refunded, "2026-01-10 18:29:59").await;
    // Just outside the span on either side.
    let (before, _) = order(&app, &asha, pill, 5, "cod").await;
    placed_at(&app, before, "2025-12-31 18:29:59.999999").await;
    let (after, _) = order(&app, &asha, pill, 6, "cod").await;
    placed_at(&app, after, "2026-01-10 18:30:00").await;

    let figures = analytics(&app, "?from=2026-01-01&to=2026-01-10", &admin).await;
    assert_eq!(figures["from"], "2026-01-01");
    assert_eq!(figures["to"], "2026-01-10");
    assert_eq!(figures["days"], 10);
    let orders = &figures["orders"];
    assert_eq!(orders["total"], 4, "{orders}");
    assert_eq!(
        status_counts(&orders["by_status"]),
        counts(&[
            ("pending", 0),
            ("confirmed", 1),
            ("packed", 0),
            ("shipped", 0),
            ("out_for_delivery", 0),
            ("delivered", 1),
            ("cancelled", 2),
        ])
    );
    assert_eq!(orders["revenue_paise"], delivered_total + paid_total);
    assert_eq!(orders["refunded_paise"], refunded_total);
    let days = orders["per_day"].as_array().unwrap();
    assert_eq!(days.len(), 10);
    let day = |date: &str| {
        days.iter()
            .find(|d| d["date"] == date)
            .map(|d| {
                (
                    d["orders"].as_i64().unwrap(),
                    d["revenue_paise"].as_i64().unwrap(),
                    d["refunded_paise"].as_i64().unwrap(),
                )
            })
            .unwrap()
    };
    assert_eq!(day("2026-01-01"), (0, 0, 0));
    assert_eq!(day("2026-01-02"), (1, delivered_total, 0));
    assert_eq!(day("2026-01-03"), (2, paid_total, 0));
    assert_eq!(day("2026-01-10"), (1, 0, refunded_total));
    assert_eq!(days[0]["date"], "2026-01-01");
    assert_eq!(days[9]["date"], "2026-01-10");

    // One day only: the first instant of 3 January belongs to it, the last of 2 January does not.
    let third = analytics(&app, "?from=2026-01-03&to=2026-01-03", &staff).await;
    assert_eq!(third["orders"]["total"], 2);
    assert_eq!(third["orders"]["revenue_paise"], paid_total);
    let outside = analytics(&app, "?from=2025-12-31&to=2025-12-31", &staff).await;
    assert_eq!(outside["orders"]["total"], 1);
    assert_eq!(outside["orders"]["per_day"][0]["revenue_paise"], 0);
}

#[actix_web::test]
async fn bookings_collector_load_and_response_times_come_from_real_requests() {
    let app = spawn_app().await;
    let (staff, _) = app.user_with_role(Role::Staff).await;
    let today = local_today(db::now());

    // Lab: two collections taken by a collector with two places per window, a third cancelled.
    let tests = lab::insert_tests(&app).await;
    let nurse = lab::collector(&app, 2).await;
    let mut ws = lab::on_duty(&app, &nurse).await;
    for _ in 0..2 {
        let (token, address) = lab::customer(&app).await;
        let booked = app
            .post(
                "/api/v1/lab-tests/book",
                &lab::booking(&[tests.cbc], address, "07:00-09:00"),
                Some(&token),
            )
            .await;
        assert_eq!(booked.status, StatusCode::CREATED, "{}", booked.body);
        let id = booked.body["id"].as_i64().unwrap();
        assert_eq!(lab::next_offer(&mut ws).await, id);
        assert_eq!(lab::answer(&mut ws, id, "accept").await["type"], "ack");
    }
    let (token, address) = lab::customer(&app).await;
    let booked = app
        .post(
            "/api/v1/lab-tests/book",
            &lab::booking(&[tests.cbc], address, "10:00-12:00"),
            Some(&token),
        )
        .await;
    assert_eq!(booked.status, StatusCode::CREATED, "{}", booked.body);
    let id = booked.body["id"].as_i64().unwrap();
    // Cancelled once its offer is out (a cancel racing the offer's write is refused with 409 `conflict`).
    assert_eq!(lab::next_offer(&mut ws).await, id);
    let cancel = app
        .post(
            &format!("/api/v1/lab-collections/{id}/cancel"),
            &json!({}),
            Some(&token),
        )
        .await;
    assert_eq!(cancel.status, StatusCode::OK, "{}", cancel.body);

    // Doctor: two appointments, one cancelled.
    let (_, doctor) = slots::doctor(&app, "General Medicine").await;
    let slot_list = app.get(&format!("/api/v1/doctors/{doctor}"), None).await;
    let (patient, _) = app.register_customer("patient@example.in").await;
    let mut appointments = Vec::new();
    for slot in &slot_list.body["slots"].as_array().unwrap()[..2] {
        let slot = slot["id"].as_i64().unwrap();
        assert_eq!(slots::hold(&app, slot, &patient).await.status, StatusCode::OK);
        let booked = app
            .post(
                "/api/v1/doctors/appointments",
                &slots::booking(slot),
                Some(&patient),
            )
            .await;
        assert_eq!(booked.status, StatusCode::CREATED, "{}", booked.body);
        appointments.push(booked.body["id"].as_i64().unwrap());
    }
    let cancel = app
        .post(
            &format!("/api/v1/doctors/appointments/{}/cancel", appointments[1]),
            &json!({}),
            Some(&patient),
        )
        .await;
    assert_eq!(cancel.status, StatusCode::OK, "{}", cancel.body);

    // Ambulances: two category 2 calls reach the patient, a category 1 call is called off.
    let (dispatcher, _) = app.user_with_role(Role::Dispatcher).await;
    let (caller, _) = app.register_customer("caller@example.in").await;
    let mut responded = Vec::new();
    for (call_sign, at_lat) in [("ALS-1", 12.9800), ("ALS-2", 12.9810)] {
        let mut crew = ambulance(&app, &dispatcher, call_sign, "als", (at_lat, 77.6050)).await;
        indexed(&app, crew.unit).await;
        let created = app
            .post("/api/v1/emergency/ambulance-requests", &call(2), Some(&caller))
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        let id = created.body["id"].as_i64().unwrap();
        assert_eq!(next_offer(&mut crew.ws).await["request"]["id"], id);
        let accepted = crew
            .ws
            .command(json!({"type": "accept", "request_id": id}), "a")
            .await;
        assert_eq!(accepted["type"], "ack", "{accepted}");
        for status in ["en_route", "on_scene"] {
            let moved = app
                .put(
                    &format!("/api/v1/emergency/units/{}/status", crew.unit),
                    &json!({"status": status}),
                    Some(&crew.token),
                )
                .await;
            assert_eq!(moved.status, StatusCode::OK, "{status}: {}", moved.body);
        }
        responded.push(id);
    }
    let created = app
        .post("/api/v1/emergency/ambulance-requests", &call(1), Some(&caller))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let called_off = created.body["id"].as_i64().unwrap();
    let cancel = app
        .post(
            &format!("/api/v1/emergency/ambulance-requests/{called_off}/cancel"),
            &json!({}),
            Some(&caller),
        )
        .await;
    assert_eq!(cancel.status, StatusCode::OK, "{}", cancel.body);
    {
        // Exact clocks: 400 s and 2 500 s (the category 2 target is 2 400 s at the 90th centile).
        use schema::ambulance_requests as ar;
        let mut conn = app.app.db.write().await.unwrap();
        for (id, call_at, scene_at) in [
            (responded[0], "2026-01-03 10:00:00", Some("2026-01-03 10:06:40")),
            (responded[1], "2026-01-04 10:00:00", Some("2026-01-04 10:41:40")),
            (called_off, "2026-01-05 10:00:00", None),
        ] {
            on_conn!(&mut conn, c => diesel::update(ar::table.find(id))
                .set((ar::call_received_at.eq(at(call_at)), ar::on_scene_at.eq(scene_at.map(at))))
                .execute(c)
                .await)
            .unwrap();
        }
    }

    // Two home-care visits booked today, one of them cancelled.
    let (nursing, _, _) = crate::care::insert_services(&app).await;
    crate::care::partner(&app, (12.9716, 77.5946), 2, &[nursing]).await;
    let (patient, _, address) = crate::care::customer_at(&app, (12.975, 77.60)).await;
    let mut visits = Vec::new();
    for window in ["09:00-11:00", "11:00-13:00"] {
        let reply = app
            .post(
                "/api/v1/services/bookings",
                &crate::care::booking(nursing, address, window),
                Some(&patient),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        visits.push(reply.body["id"].as_i64().unwrap());
    }
    let reply = app
        .post(
            &format!("/api/v1/services/bookings/{}/cancel", visits[1]),
            &json!({}),
            Some(&patient),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);

    // Bookings and collector load: booked today (India), collected tomorrow.
    let span = format!(
        "?from={}&to={}",
        today - chrono::TimeDelta::days(1),
        today + chrono::TimeDelta::days(2)
    );
    let now = analytics(&app, &span, &staff).await;
    assert_eq!(now["days"], 4);
    assert_eq!(now["orders"]["total"], 0);
    let bookings = now["bookings"].as_array().unwrap();
    assert_eq!(bookings.len(), 3);
    assert_eq!(bookings[0]["service"], "lab_collection");
    assert_eq!(bookings[0]["total"], 3);
    assert_eq!(
        status_counts(&bookings[0]["by_status"]),
        counts(&[("assigned", 2), ("cancelled", 1)])
    );
    assert_eq!(bookings[1]["service"], "doctor_appointment");
    assert_eq!(bookings[1]["total"], 2);
    assert_eq!(
        status_counts(&bookings[1]["by_status"]),
        counts(&[("cancelled", 1), ("confirmed", 1)])
    );
    assert_eq!(bookings[2]["service"], "home_care");
    assert_eq!(bookings[2]["total"], 2);
    assert_eq!(
        status_counts(&bookings[2]["by_status"]),
        counts(&[("cancelled", 1), ("confirmed", 1)])
    );
    let collectors = now["collectors"].as_array().unwrap();
    assert_eq!(collectors.len(), 1, "{collectors:?}");
    assert_eq!(collectors[0]["phlebotomist_id"], nurse.id);
    assert_eq!(collectors[0]["assigned"], 2);
    // 4 days × 8 windows inside 06:00–18:00 × 2 per window.
    assert_eq!(collectors[0]["capacity"], 64);
    assert_eq!(collectors[0]["utilisation"], 2.0 / 64.0);
    for category in now["ambulance_response"].as_array().unwrap() {
        assert_eq!(category["requests"], 0, "the calls were moved to January");
    }

    // Response times in January, as /emergency/stats computes them.
    let january = analytics(&app, "?from=2026-01-01&to=2026-01-31", &staff).await;
    let categories = january["ambulance_response"].as_array().unwrap();
    assert_eq!(categories.len(), 4);
    let c1 = &categories[0];
    assert_eq!(
        (
            c1["category"].as_i64(),
            c1["requests"].as_i64(),
            c1["responded"].as_i64()
        ),
        (Some(1), Some(1), Some(0))
    );
    assert_eq!(c1["cancelled"], 1);
    assert!(c1["mean_response_s"].is_null());
    let c2 = &categories[1];
    assert_eq!(c2["category"], 2);
    assert_eq!(
        (c2["requests"].as_i64(), c2["responded"].as_i64()),
        (Some(2), Some(2))
    );
    assert_eq!(c2["mean_response_s"], 1450.0);
    assert_eq!(c2["p90_response_s"], 2500.0);
    assert_eq!(c2["within_target"], 0.5);
    assert_eq!(c2["target"]["p90_s"], 2400);
    assert_eq!(january["bookings"][0]["total"], 0);
    assert_eq!(january["collectors"][0]["assigned"], 0);
    assert_eq!(january["collectors"][0]["capacity"], 31 * 8 * 2);
    let only_the_fourth = analytics(&app, "?from=2026-01-04&to=2026-01-04", &staff).await;
    assert_eq!(only_the_fourth["ambulance_response"][1]["responded"], 1);
    assert_eq!(only_the_fourth["ambulance_response"][1]["p90_response_s"], 2500.0);
    assert_eq!(only_the_fourth["ambulance_response"][1]["within_target"], 0.0);
}

#[actix_web::test]
async fn staff_and_admins_read_analytics_others_are_refused_and_spans_are_bounded() {
    let app = spawn_app().await;
    let (customer, _) = app.register_customer("nosy@example.in").await;
    let (staff, _) = app.user_with_role(Role::Staff).await;
    let (admin, _) = app.user_with_role(Role::Admin).await;
    let (dispatcher, _) = app.user_with_role(Role::Dispatcher).await;
    let path = "/api/v1/admin/analytics";
    assert_eq!(app.get(path, None).await.status, StatusCode::UNAUTHORIZED);
    for token in [&customer, &dispatcher] {
        let reply = app.get(path, Some(token)).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::FORBIDDEN, "forbidden"));
    }
    for token in [&staff, &admin] {
        let before = local_today(db::now());
        let reply = app.get(path, Some(token)).await;
        let after = local_today(db::now());
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(reply.body["days"], 30);
        let to: chrono::NaiveDate = reply.body["to"].as_str().unwrap().parse().unwrap();
        assert!(to == before || to == after, "the span ends today in India");
        let from: chrono::NaiveDate = reply.body["from"].as_str().unwrap().parse().unwrap();
        assert_eq!(to - from, chrono::TimeDelta::days(29));
        assert_eq!(reply.body["orders"]["per_day"].as_array().unwrap().len(), 30);
    }
    let leap_year = app
        .get(&format!("{path}?from=2024-01-01&to=2024-12-31"), Some(&staff))
        .await;
    assert_eq!(leap_year.body["days"], 366);
    for bad in [
        "?from=2024-01-01&to=2025-01-01",
        "?from=2026-02-01&to=2026-01-31",
        "?from=1999-12-31&to=2000-01-01",
        "?from=2026-13-01",
        "?to=yesterday",
    ] {
        let reply = app.get(&format!("{path}{bad}"), Some(&staff)).await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::BAD_REQUEST, "validation_failed"),
            "{bad}: {}",
            reply.body
        );
    }
}
