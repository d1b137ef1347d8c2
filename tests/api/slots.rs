//! Doctor slots end to end: schedules generate slots, a hold is one conditional write, a booking
//! confirms only the caller's live hold, lapsed holds are released (lazily and by the sweep),
//! cancellation frees the slot, and a hundred customers racing for one slot across two nodes leave
//! exactly one appointment.

use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use onemedi::{db::schema, domain::Role, on_conn};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, postgres_url, spawn_app, spawn_app_with, spawn_second_node},
    ws_client::Client,
};

/// A doctor with a profile and a schedule of hourly slots round the clock; returns (token, doctor id).
pub async fn doctor(app: &TestApp, specialty: &str) -> (String, i64) {
    use schema::doctors;
    let (token, user) = app.user_with_role(Role::Doctor).await;
    let now = onemedi::db::now();
    let mut conn = app.app.db.write().await.unwrap();
    let id: i64 = on_conn!(&mut conn, c => diesel::insert_into(doctors::table)
        .values((
            doctors::user_id.eq(user),
            doctors::specialty.eq(specialty),
            doctors::qualifications.eq("MBBS"),
            doctors::fee_paise.eq(50_000_i64),
            doctors::rating.eq(4.5),
            doctors::created_at.eq(now),
            doctors::updated_at.eq(now),
        ))
        .returning(doctors::id)
        .get_result(c)
        .await)
    .unwrap();
    drop(conn);
    let windows: Vec<Value> = (0..7)
        .map(|d| json!({"weekday": d, "start": "00:00", "end": "24:00"}))
        .collect();
    let reply = app
        .put(
            "/api/v1/doctors/me/schedule",
            &json!({"slot_minutes": 60, "windows": windows}),
            Some(&token),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.body["slots_added"].as_i64().unwrap() > 24);
    (token, id)
}

