//! Home lab collections: booking, the offer to a connected phlebotomist and its acceptance, capacity
//! under concurrent bookings and answers, the lifecycle's legal steps, privacy of collections and
//! reports, report uploads checked by content, the day route and the at-risk alert.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use futures_util::StreamExt;
use onemedi::{
    db::{self, audit, doctors::local_today, schema},
    domain::Role,
    on_conn,
};
use reqwest::{StatusCode, multipart};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::{
    helpers::{Reply, TestApp, into_reply, redis_url, spawn_app, spawn_app_with, spawn_second_node},
    ws_client::{Client, eventually},
};

/// The collectors' base and the customers' neighbourhood (central Bengaluru, about 1 km apart).
const BASE: (f64, f64) = (12.9716, 77.5946);
const HOME: (f64, f64) = (12.9800, 77.5990);

/// The catalog's test ids: CBC (blood, 24 h), urine routine (2 h), stool routine (2 h), an inactive one.
pub(crate) struct Tests {
    pub(crate) cbc: i64,
    urine: i64,
    stool: i64,
    inactive: i64,
}

pub(crate) async fn insert_tests(app: &TestApp) -> Tests {
    use schema::{lab_categories as cat, lab_tests as t};
    let mut conn = app.app.db.write().await.unwrap();
    let category = on_conn!(&mut conn, c => diesel::insert_into(cat::table)
        .values((cat::name.eq("Routine"), cat::slug.eq("routine")))
        .returning(cat::id)
        .get_result::<i64>(c)
        .await)
    .unwrap();
    let mut insert = async |code: &str, sample: &str, hours: i32, price: i64, active: bool| -> i64 {
        on_conn!(&mut conn, c => diesel::insert_into(t::table)
            .values((
                t::category_id.eq(category),
                t::code.eq(code),
                t::name.eq(format!("Test {code}")),
                t::slug.eq(code.to_lowercase()),
                t::sample_type.eq(sample),
                t::stability_hours.eq(hours),
                t::price_paise.eq(price),
                t::mrp_paise.eq(price * 2),
                t::is_active.eq(active),
            ))
            .returning(t::id)
            .get_result::<i64>(c)
            .await)
        .unwrap()
    };
    Tests {
        cbc: insert("CBC", "blood", 24, 29_900, true).await,
        urine: insert("URINE", "urine", 2, 14_900, true).await,
        stool: insert("STOOL", "stool", 2, 19_900, true).await,
        inactive: insert("OLD", "blood", 24, 9_900, false).await,
    }
}

/// A phlebotomist with a unit, working 06:00–18:00 with `capacity` collections per window.
pub(crate) struct Collector {
    pub(crate) token: String,
    pub(crate) id: i64,
}

pub(crate) async fn collector(app: &TestApp, capacity: i32) -> Collector {
    use schema::{phlebotomists as ph, unit_crew as crew, units as u};
    let (token, user) = app.user_with_role(Role::Phlebotomist).await;
    let mut conn = app.app.db.write().await.unwrap();
    let unit = on_conn!(&mut conn, c => diesel::insert_into(u::table)
        .values((
            u::call_sign.eq(format!("PHL-{user}")),
            u::kind.eq("phlebotomist"),
            u::status.eq("available"),
            u::home_lat.eq(BASE.0),
            u::home_lng.eq(BASE.1),
        ))
        .returning(u::id)
        .get_result::<i64>(c)
        .await)
    .unwrap();
    on_conn!(&mut conn, c => diesel::insert_into(crew::table)
        .values((crew::unit_id.eq(unit), crew::user_id.eq(user), crew::crew_role.eq("phlebotomist")))
        .execute(c)
        .await)
    .unwrap();
    let id = on_conn!(&mut conn, c => diesel::insert_into(ph::table)
        .values((
            ph::user_id.eq(user),
            ph::unit_id.eq(unit),
            ph::home_lat.eq(BASE.0),
            ph::home_lng.eq(BASE.1),
            ph::work_start_minute.eq(360),
            ph::work_end_minute.eq(1080),
            ph::capacity_per_window.eq(capacity),
        ))
        .returning(ph::id)
        .get_result::<i64>(c)
        .await)
    .unwrap();
    Collector { token, id }
}