/// The first bookable slot of a doctor.
pub async fn first_slot(app: &TestApp, doctor: i64) -> i64 {
    let reply = app.get(&format!("/api/v1/doctors/{doctor}"), None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body["slots"][0]["id"].as_i64().unwrap()
}

/// (status, held_by) of a slot and how many live appointments it has.
async fn slot_state(app: &TestApp, slot: i64) -> (String, Option<i64>, i64) {
    use schema::{appointments as ap, doctor_slots as sl};
    let mut conn = app.app.db.read().await.unwrap();
    let (status, held_by) = on_conn!(&mut conn, c => sl::table
        .find(slot)
        .select((sl::status, sl::held_by))
        .first::<(String, Option<i64>)>(c)
        .await)
    .unwrap();
    let live: i64 = on_conn!(&mut conn, c => ap::table
        .filter(ap::slot_id.eq(slot).and(ap::status.ne("cancelled")))
        .count()
        .get_result(c)
        .await)
    .unwrap();
    (status, held_by, live)
}

pub fn booking(slot: i64) -> Value {
    json!({"slot_id": slot, "mode": "video", "payment_method": "cod", "notes": "fever for two days"})
}

pub async fn hold(app: &TestApp, slot: i64, token: &str) -> crate::helpers::Reply {
    app.post(
        &format!("/api/v1/doctors/slots/{slot}/hold"),
        &json!({}),
        Some(token),
    )
    .await
}

/// The next `slot_status` event a session receives.
async fn slot_event(ws: &mut Client) -> Value {
    loop {
        let frame = ws.next().await;
        if frame["event"]["type"] == "slot_status" {
            return frame["event"].clone();
        }
    }
}

#[actix_web::test]
async fn the_demo_doctors_get_their_slots_once_however_often_generation_runs() {
    let app = spawn_app().await;
    let mut conn = app.app.db.write().await.unwrap();
    assert!(onemedi::db::demo::seed(&mut conn).await.unwrap());
    drop(conn);
    // The node's own generation task may run first (it waits for the writer the seed held).
    onemedi::api::doctors::generate_all_slots(&app.app).await.unwrap();
    let count = || async {
        let mut conn = app.app.db.read().await.unwrap();
        on_conn!(&mut conn, c => schema::doctor_slots::table.count().get_result::<i64>(c).await).unwrap()
    };
    let slots = count().await;
    assert!(slots > 100, "{slots} slots");
    assert_eq!(
        onemedi::api::doctors::generate_all_slots(&app.app).await.unwrap(),
        0
    );
    assert_eq!(count().await, slots);
    let list = app.get("/api/v1/doctors?per_page=10", None).await;
    assert_eq!(list.body["total"], 4, "{}", list.body);
    for doctor in list.body["items"].as_array().unwrap() {
        let page = app.get(&format!("/api/v1/doctors/{}", doctor["id"]), None).await;
        assert!(
            !page.body["slots"].as_array().unwrap().is_empty(),
            "{}",
            page.body
        );
    }
    let cardiology = app.get("/api/v1/doctors?specialty=cardiologist", None).await;
    assert_eq!(cardiology.body["total"], 1);
}

#[actix_web::test]
async fn a_hundred_customers_racing_for_one_slot_across_two_nodes_leave_exactly_one_booking() {
    const CUSTOMERS: usize = 100;
    let first = spawn_app().await;
    let second = match postgres_url() {
        Some(_) => Some(spawn_second_node(&first).await),
        None => None,
    };
    let nodes: Vec<&TestApp> = std::iter::once(&first).chain(second.as_ref()).collect();
    let (_, doctor) = doctor(&first, "General Physician").await;
    let slot = first_slot(&first, doctor).await;
    let emails: Vec<String> = (0..CUSTOMERS).map(|i| format!("racer{i}@example.in")).collect();
    let customers =
        futures_util::future::join_all(emails.iter().map(|email| first.register_customer(email))).await;

    let attempts = customers.iter().enumerate().map(|(i, (token, _))| {
        let node = nodes[i % nodes.len()];
        async move {
            let held = hold(node, slot, token).await;
            // Two confirmations at once: the holder's own duplicate must not book twice either.
            let (booked, again) = futures_util::future::join(
                node.post("/api/v1/doctors/appointments", &booking(slot), Some(token)),
                node.post("/api/v1/doctors/appointments", &booking(slot), Some(token)),
            )
            .await;
            (held, booked, again)
        }
    });
    let results = futures_util::future::join_all(attempts).await;

    let mut holds = 0;
    let mut bookings = 0;
    for (held, booked, again) in &results {
        match held.status {
            StatusCode::OK => holds += 1,
            StatusCode::CONFLICT => assert_eq!(held.code(), "slot_unavailable", "{}", held.body),
            other => panic!("unexpected hold answer {other}: {}", held.body),
        }
        for booked in [booked, again] {
            match booked.status {
                StatusCode::CREATED => bookings += 1,
                StatusCode::CONFLICT => assert_eq!(booked.code(), "slot_unavailable", "{}", booked.body),
                other => panic!("unexpected booking answer {other}: {}", booked.body),
            }
        }
    }
    assert_eq!(holds, 1, "exactly one hold wins");
    assert_eq!(bookings, 1, "exactly one booking wins");
    let (status, holder, live) = slot_state(&first, slot).await;
    assert_eq!(status, "booked");
    assert_eq!(live, 1);
    let winner = results
        .iter()
        .position(|(_, booked, again)| [booked, again].iter().any(|r| r.status == StatusCode::CREATED))
        .unwrap();
    assert_eq!(holder, Some(customers[winner].1));
}

#[actix_web::test]
async fn a_customer_cannot_hold_or_confirm_a_slot_someone_else_holds() {
    let app = spawn_app().await;
    let (_, doctor) = doctor(&app, "Cardiologist").await;
    let slot = first_slot(&app, doctor).await;
    let (asha, asha_id) = app.register_customer("asha@example.in").await;
    let (rahul, _) = app.register_customer("rahul@example.in").await;

    let held = hold(&app, slot, &asha).await;
    assert_eq!(held.status, StatusCode::OK, "{}", held.body);
    let refused = hold(&app, slot, &rahul).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(refused.code(), "slot_unavailable");
    let refused = app
        .post("/api/v1/doctors/appointments", &booking(slot), Some(&rahul))
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(refused.code(), "slot_unavailable");

    // Holding one's own live hold again changes nothing.
    let again = hold(&app, slot, &asha).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["held_until"], held.body["held_until"]);
    assert_eq!(slot_state(&app, slot).await, ("held".into(), Some(asha_id), 0));

    // A held slot is not offered to others.
    let page = app.get(&format!("/api/v1/doctors/{doctor}"), None).await;
    assert!(
        page.body["slots"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["id"] != slot)
    );
}