/// A customer with one address near the collectors; returns (token, address id).
pub(crate) async fn customer(app: &TestApp) -> (String, i64) {
    let (token, _) = app
        .register_customer(&format!("lab-{}@example.in", uuid::Uuid::new_v4().simple()))
        .await;
    let address = app
        .post(
            "/api/v1/users/addresses",
            &json!({"label": "Home", "line1": "4 Cubbon Road", "city": "Bengaluru", "state": "KA",
                    "pincode": "560001", "lat": HOME.0, "lng": HOME.1}),
            Some(&token),
        )
        .await;
    assert_eq!(address.status, StatusCode::CREATED, "{}", address.body);
    (token, address.body["id"].as_i64().unwrap())
}

pub(crate) fn tomorrow() -> String {
    (local_today(db::now()) + chrono::TimeDelta::days(1)).to_string()
}

pub(crate) fn booking(tests: &[i64], address: i64, window: &str) -> Value {
    json!({
        "test_ids": tests,
        "address_id": address,
        "slot": {"date": tomorrow(), "window": window},
        "patient": {"name": "Lakshmi Rao", "age": 61, "gender": "female"},
    })
}

/// Opens the collector's session subscribed to its topic.
pub(crate) async fn on_duty(app: &TestApp, collector: &Collector) -> Client {
    let mut ws = Client::open(app, &collector.token).await;
    let ack = ws.subscribe(&format!("collector:{}", collector.id)).await;
    assert_eq!(ack["type"], "ack", "{ack}");
    ws
}

/// The id of the next collection offered on this session.
pub(crate) async fn next_offer(ws: &mut Client) -> i64 {
    loop {
        let frame = ws.next().await;
        if frame["type"] == "offer" {
            assert_eq!(frame["event"]["type"], "offer_made", "{frame}");
            assert_eq!(frame["event"]["request"]["kind"], "lab_collection", "{frame}");
            return frame["event"]["request"]["id"].as_i64().unwrap();
        }
    }
}

pub(crate) async fn answer(ws: &mut Client, collection: i64, verb: &str) -> Value {
    ws.command(
        json!({"type": verb, "request_id": collection, "kind": "lab_collection"}),
        &format!("{verb}-{collection}"),
    )
    .await
}

/// Accepts every offer this session sees until the task is aborted.
async fn accept_everything(mut ws: Client) {
    while let Some(Ok(message)) = ws.socket.next().await {
        let Message::Text(text) = message else {
            continue;
        };
        let frame: Value = serde_json::from_str(&text).unwrap();
        if frame["type"] == "offer" {
            let id = frame["event"]["request"]["id"].as_i64().unwrap();
            ws.send(json!({"type": "accept", "request_id": id, "kind": "lab_collection"}))
                .await;
        }
    }
}

async fn status_of(app: &TestApp, token: &str, collection: i64) -> Value {
    let reply = app
        .get(&format!("/api/v1/lab-collections/{collection}"), Some(token))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

async fn step(app: &TestApp, token: &str, collection: i64, status: &str) -> Reply {
    app.put(
        &format!("/api/v1/lab-collections/{collection}/status"),
        &json!({"status": status}),
        Some(token),
    )
    .await
}

/// Books one collection and has the collector accept it; returns (customer token, collection id).
async fn assigned_collection(app: &TestApp, tests: &Tests, ws: &mut Client) -> (String, i64) {
    let (token, address) = customer(app).await;
    let booked = app
        .post(
            "/api/v1/lab-tests/book",
            &booking(&[tests.cbc], address, "07:00-09:00"),
            Some(&token),
        )
        .await;
    assert_eq!(booked.status, StatusCode::CREATED, "{}", booked.body);
    let id = booked.body["id"].as_i64().unwrap();
    assert_eq!(next_offer(ws).await, id);
    let accepted = answer(ws, id, "accept").await;
    assert_eq!(accepted["type"], "ack", "{accepted}");
    (token, id)
}

#[actix_web::test]
async fn a_booking_is_offered_to_a_connected_phlebotomist_who_accepts_it() {
    let app = spawn_app().await;
    let tests = insert_tests(&app).await;
    let nurse = collector(&app, 3).await;
    let mut ws = on_duty(&app, &nurse).await;
    let (token, address) = customer(&app).await;

    let request = app
        .client
        .post(app.url("/api/v1/lab-tests/book"))
        .bearer_auth(&token)
        .header("idempotency-key", "lab-booking-1")
        .json(&booking(&[tests.cbc, tests.urine], address, "07:00-09:00"));
    let booked = into_reply(request.try_clone().unwrap().send().await.unwrap()).await;
    assert_eq!(booked.status, StatusCode::CREATED, "{}", booked.body);
    assert_eq!(booked.body["status"], "booked");
    assert_eq!(booked.body["total_paise"], 29_900 + 14_900);
    assert_eq!(booked.body["sample_types"], json!(["blood", "urine"]));
    assert_eq!(booked.body["stability_minutes"], 120);
    let id = booked.body["id"].as_i64().unwrap();
    let replayed = into_reply(request.send().await.unwrap()).await;
    assert_eq!(replayed.status, StatusCode::CREATED);
    assert_eq!(replayed.body["id"], id, "the same key books once");

    assert_eq!(next_offer(&mut ws).await, id);
    let accepted = answer(&mut ws, id, "accept").await;
    assert_eq!(accepted["type"], "ack", "{accepted}");
    let again = answer(&mut ws, id, "accept").await;
    assert_eq!(again["code"], "offer_taken", "{again}");

    let view = status_of(&app, &token, id).await;
    assert_eq!(view["status"], "assigned");
    assert_eq!(view["phlebotomist_id"], nurse.id);
    let events: Vec<&str> = view["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["book", "assign"]);
    let list = app.get("/api/v1/lab-collections", Some(&token)).await;
    assert_eq!(list.body["total"], 1, "{}", list.body);

    let mut own = Client::open(&app, &token).await;
    assert_eq!(
        own.subscribe(&format!("lab_collection:{id}")).await["type"],
        "ack"
    );
    let en_route = step(&app, &nurse.token, id, "en_route").await;
    assert_eq!(en_route.status, StatusCode::OK, "{}", en_route.body);
    loop {
        let frame = own.next().await;
        if frame["event"]["type"] == "state_changed" {
            assert_eq!(frame["event"]["to"], "en_route", "{frame}");
            break;
        }
    }
}

#[actix_web::test]
async fn bookings_are_validated_and_change_nothing_when_refused() {
    let app = spawn_app().await;
    let tests = insert_tests(&app).await;
    let (token, address) = customer(&app).await;
    let (_, others_address) = customer(&app).await;
    let cases = [
        (
            booking(&[tests.inactive], address, "07:00-09:00"),
            "validation_failed",
        ),
        (
            booking(&[tests.cbc], others_address, "07:00-09:00"),
            "validation_failed",
        ),
        (booking(&[tests.cbc], address, "07:30-09:00"), "validation_failed"),
        (booking(&[], address, "07:00-09:00"), "validation_failed"),
        (
            json!({"test_ids": [tests.cbc], "address_id": address,
                   "slot": {"date": "2020-01-01", "window": "07:00-09:00"},
                   "patient": {"name": "A", "age": 30}}),
            "validation_failed",
        ),
        (
            json!({"test_ids": [tests.cbc], "address_id": address,
                   "slot": {"date": tomorrow(), "window": "07:00-09:00"},
                   "patient": {"name": "A", "age": 300}}),
            "validation_failed",
        ),
    ];
    for (body, code) in cases {
        let reply = app.post("/api/v1/lab-tests/book", &body, Some(&token)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body} → {}", reply.body);
        assert_eq!(reply.code(), code, "{}", reply.body);
    }
    let list = app.get("/api/v1/lab-collections", Some(&token)).await;
    assert_eq!(list.body["total"], 0, "{}", list.body);
}

#[actix_web::test]
async fn concurrent_bookings_for_one_window_never_exceed_the_collectors_capacity() {
    const CAPACITY: i64 = 2;
    const BOOKINGS: usize = 6;
    let app = spawn_app().await;
    // With Redis, the collector answers on a second node while the offers are made on the first.
    let second = match redis_url() {
        Some(_) => Some(spawn_second_node(&app).await),
        None => None,
    };
    let crew_node = second.as_ref().unwrap_or(&app);
    let tests = insert_tests(&app).await;
    let nurse = collector(&app, CAPACITY as i32).await;
    // Three devices of the same collector accept every offer they see, racing each other.
    let mut devices = Vec::new();
    for _ in 0..3 {
        let ws = on_duty(crew_node, &nurse).await;
        devices.push(actix_web::rt::spawn(accept_everything(ws)));
    }
    let (token, address) = customer(&app).await;
    let body = booking(&[tests.cbc], address, "09:00-11:00");
    let bookings = (0..BOOKINGS).map(|_| app.post("/api/v1/lab-tests/book", &body, Some(&token)));
    for reply in futures_util::future::join_all(bookings).await {
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    }
    let counts = async || {
        use schema::lab_collections as lc;
        let mut conn = app.app.db.read().await.unwrap();
        let assigned = on_conn!(&mut conn, c => lc::table
            .filter(lc::status.eq("assigned"))
            .count()
            .get_result::<i64>(c)
            .await)
        .unwrap();
        let waiting = on_conn!(&mut conn, c => lc::table
            .filter(lc::status.eq("booked").and(lc::unassigned_reason.is_not_null()))
            .count()
            .get_result::<i64>(c)
            .await)
        .unwrap();
        (assigned, waiting)
    };
    eventually(async || counts().await == (CAPACITY, BOOKINGS as i64 - CAPACITY)).await;
    for device in devices {
        device.abort();
    }
    assert_eq!(counts().await, (CAPACITY, BOOKINGS as i64 - CAPACITY));
    use schema::phlebotomist_window_loads as loads;
    let mut conn = app.app.db.read().await.unwrap();
    let load = on_conn!(&mut conn, c => loads::table
        .filter(loads::phlebotomist_id.eq(nurse.id))
        .select(loads::assigned)
        .first::<i32>(c)
        .await)
    .unwrap();
    assert_eq!(i64::from(load), CAPACITY);
}

#[actix_web::test]
async fn only_legal_steps_by_the_assigned_phlebotomist_move_a_collection() {
    let app = spawn_app().await;
    let tests = insert_tests(&app).await;
    let nurse = collector(&app, 3).await;
    let stranger = collector(&app, 3).await;
    let mut ws = on_duty(&app, &nurse).await;
    let (token, id) = assigned_collection(&app, &tests, &mut ws).await;

    let skipped = step(&app, &nurse.token, id, "collected").await;
    assert_eq!(skipped.status, StatusCode::CONFLICT, "{}", skipped.body);
    assert_eq!(skipped.code(), "invalid_transition");
    assert_eq!(status_of(&app, &token, id).await["status"], "assigned");
    assert_eq!(
        step(&app, &stranger.token, id, "en_route").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        step(&app, &token, id, "en_route").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        step(&app, &nurse.token, id, "flying").await.status,
        StatusCode::BAD_REQUEST
    );
    for status in ["en_route", "collected"] {
        let moved = step(&app, &nurse.token, id, status).await;
        assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
        assert_eq!(moved.body["status"], status);
    }
    let late = app
        .post(
            &format!("/api/v1/lab-collections/{id}/cancel"),
            &json!({}),
            Some(&token),
        )
        .await;
    assert_eq!(late.status, StatusCode::CONFLICT, "{}", late.body);
    assert_eq!(late.code(), "invalid_transition");
    let view = status_of(&app, &token, id).await;
    assert_eq!(view["status"], "collected");
    assert!(view["sample_deadline"].is_string(), "{view}");
}

#[actix_web::test]
async fn a_customer_cannot_read_cancel_or_follow_another_customers_collection() {
    let app = spawn_app().await;
    let tests = insert_tests(&app).await;
    let (token, address) = customer(&app).await;
    let (intruder, _) = customer(&app).await;
    let booked = app
        .post(
            "/api/v1/lab-tests/book",
            &booking(&[tests.stool], address, "12:00-14:00"),
            Some(&token),
        )
        .await;
    assert_eq!(booked.status, StatusCode::CREATED, "{}", booked.body);
    let id = booked.body["id"].as_i64().unwrap();
    // Nobody works near the address: the booking stays booked with the reason, to be retried.
    eventually(async || status_of(&app, &token, id).await["unassigned_reason"].is_string()).await;
    assert_eq!(status_of(&app, &token, id).await["status"], "booked");

    let path = format!("/api/v1/lab-collections/{id}");
    assert_eq!(
        app.get(&path, Some(&intruder)).await.status,
        StatusCode::NOT_FOUND
    );
    let cancel = app
        .post(
            &format!("{path}/cancel"),
            &json!({"reason": "mine now"}),
            Some(&intruder),
        )
        .await;
    assert_eq!(cancel.status, StatusCode::NOT_FOUND, "{}", cancel.body);
    let listed = app.get("/api/v1/lab-collections", Some(&intruder)).await;
    assert_eq!(listed.body["total"], 0);
    let mut ws = Client::open(&app, &intruder).await;
    let refused = ws.subscribe(&format!("lab_collection:{id}")).await;
    assert_eq!(refused["code"], "forbidden", "{refused}");
    let refused = ws.subscribe("lab_desk").await;
    assert_eq!(refused["code"], "forbidden", "{refused}");

    let cancelled = app
        .post(
            &format!("{path}/cancel"),
            &json!({"reason": "travelling"}),
            Some(&token),
        )
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert_eq!(cancelled.body["status"], "cancelled");
    assert_eq!(cancelled.body["cancel_reason"], "travelling");
}

async fn upload(app: &TestApp, token: &str, id: i64, bytes: &[u8], name: &str) -> Reply {
    let form = multipart::Form::new().part(
        "file",
        multipart::Part::bytes(bytes.to_vec()).file_name(name.to_owned()),
    );
    let response = app
        .client
        .post(app.url(&format!("/api/v1/lab-collections/{id}/report")))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    into_reply(response).await
}

#[actix_web::test]
async fn reports_are_pdfs_seen_only_by_the_patient_and_audited_staff() {
    let app = spawn_app().await;
    let tests = insert_tests(&app).await;
    let nurse = collector(&app, 3).await;
    let mut ws = on_duty(&app, &nurse).await;
    let (token, id) = assigned_collection(&app, &tests, &mut ws).await;
    let (staff, staff_id) = app.user_with_role(Role::Staff).await;
    let (intruder, _) = customer(&app).await;
    let pdf = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n";

    let early = upload(&app, &staff, id, pdf, "report.pdf").await;
    assert_eq!(early.status, StatusCode::CONFLICT, "{}", early.body);
    for status in ["en_route", "collected", "at_lab"] {
        assert_eq!(step(&app, &nurse.token, id, status).await.status, StatusCode::OK);
    }
    let disguised = upload(&app, &staff, id, b"<html>not a report</html>", "report.pdf").await;
    assert_eq!(
        disguised.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{}",
        disguised.body
    );
    assert_eq!(
        upload(&app, &token, id, pdf, "report.pdf").await.status,
        StatusCode::FORBIDDEN
    );
    let report_path = format!("/api/v1/lab-collections/{id}/report");
    assert_eq!(
        app.get(&report_path, Some(&token)).await.status,
        StatusCode::NOT_FOUND
    );

    let published = upload(&app, &staff, id, pdf, "report.pdf").await;
    assert_eq!(published.status, StatusCode::OK, "{}", published.body);
    assert_eq!(published.body["status"], "report_ready");
    assert_eq!(published.body["report_available"], true);

    let read = |who: String| {
        let app = &app;
        let path = report_path.clone();
        async move {
            app.client
                .get(app.url(&path))
                .bearer_auth(who)
                .send()
                .await
                .unwrap()
        }
    };
    let own = read(token.clone()).await;
    assert_eq!(own.status(), StatusCode::OK);
    assert_eq!(own.headers()["content-type"], "application/pdf");
    assert_eq!(own.bytes().await.unwrap().as_ref(), pdf);
    assert_eq!(read(intruder).await.status(), StatusCode::NOT_FOUND);
    let mut conn = app.app.db.read().await.unwrap();
    let (before, _) = audit::list(&mut conn, Some("lab_collection"), 10, 0)
        .await
        .unwrap();
    drop(conn);
    assert!(before.is_empty(), "the owner's read is not audited");
    let by_staff = read(staff).await;
    assert_eq!(by_staff.status(), StatusCode::OK);
    let mut conn = app.app.db.read().await.unwrap();
    let (entries, _) = audit::list(&mut conn, Some("lab_collection"), 10, 0)
        .await
        .unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].action, "lab_collection.report_read");
    assert_eq!(entries[0].actor_user_id, Some(staff_id));
    assert_eq!(entries[0].subject_id.as_deref(), Some(id.to_string().as_str()));
}