#[actix_web::test]
async fn a_lapsed_hold_is_released_on_time_and_another_customer_can_hold_and_book_it() {
    let app = spawn_app_with(|s| {
        s.care.slot_hold_secs = 1;
        s.care.hold_sweep_ms = 200;
    })
    .await;
    let (_, doctor) = doctor(&app, "Dermatologist").await;
    let slot = first_slot(&app, doctor).await;
    let (asha, asha_id) = app.register_customer("asha@example.in").await;
    let (rahul, rahul_id) = app.register_customer("rahul@example.in").await;
    let mut watcher = Client::open(&app, &rahul).await;
    assert_eq!(
        watcher.subscribe(&format!("doctor_slot:{slot}")).await["type"],
        "ack"
    );
    let mut holder = Client::open(&app, &asha).await;
    assert_eq!(holder.subscribe(&format!("user:{asha_id}")).await["type"], "ack");

    assert_eq!(hold(&app, slot, &asha).await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    // The sweep has set it back to open and told the slot's watchers and the former holder.
    assert_eq!(slot_state(&app, slot).await, ("open".into(), None, 0));
    for ws in [&mut watcher, &mut holder] {
        assert_eq!(slot_event(ws).await["status"], "held");
        let reopened = slot_event(ws).await;
        assert_eq!(reopened["status"], "open");
        assert_eq!(reopened["slot_id"], slot);
    }
    let late = app
        .post("/api/v1/doctors/appointments", &booking(slot), Some(&asha))
        .await;
    assert_eq!(late.status, StatusCode::CONFLICT);
    assert_eq!(late.code(), "slot_unavailable");

    assert_eq!(hold(&app, slot, &rahul).await.status, StatusCode::OK);
    let booked = app
        .post("/api/v1/doctors/appointments", &booking(slot), Some(&rahul))
        .await;
    assert_eq!(booked.status, StatusCode::CREATED, "{}", booked.body);
    assert_eq!(booked.body["status"], "confirmed");
    assert_eq!(slot_state(&app, slot).await, ("booked".into(), Some(rahul_id), 1));
}

#[actix_web::test]
async fn a_lapsed_hold_is_free_to_take_before_any_sweep_runs() {
    let app = spawn_app_with(|s| {
        s.care.slot_hold_secs = 1;
        s.care.hold_sweep_ms = 3_600_000;
    })
    .await;
    let (_, doctor) = doctor(&app, "Paediatrician").await;
    let slot = first_slot(&app, doctor).await;
    let (asha, _) = app.register_customer("asha@example.in").await;
    let (rahul, rahul_id) = app.register_customer("rahul@example.in").await;

    assert_eq!(hold(&app, slot, &asha).await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let taken = hold(&app, slot, &rahul).await;
    assert_eq!(taken.status, StatusCode::OK, "{}", taken.body);
    assert_eq!(slot_state(&app, slot).await, ("held".into(), Some(rahul_id), 0));
    let late = app
        .post("/api/v1/doctors/appointments", &booking(slot), Some(&asha))
        .await;
    assert_eq!(late.code(), "slot_unavailable");
}

#[actix_web::test]
async fn cancellation_frees_the_slot_and_another_customers_appointment_is_not_found() {
    let app = spawn_app().await;
    let (doctor_token, doctor) = doctor(&app, "General Physician").await;
    let slot = first_slot(&app, doctor).await;
    let (asha, _) = app.register_customer("asha@example.in").await;
    let (rahul, rahul_id) = app.register_customer("rahul@example.in").await;

    assert_eq!(hold(&app, slot, &asha).await.status, StatusCode::OK);
    let booked = app
        .post(
            "/api/v1/doctors/appointments",
            &json!({"slot_id": slot, "mode": "in_person", "payment_method": "razorpay"}),
            Some(&asha),
        )
        .await;
    assert_eq!(booked.status, StatusCode::CREATED, "{}", booked.body);
    assert_eq!(booked.body["status"], "pending_payment");
    assert_eq!(booked.body["fee_paise"], 50_000);
    let id = booked.body["id"].as_i64().unwrap();

    // The doctor sees it on that day.
    let start: chrono::DateTime<chrono::Utc> = booked.body["start"].as_str().unwrap().parse().unwrap();
    let date = (start + chrono::TimeDelta::minutes(330)).date_naive();
    let day = app
        .get(
            &format!("/api/v1/doctors/me/day?date={date}"),
            Some(&doctor_token),
        )
        .await;
    assert_eq!(day.status, StatusCode::OK, "{}", day.body);
    assert_eq!(day.body[0]["id"], id);

    // Another customer neither sees nor cancels it.
    let path = format!("/api/v1/doctors/appointments/{id}");
    assert_eq!(app.get(&path, Some(&rahul)).await.status, StatusCode::NOT_FOUND);
    let foreign = app
        .post(&format!("{path}/cancel"), &json!({}), Some(&rahul))
        .await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert_eq!(foreign.code(), "not_found");
    assert_eq!(
        app.get("/api/v1/doctors/appointments", Some(&rahul)).await.body["total"],
        0
    );
    assert_eq!(
        app.get("/api/v1/doctors/appointments", Some(&asha)).await.body["total"],
        1
    );

    let cancelled = app
        .post(
            &format!("{path}/cancel"),
            &json!({"reason": "feeling better"}),
            Some(&asha),
        )
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert_eq!(cancelled.body["status"], "cancelled");
    assert_eq!(slot_state(&app, slot).await, ("open".into(), None, 0));
    let twice = app.post(&format!("{path}/cancel"), &json!({}), Some(&asha)).await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    assert_eq!(twice.code(), "invalid_transition");

    // The freed slot is bookable again.
    assert_eq!(hold(&app, slot, &rahul).await.status, StatusCode::OK);
    let rebooked = app
        .post("/api/v1/doctors/appointments", &booking(slot), Some(&rahul))
        .await;
    assert_eq!(rebooked.status, StatusCode::CREATED, "{}", rebooked.body);
    assert_eq!(slot_state(&app, slot).await, ("booked".into(), Some(rahul_id), 1));
}

#[actix_web::test]
async fn validation_errors_and_wrong_callers_change_nothing() {
    let app = spawn_app().await;
    let (doctor_token, doctor) = doctor(&app, "Cardiologist").await;
    let slot = first_slot(&app, doctor).await;
    let (asha, asha_id) = app.register_customer("asha@example.in").await;
    assert_eq!(hold(&app, slot, &asha).await.status, StatusCode::OK);

    for body in [
        json!({"slot_id": slot, "mode": "telepathy", "payment_method": "cod"}),
        json!({"slot_id": slot, "mode": "video", "payment_method": "barter"}),
        json!({"slot_id": slot, "mode": "video", "payment_method": "cod", "notes": "x".repeat(501)}),
        json!({"slot_id": slot, "mode": "video"}),
    ] {
        let reply = app.post("/api/v1/doctors/appointments", &body, Some(&asha)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}: {}", reply.body);
        assert_eq!(reply.code(), "validation_failed");
    }
    assert_eq!(slot_state(&app, slot).await, ("held".into(), Some(asha_id), 0));

    // Only customers hold; unknown slots are 404.
    assert_eq!(
        hold(&app, slot, &doctor_token).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(hold(&app, 999_999, &asha).await.status, StatusCode::NOT_FOUND);

    // A bad schedule is refused whole.
    let overlapping = json!({"slot_minutes": 30, "windows": [
        {"weekday": 0, "start": "09:00", "end": "12:00"},
        {"weekday": 0, "start": "11:00", "end": "13:00"},
    ]});
    let reply = app
        .put("/api/v1/doctors/me/schedule", &overlapping, Some(&doctor_token))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply = app
        .put(
            "/api/v1/doctors/me/schedule",
            &json!({"slot_minutes": 1, "windows": [{"weekday": 9, "start": "9am", "end": "12:00"}]}),
            Some(&doctor_token),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.body["error"]["details"]["slot_minutes"].is_string());
    assert!(reply.body["error"]["details"]["windows[0]"].is_string());
    assert_eq!(
        app.put("/api/v1/doctors/me/schedule", &overlapping, Some(&asha))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        first_slot(&app, doctor).await,
        slot + 1,
        "the schedule is unchanged"
    );

    // Directory filters.
    let list = app.get("/api/v1/doctors?specialty=cardiologist", None).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert_eq!(list.body["total"], 1);
    assert_eq!(list.body["items"][0]["id"], doctor);
    assert_eq!(
        app.get("/api/v1/doctors?specialty=surgeon", None).await.body["total"],
        0
    );
    assert_eq!(
        app.get("/api/v1/doctors?max_fee_paise=100", None).await.body["total"],
        0
    );
    assert_eq!(
        app.get("/api/v1/doctors?min_rating=4", None).await.body["total"],
        1
    );
    let far = chrono::Utc::now().date_naive() + chrono::TimeDelta::days(40);
    assert_eq!(
        app.get(&format!("/api/v1/doctors?available_on={far}"), None)
            .await
            .body["total"],
        0
    );
    let soon = chrono::Utc::now().date_naive() + chrono::TimeDelta::days(2);
    assert_eq!(
        app.get(&format!("/api/v1/doctors?available_on={soon}"), None)
            .await
            .body["total"],
        1
    );
    for bad in ["min_rating=9", "available_on=tomorrow", "per_page=1000"] {
        let reply = app.get(&format!("/api/v1/doctors?{bad}"), None).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[actix_web::test]
async fn a_new_schedule_replaces_future_open_slots_and_keeps_bookings() {
    let app = spawn_app().await;
    let (doctor_token, doctor) = doctor(&app, "General Physician").await;
    let slot = first_slot(&app, doctor).await;
    let (asha, asha_id) = app.register_customer("asha@example.in").await;
    assert_eq!(hold(&app, slot, &asha).await.status, StatusCode::OK);
    let booked = app
        .post("/api/v1/doctors/appointments", &booking(slot), Some(&asha))
        .await;
    assert_eq!(booked.status, StatusCode::CREATED, "{}", booked.body);

    // Mornings only, 10:00–11:00 India time (04:30 UTC), every day.
    let windows: Vec<Value> = (0..7)
        .map(|d| json!({"weekday": d, "start": "10:00", "end": "11:00", "mode": "video"}))
        .collect();
    let schedule = json!({"slot_minutes": 30, "windows": windows});
    let saved = app
        .put("/api/v1/doctors/me/schedule", &schedule, Some(&doctor_token))
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    assert_eq!(saved.body["windows"], 7);
    let page = app.get(&format!("/api/v1/doctors/{doctor}"), None).await;
    let slots = page.body["slots"].as_array().unwrap();
    assert!(!slots.is_empty());
    for s in slots {
        let start = s["start"].as_str().unwrap();
        assert!(
            start.contains("T04:30:00") || start.contains("T05:00:00"),
            "{start}"
        );
        assert_eq!(s["mode"], "video");
    }
    assert_eq!(slot_state(&app, slot).await, ("booked".into(), Some(asha_id), 1));

    // Saving the same schedule again adds nothing.
    let again = app
        .put("/api/v1/doctors/me/schedule", &schedule, Some(&doctor_token))
        .await;
    assert_eq!(again.body["slots_added"], 0);
}