#[actix_web::test]
async fn the_day_route_drops_short_lived_samples_at_the_lab_before_they_expire() {
    let app = spawn_app().await;
    let tests = insert_tests(&app).await;
    let nurse = collector(&app, 5).await;
    let ws = on_duty(&app, &nurse).await;
    let device = actix_web::rt::spawn(accept_everything(ws));
    let (token, address) = customer(&app).await;
    let mut ids = Vec::new();
    for (test, window) in [
        (tests.urine, "07:00-09:00"),
        (tests.cbc, "07:00-09:00"),
        (tests.stool, "12:00-14:00"),
    ] {
        let booked = app
            .post(
                "/api/v1/lab-tests/book",
                &booking(&[test], address, window),
                Some(&token),
            )
            .await;
        assert_eq!(booked.status, StatusCode::CREATED, "{}", booked.body);
        let id = booked.body["id"].as_i64().unwrap();
        eventually(async || status_of(&app, &token, id).await["status"] == "assigned").await;
        ids.push(id);
    }
    device.abort();
    let (urine, cbc, stool) = (ids[0], ids[1], ids[2]);

    let route = app
        .get(
            &format!("/api/v1/lab-collections/route?date={}", tomorrow()),
            Some(&nurse.token),
        )
        .await;
    assert_eq!(route.status, StatusCode::OK, "{}", route.body);
    let stops: Vec<(String, Vec<i64>)> = route.body["stops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["kind"].as_str().unwrap().to_owned(),
                s["collection_ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|id| id.as_i64().unwrap())
                    .collect(),
            )
        })
        .collect();
    let expected: Vec<(String, Vec<i64>)> = vec![
        ("collect".into(), vec![cbc]),
        ("collect".into(), vec![urine]),
        ("lab_drop".into(), vec![cbc, urine]),
        ("collect".into(), vec![stool]),
        ("lab_drop".into(), vec![stool]),
    ];
    assert_eq!(stops, expected, "{}", route.body);
    assert_eq!(route.body["at_risk"], json!([]));
    let refused = app
        .get(
            &format!("/api/v1/lab-collections/route?date={}", tomorrow()),
            Some(&token),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn a_collected_sample_near_its_deadline_alerts_the_lab_desk_once() {
    let app = spawn_app_with(|s| {
        // Any collected sample is within a day of its deadline: the alert fires on the next sweep.
        s.lab.at_risk_margin_minutes = 24 * 60;
        s.lab.sweep_ms = 100;
    })
    .await;
    let tests = insert_tests(&app).await;
    let nurse = collector(&app, 3).await;
    let mut ws = on_duty(&app, &nurse).await;
    let (staff, _) = app.user_with_role(Role::Staff).await;
    let mut desk = Client::open(&app, &staff).await;
    assert_eq!(desk.subscribe("lab_desk").await["type"], "ack");
    let (_, id) = assigned_collection(&app, &tests, &mut ws).await;
    for status in ["en_route", "collected"] {
        assert_eq!(step(&app, &nurse.token, id, status).await.status, StatusCode::OK);
    }
    let alert = loop {
        let frame = desk.next().await;
        if frame["event"]["type"] == "lab_collection_at_risk" {
            break frame["event"].clone();
        }
    };
    assert_eq!(alert["collection_id"], id, "{alert}");
    assert_eq!(alert["phlebotomist_id"], nurse.id);
    // Recorded once in the timeline, however many sweeps ran meanwhile.
    eventually(async || {
        let view = status_of(&app, &staff, id).await;
        let alerts = view["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["event"] == "at_risk")
            .count();
        assert!(alerts <= 1, "{view}");
        alerts == 1
    })
    .await;
}

#[actix_web::test]
async fn a_booking_nobody_could_take_is_offered_again_when_a_collector_comes_on_duty() {
    let app = spawn_app_with(|s| {
        s.lab.retry_after_secs = 1;
        s.lab.sweep_ms = 100;
        // An offer made before the session subscribed lapses quickly and is made again.
        s.lab.offer_timeout_secs = 2;
    })
    .await;
    let tests = insert_tests(&app).await;
    let (token, address) = customer(&app).await;
    let booked = app
        .post(
            "/api/v1/lab-tests/book",
            &booking(&[tests.cbc], address, "14:00-16:00"),
            Some(&token),
        )
        .await;
    let id = booked.body["id"].as_i64().unwrap();
    eventually(async || status_of(&app, &token, id).await["unassigned_reason"].is_string()).await;

    let nurse = collector(&app, 1).await;
    let mut ws = on_duty(&app, &nurse).await;
    assert_eq!(next_offer(&mut ws).await, id);
    assert_eq!(answer(&mut ws, id, "accept").await["type"], "ack");
    let view = status_of(&app, &token, id).await;
    assert_eq!(view["status"], "assigned");
    assert!(view["unassigned_reason"].is_null(), "{view}");
}

#[actix_web::test]
async fn after_a_reload_a_phlebotomist_reads_the_open_collection_offer_and_then_the_collection_under_way() {
    let app = spawn_app().await;
    let tests = insert_tests(&app).await;
    let collector = collector(&app, 3).await;
    let mut ws = on_duty(&app, &collector).await;
    let (customer_token, address) = customer(&app).await;
    let booked = app
        .post(
            "/api/v1/lab-tests/book",
            &booking(&[tests.cbc], address, "07:00-09:00"),
            Some(&customer_token),
        )
        .await;
    assert_eq!(booked.status, StatusCode::CREATED, "{}", booked.body);
    let first = booked.body["id"].as_i64().unwrap();
    assert_eq!(next_offer(&mut ws).await, first);

    let mine = app.get("/api/v1/emergency/my-unit", Some(&collector.token)).await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
    assert_eq!(mine.body["collector_id"], collector.id);
    let open = &mine.body["open_offer"];
    assert_eq!(
        open["request"],
        json!({"kind": "lab_collection", "id": first}),
        "{open}"
    );
    assert!(open["expires_in_s"].as_f64().unwrap() > 0.0, "{open}");
    // About 1 km from the base to the customer, as the offer stored it.
    let distance = open["distance_m"].as_f64().unwrap();
    assert!((500.0..2_000.0).contains(&distance), "{open}");
    assert!(open["eta_s"].as_f64().unwrap() > 0.0, "{open}");
    assert!(mine.body["current_job"].is_null());

    assert_eq!(answer(&mut ws, first, "accept").await["type"], "ack");
    let mine = app.get("/api/v1/emergency/my-unit", Some(&collector.token)).await;
    assert!(mine.body["open_offer"].is_null(), "{}", mine.body);
    assert_eq!(
        mine.body["current_job"],
        json!({"kind": "lab_collection", "id": first, "status": "assigned"})
    );
    assert_eq!(
        step(&app, &collector.token, first, "en_route").await.status,
        StatusCode::OK
    );

    // A second collection in an earlier window: the one under way stays the current job.
    let (second, _) = {
        let (token, address) = customer(&app).await;
        let booked = app
            .post(
                "/api/v1/lab-tests/book",
                &booking(&[tests.cbc], address, "06:00-08:00"),
                Some(&token),
            )
            .await;
        assert_eq!(booked.status, StatusCode::CREATED, "{}", booked.body);
        (booked.body["id"].as_i64().unwrap(), token)
    };
    assert_eq!(next_offer(&mut ws).await, second);
    assert_eq!(answer(&mut ws, second, "accept").await["type"], "ack");
    let mine = app.get("/api/v1/emergency/my-unit", Some(&collector.token)).await;
    assert_eq!(
        mine.body["current_job"],
        json!({"kind": "lab_collection", "id": first, "status": "en_route"})
    );
    for status in ["collected", "at_lab"] {
        assert_eq!(
            step(&app, &collector.token, first, status).await.status,
            StatusCode::OK
        );
    }
    let mine = app.get("/api/v1/emergency/my-unit", Some(&collector.token)).await;
    assert_eq!(
        mine.body["current_job"],
        json!({"kind": "lab_collection", "id": second, "status": "assigned"})
    );
}
