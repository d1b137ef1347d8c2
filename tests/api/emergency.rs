//! Ambulance dispatch end to end: units and crews, the offer cascade over the websocket, answers settled
//! by conditional writes, the NEMSIS timeline and bed counts, access rules, response clocks, and a race
//! of concurrent requests across two nodes that must never give one unit two requests.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use futures_util::SinkExt;
use onemedi::{db::schema, domain::Role, on_conn};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::{
    helpers::{TestApp, redis_url, spawn_app, spawn_app_with, spawn_second_node},
    ws_client::{Client, eventually},
};

/// MG Road, Bengaluru.
const PICKUP: (f64, f64) = (12.9750, 77.6050);

/// A crewed ambulance whose crew is connected, on duty and reporting its position.
pub(crate) struct Crew {
    pub(crate) token: String,
    pub(crate) unit: i64,
    pub(crate) ws: Client,
}

pub(crate) async fn ambulance(
    app: &TestApp,
    dispatcher: &str,
    call_sign: &str,
    kind: &str,
    at: (f64, f64),
) -> Crew {
    let (token, user) = app.user_with_role(Role::Paramedic).await;
    let created = app
        .post(
            "/api/v1/emergency/units",
            &json!({
                "call_sign": call_sign,
                "kind": kind,
                "home": {"lat": at.0, "lng": at.1},
                "station_name": "Central",
                "equipment": ["defibrillator"],
                "crew": [{"user_id": user, "lead": true}],
            }),
            Some(dispatcher),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["status"], "off_duty");
    assert_eq!(created.body["crew"][0]["user_id"], user);
    let unit = created.body["id"].as_i64().unwrap();
    let mine = app.get("/api/v1/emergency/my-unit", Some(&token)).await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
    assert_eq!(
        (mine.body["id"].as_i64(), mine.body["call_sign"].as_str()),
        (Some(unit), Some(call_sign))
    );
    let ws = on_duty(app, &token, unit, at).await;
    Crew { token, unit, ws }
}

/// Opens the crew's session on `app`, subscribes to its unit, goes available and reports `at`.
async fn on_duty(app: &TestApp, token: &str, unit: i64, at: (f64, f64)) -> Client {
    let mut ws = Client::open(app, token).await;
    assert_eq!(ws.subscribe(&format!("unit:{unit}")).await["type"], "ack");
    let status = ws
        .command(json!({"type": "status", "status": "available"}), "s")
        .await;
    assert_eq!(status["type"], "ack", "{status}");
    let ping = json!({"type": "location", "lat": at.0, "lng": at.1, "heading": 0, "speed": 0});
    assert_eq!(ws.command(ping, "l").await["type"], "ack");
    ws
}

/// Waits until `app`'s fleet index holds `unit` as available.
pub(crate) async fn indexed(app: &TestApp, unit: i64) {
    use onemedi_actors::{fleet::UnitStatus, ids::UnitId};
    eventually(async || {
        onemedi::bus::lock_fleet(&app.app.fleet)
            .get(UnitId(unit))
            .is_some_and(|u| u.status == UnitStatus::Available)
    })
    .await;
}

/// The next offer frame's event on this crew's session.
pub(crate) async fn next_offer(ws: &mut Client) -> Value {
    loop {
        let frame = ws.next().await;
        if frame["type"] == "offer" {
            return frame["event"].clone();
        }
    }
}

/// Reads frames until one carries an event of `kind` for `request`.
async fn event_for(ws: &mut Client, kind: &str, request: i64) -> Value {
    loop {
        let frame = ws.next().await;
        let event = &frame["event"];
        let about = event["request"]["id"].as_i64().or(event["entity"]["id"].as_i64());
        if event["type"] == kind && about == Some(request) {
            return event.clone();
        }
    }
}

pub(crate) fn call(category: i32) -> Value {
    json!({
        "pickup": {"lat": PICKUP.0, "lng": PICKUP.1, "address": "12 MG Road"},
        "category": category,
        "patient": {"name": "Ravi Kumar", "age": 54, "phone": "+919845012345", "condition": "chest pain"},
        "notes": "third floor, lift working",
    })
}

pub(crate) async fn insert_hospital(app: &TestApp, beds: i32) -> i64 {
    use schema::hospitals as h;
    let mut conn = app.app.db.write().await.unwrap();
    on_conn!(&mut conn, c => diesel::insert_into(h::table)
        .values((
            h::name.eq("St. Martha's Hospital"),
            h::slug.eq(format!("st-marthas-{}", uuid::Uuid::new_v4().simple())),
            h::address.eq("Nrupathunga Road"),
            h::city.eq("Bengaluru"),
            h::pincode.eq("560001"),
            h::lat.eq(12.9680),
            h::lng.eq(77.5880),
            h::beds_emergency_total.eq(10),
            h::beds_emergency_available.eq(beds),
        ))
        .returning(h::id)
        .get_result::<i64>(c)
        .await)
    .unwrap()
}

async fn unit_status(app: &TestApp, unit: i64) -> String {
    use schema::units as u;
    let mut conn = app.app.db.read().await.unwrap();
    on_conn!(&mut conn, c => u::table.find(unit).select(u::status).first::<String>(c).await).unwrap()
}

#[actix_web::test]
async fn the_nearest_crew_is_offered_the_call_accepts_it_and_the_request_runs_to_hand_over() {
    let app = spawn_app().await;
    let (dispatcher, _) = app.user_with_role(Role::Dispatcher).await;
    let mut near = ambulance(&app, &dispatcher, "ALS-1", "als", (12.9800, 77.6050)).await;
    let far = ambulance(&app, &dispatcher, "ALS-2", "als", (13.0300, 77.6050)).await;
    indexed(&app, near.unit).await;
    indexed(&app, far.unit).await;
    let (customer, customer_id) = app.register_customer("caller@example.in").await;

    let created = app
        .post("/api/v1/emergency/ambulance-requests", &call(1), Some(&customer))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_i64().unwrap();
    assert_eq!(created.body["requester_user_id"], customer_id);
    assert_eq!(created.body["clock"]["target"]["p90_s"], 900);
    let mut follower = Client::open(&app, &customer).await;
    assert_eq!(
        follower.subscribe(&format!("ambulance_request:{id}")).await["type"],
        "ack"
    );

    let offer = next_offer(&mut near.ws).await;
    assert_eq!(offer["type"], "offer_made");
    assert_eq!(offer["request"], json!({"kind": "ambulance_request", "id": id}));
    assert_eq!(offer["unit"], near.unit);
    assert!(offer["expires_at"].is_string());
    let accepted = near
        .ws
        .command(json!({"type": "accept", "request_id": id}), "a1")
        .await;
    assert_eq!(accepted["type"], "ack", "{accepted}");
    let assigned = event_for(&mut follower, "unit_assigned", id).await;
    assert_eq!(assigned["unit"], near.unit);

    let seen = app
        .get(
            &format!("/api/v1/emergency/ambulance-requests/{id}"),
            Some(&customer),
        )
        .await;
    assert_eq!(seen.status, StatusCode::OK, "{}", seen.body);
    assert_eq!(seen.body["status"], "assigned");
    assert_eq!(seen.body["unit"]["id"], near.unit);
    assert_eq!(seen.body["unit"]["call_sign"], "ALS-1");
    assert!(seen.body["unit"]["position"]["last_seen_age_s"].as_f64().unwrap() >= 0.0);
    assert!(seen.body["unit"]["eta_s"].as_f64().unwrap() > 0.0);
    assert!(seen.body["times"]["notified"].is_string());
    assert_eq!(unit_status(&app, near.unit).await, "assigned");
    assert_eq!(unit_status(&app, far.unit).await, "available");

    let hospital = insert_hospital(&app, 3).await;
    let step = async |status: &str, extra: Value| {
        let mut body = json!({"status": status});
        if let Some(hospital) = extra.get("hospital_id") {
            body["hospital_id"] = hospital.clone();
        }
        app.put(
            &format!("/api/v1/emergency/units/{}/status", near.unit),
            &body,
            Some(&near.token),
        )
        .await
    };
    let departed = step("en_route", json!({})).await;
    assert_eq!(departed.body["status"], "en_route", "{}", departed.body);
    assert_eq!(step("on_scene", json!({})).await.body["status"], "on_scene");
    let on_scene = app
        .get(
            &format!("/api/v1/emergency/ambulance-requests/{id}"),
            Some(&dispatcher),
        )
        .await;
    assert_eq!(on_scene.body["status"], "on_scene");
    assert_eq!(
        on_scene.body["recommended_destinations"][0]["hospital_id"],
        hospital
    );
    assert_eq!(on_scene.body["clock"]["met"], true);
    let missing = step("transporting", json!({})).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.code(), "validation_failed");
    let out_of_order = step("handed_over", json!({})).await;
    assert_eq!(out_of_order.status, StatusCode::CONFLICT);
    assert_eq!(out_of_order.code(), "invalid_transition");
    let transporting = step("transporting", json!({"hospital_id": hospital})).await;
    assert_eq!(transporting.status, StatusCode::OK, "{}", transporting.body);
    assert_eq!(
        step("at_destination", json!({})).await.body["status"],
        "at_destination"
    );
    {
        use schema::hospitals as h;
        let mut conn = app.app.db.read().await.unwrap();
        let beds: i32 = on_conn!(&mut conn, c => h::table
            .find(hospital)
            .select(h::beds_emergency_available)
            .first(c)
            .await)
        .unwrap();
        assert_eq!(beds, 2, "one emergency bed is taken on arrival");
    }
    assert_eq!(step("handed_over", json!({})).await.status, StatusCode::OK);
    assert_eq!(
        step("back_in_service", json!({})).await.body["status"],
        "available"
    );

    let done = app
        .get(
            &format!("/api/v1/emergency/ambulance-requests/{id}"),
            Some(&dispatcher),
        )
        .await;
    assert_eq!(done.body["status"], "closed");
    for time in [
        "call_received",
        "notified",
        "en_route",
        "on_scene",
        "transporting",
        "at_destination",
        "handed_over",
        "back_in_service",
    ] {
        assert!(
            done.body["times"][time].is_string(),
            "{time} missing: {}",
            done.body
        );
    }
    let events: Vec<&str> = done.body["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        [
            "call_received",
            "offer",
            "assign",
            "depart",
            "arrive",
            "start_transport",
            "reach_destination",
            "hand_over",
            "close"
        ]
    );

    let stats = app.get("/api/v1/emergency/stats", Some(&dispatcher)).await;
    assert_eq!(stats.status, StatusCode::OK, "{}", stats.body);
    assert_eq!(stats.body["categories"][0]["category"], 1);
    assert_eq!(stats.body["categories"][0]["responded"], 1);
    assert_eq!(stats.body["categories"][0]["within_target"], 1.0);
    assert_eq!(
        app.get("/api/v1/emergency/stats", Some(&customer)).await.code(),
        "forbidden"
    );
}

#[actix_web::test]
async fn a_decline_moves_the_call_on_and_expired_or_taken_offers_are_refused_without_changing_anything() {
    let app = spawn_app().await;
    let (dispatcher, _) = app.user_with_role(Role::Dispatcher).await;
    let mut near = ambulance(&app, &dispatcher, "ALS-10", "als", (12.9800, 77.6050)).await;
    let mut middle = ambulance(&app, &dispatcher, "ALS-11", "als", (13.0000, 77.6050)).await;
    let spare = ambulance(&app, &dispatcher, "BLS-12", "bls", (13.0500, 77.6050)).await;
    for unit in [near.unit, middle.unit, spare.unit] {
        indexed(&app, unit).await;
    }
    let (customer, _) = app.register_customer("second-caller@example.in").await;
    let created = app
        .post("/api/v1/emergency/ambulance-requests", &call(2), Some(&customer))
        .await;
    let id = created.body["id"].as_i64().unwrap();

    assert_eq!(next_offer(&mut near.ws).await["unit"], near.unit);
    let declined = app
        .post(
            &format!("/api/v1/emergency/ambulance-requests/{id}/decline"),
            &json!({"reason": "low on fuel"}),
            Some(&near.token),
        )
        .await;
    assert_eq!(declined.status, StatusCode::NO_CONTENT, "{}", declined.body);
    assert_eq!(next_offer(&mut middle.ws).await["unit"], middle.unit);

    // The middle crew's offer lapses in the database before they answer.
    {
        use schema::dispatch_offers as o;
        let past = onemedi::db::now() - chrono::TimeDelta::seconds(1);
        let mut conn = app.app.db.write().await.unwrap();
        on_conn!(&mut conn, c => diesel::update(o::table.filter(o::unit_id.eq(middle.unit)))
            .set(o::expires_at.eq(past))
            .execute(c)
            .await)
        .unwrap();
    }
    let late = app
        .post(
            &format!("/api/v1/emergency/ambulance-requests/{id}/accept"),
            &json!({}),
            Some(&middle.token),
        )
        .await;
    assert_eq!(late.status, StatusCode::CONFLICT, "{}", late.body);
    assert_eq!(late.code(), "offer_expired");
    assert_eq!(unit_status(&app, middle.unit).await, "available");
    let unchanged = app
        .get(
            &format!("/api/v1/emergency/ambulance-requests/{id}"),
            Some(&customer),
        )
        .await;
    assert_eq!(unchanged.body["status"], "offered");

    // A dispatcher gives the call to the spare unit by hand; the other answers now find it taken.
    let assigned = app
        .post(
            &format!("/api/v1/emergency/ambulance-requests/{id}/assign"),
            &json!({"unit_id": spare.unit}),
            Some(&dispatcher),
        )
        .await;
    assert_eq!(assigned.status, StatusCode::OK, "{}", assigned.body);
    assert_eq!(assigned.body["status"], "assigned");
    assert_eq!(assigned.body["unit"]["id"], spare.unit);
    for crew in [&near, &middle] {
        let answer = app
            .post(
                &format!("/api/v1/emergency/ambulance-requests/{id}/accept"),
                &json!({}),
                Some(&crew.token),
            )
            .await;
        assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.body);
        assert_eq!(answer.code(), "offer_taken");
        assert_eq!(unit_status(&app, crew.unit).await, "available");
    }
    let busy = app
        .post(
            &format!("/api/v1/emergency/ambulance-requests/{id}/assign"),
            &json!({"unit_id": 999_999}),
            Some(&dispatcher),
        )
        .await;
    assert_eq!(busy.status, StatusCode::NOT_FOUND);

    let cancelled = app
        .post(
            &format!("/api/v1/emergency/ambulance-requests/{id}/cancel"),
            &json!({"reason": "patient recovered"}),
            Some(&customer),
        )
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert_eq!(cancelled.body["status"], "cancelled");
    assert_eq!(cancelled.body["cancel_reason"], "patient recovered");
    assert_eq!(unit_status(&app, spare.unit).await, "available");
}

#[actix_web::test]
async fn strangers_cannot_read_cancel_or_follow_a_request_and_bad_calls_change_nothing() {
    let app = spawn_app().await;
    let (owner, _) = app.register_customer("owner@example.in").await;
    let (stranger, _) = app.register_customer("stranger@example.in").await;
    let created = app
        .post("/api/v1/emergency/ambulance-requests", &call(3), Some(&owner))
        .await;
    let id = created.body["id"].as_i64().unwrap();
    let path = format!("/api/v1/emergency/ambulance-requests/{id}");
    assert_eq!(app.get(&path, Some(&stranger)).await.code(), "not_found");
    let cancel = app
        .post(&format!("{path}/cancel"), &json!({}), Some(&stranger))
        .await;
    assert_eq!(cancel.status, StatusCode::NOT_FOUND);
    let mut ws = Client::open(&app, &stranger).await;
    let refused = ws.subscribe(&format!("ambulance_request:{id}")).await;
    assert_eq!(refused["code"], "forbidden");
    let listed = app
        .get("/api/v1/emergency/ambulance-requests", Some(&stranger))
        .await;
    assert_eq!(listed.body["total"], 0);
    assert_eq!(
        app.get("/api/v1/emergency/board", Some(&stranger)).await.code(),
        "forbidden"
    );
    let unit = app
        .post(
            "/api/v1/emergency/units",
            &json!({"call_sign": "X-1", "kind": "als", "home": {"lat": 12.9, "lng": 77.6}}),
            Some(&stranger),
        )
        .await;
    assert_eq!(unit.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.get("/api/v1/emergency/my-unit", Some(&stranger)).await.code(),
        "not_found"
    );

    let bad = app
        .post(
            "/api/v1/emergency/ambulance-requests",
            &json!({"pickup": {"lat": 200.0, "lng": 77.6}, "category": 7}),
            Some(&owner),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.code(), "validation_failed");
    assert!(
        bad.body["error"]["details"]["pickup"].is_string()
            && bad.body["error"]["details"]["category"].is_string(),
        "{}",
        bad.body
    );
    let listed = app
        .get("/api/v1/emergency/ambulance-requests", Some(&owner))
        .await;
    assert_eq!(listed.body["total"], 1, "the bad call wrote nothing");
}

#[actix_web::test]
async fn a_call_nobody_can_reach_is_marked_no_unit_available_and_its_breach_announced_once() {
    let app = spawn_app().await;
    let (dispatcher, _) = app.user_with_role(Role::Dispatcher).await;
    let mut console = Client::open(&app, &dispatcher).await;
    assert_eq!(console.subscribe("dispatch").await["type"], "ack");
    let created = app
        .post(
            "/api/v1/emergency/ambulance-requests",
            &call(1),
            Some(&dispatcher),
        )
        .await;
    let id = created.body["id"].as_i64().unwrap();
    event_for(&mut console, "no_unit_available", id).await;
    let breach = loop {
        let frame = console.next().await;
        if frame["event"]["type"] == "breach_predicted" && frame["event"]["request_id"] == id {
            break frame["event"].clone();
        }
    };
    assert_eq!(breach["target_s"], 900);
    let seen = app
        .get(
            &format!("/api/v1/emergency/ambulance-requests/{id}"),
            Some(&dispatcher),
        )
        .await;
    assert_eq!(seen.body["status"], "no_unit_available");
    assert_eq!(seen.body["clock"]["breach_predicted"], true);
    tokio::time::sleep(onemedi::dispatch::breach::BREACH_SWEEP_INTERVAL + Duration::from_secs(1)).await;
    let warnings = app
        .get(
            &format!("/api/v1/emergency/ambulance-requests/{id}"),
            Some(&dispatcher),
        )
        .await
        .body["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["event"] == "breach_predicted")
        .count();
    assert_eq!(warnings, 1);
    let board = app.get("/api/v1/emergency/board", Some(&dispatcher)).await;
    assert_eq!(board.body["requests"][0]["id"], id);
}

/// Fifty calls race for ten ambulances; with Redis configured, half the calls and half the crews are on
/// a second node sharing the database and the bus.
#[actix_web::test]
async fn fifty_concurrent_calls_across_two_nodes_never_give_one_unit_two_requests() {
    const UNITS: usize = 10;
    const CALLS: usize = 50;
    let first = spawn_app().await;
    let second = match redis_url() {
        Some(_) => Some(spawn_second_node(&first).await),
        None => None,
    };
    let nodes: Vec<&TestApp> = std::iter::once(&first).chain(second.as_ref()).collect();
    let (dispatcher, _) = first.user_with_role(Role::Dispatcher).await;

    // Every node's console records what it is told.
    let seen: Vec<Arc<Mutex<Vec<Value>>>> = nodes.iter().map(|_| Arc::default()).collect();
    let mut watchers = Vec::new();
    for (node, log) in nodes.iter().zip(&seen) {
        let mut console = Client::open(node, &dispatcher).await;
        assert_eq!(console.subscribe("dispatch").await["type"], "ack");
        let log = log.clone();
        watchers.push(actix_web::rt::spawn(async move {
            loop {
                let frame = console.next().await;
                log.lock().unwrap().push(frame["event"].clone());
            }
        }));
    }

    // Crews on alternating nodes accept every offer they get, at once.
    let mut units = Vec::new();
    let mut crews = Vec::new();
    for i in 0..UNITS {
        let node = nodes[i % nodes.len()];
        let at = (PICKUP.0 + 0.002 * i as f64, PICKUP.1);
        let crew = ambulance(node, &dispatcher, &format!("ALS-{i}"), "als", at).await;
        units.push(crew.unit);
        let mut ws = crew.ws;
        crews.push(actix_web::rt::spawn(async move {
            loop {
                let frame = ws.next().await;
                if frame["type"] == "offer" {
                    let accept = json!({"type": "accept", "request_id": frame["event"]["request"]["id"]});
                    ws.socket.send(Message::text(accept.to_string())).await.unwrap();
                }
            }
        }));
    }
    for node in &nodes {
        for unit in &units {
            indexed(node, *unit).await;
        }
    }

    let calls = (0..CALLS).map(|i| {
        let node = nodes[i % nodes.len()];
        let dispatcher = dispatcher.clone();
        async move {
            let reply = node
                .post(
                    "/api/v1/emergency/ambulance-requests",
                    &call(1 + (i % 2) as i32),
                    Some(&dispatcher),
                )
                .await;
            assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
            reply.body["id"].as_i64().unwrap()
        }
    });
    let ids: Vec<i64> = futures_util::future::join_all(calls).await;

    // Every call ends assigned, or queued for the next unit to free up (these crews never do).
    let finals = || async {
        use schema::ambulance_requests as ar;
        let mut conn = first.app.db.read().await.unwrap();
        on_conn!(&mut conn, c => ar::table
            .select((ar::id, ar::status, ar::assigned_unit_id))
            .load::<(i64, String, Option<i64>)>(c)
            .await)
        .unwrap()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let rows = loop {
        let rows = finals().await;
        if rows
            .iter()
            .all(|(_, status, _)| status == "assigned" || status == "queued")
        {
            break rows;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "calls still open: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(rows.len(), CALLS);
    let assigned: Vec<i64> = rows
        .iter()
        .filter(|(_, s, _)| s == "assigned")
        .map(|(_, _, u)| u.unwrap())
        .collect();
    let distinct: HashSet<i64> = assigned.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        assigned.len(),
        "a unit was given two requests: {assigned:?}"
    );
    assert_eq!(assigned.len(), UNITS, "every ambulance went to exactly one call");
    {
        use schema::units as u;
        let mut conn = first.app.db.read().await.unwrap();
        let claims: Vec<(i64, Option<i64>)> = on_conn!(&mut conn, c => u::table
            .select((u::id, u::request_id))
            .load(c)
            .await)
        .unwrap();
        let by_request: HashMap<i64, i64> = rows
            .iter()
            .filter(|(_, s, _)| s == "assigned")
            .map(|(id, _, u)| (u.unwrap(), *id))
            .collect();
        for (unit, request) in claims {
            assert_eq!(
                request,
                by_request.get(&unit).copied(),
                "unit {unit}'s claim disagrees"
            );
        }
    }

    // Every console, on both nodes, saw where each call is: assigned, or waiting in the queue.
    for log in &seen {
        let log = log.clone();
        let ids = ids.clone();
        eventually(async || {
            let events = log.lock().unwrap();
            ids.iter().all(|id| {
                events.iter().any(|e| {
                    (e["request"]["id"] == *id && e["type"] == "unit_assigned")
                        || (e["entity"]["id"] == *id && e["type"] == "state_changed" && e["to"] == "queued")
                })
            })
        })
        .await;
    }
    for task in watchers.into_iter().chain(crews) {
        task.abort();
    }
}

/// A request left searching by a node that died (stored, no cascade anywhere) is adopted by exactly one
/// node — with Redis, two nodes sweep at once — and offered again.
#[actix_web::test]
async fn a_request_orphaned_by_a_crashed_node_is_adopted_once_and_offered_again() {
    let first = spawn_app().await;
    let second = match redis_url() {
        Some(_) => Some(spawn_second_node(&first).await),
        None => None,
    };
    let (dispatcher, dispatcher_id) = first.user_with_role(Role::Dispatcher).await;
    let mut crew = ambulance(&first, &dispatcher, "ALS-20", "als", (12.9800, 77.6050)).await;
    for node in std::iter::once(&first).chain(second.as_ref()) {
        indexed(node, crew.unit).await;
    }
    let id = {
        use schema::ambulance_requests as ar;
        let stale = onemedi::db::now() - chrono::TimeDelta::minutes(5);
        let mut conn = first.app.db.write().await.unwrap();
        on_conn!(&mut conn, c => diesel::insert_into(ar::table)
            .values((
                ar::requester_user_id.eq(dispatcher_id),
                ar::pickup_lat.eq(PICKUP.0),
                ar::pickup_lng.eq(PICKUP.1),
                ar::category.eq(1),
                ar::status.eq("offered"),
                ar::assigned_unit_id.eq(crew.unit),
                ar::call_received_at.eq(stale),
                ar::created_at.eq(stale),
                ar::updated_at.eq(stale),
            ))
            .returning(ar::id)
            .get_result::<i64>(c)
            .await)
        .unwrap()
    };
    {
        // The dead node's offer and its timeline rows, long lapsed.
        use schema::{dispatch_offers as o, entity_transitions as t};
        let stale = onemedi::db::now() - chrono::TimeDelta::minutes(5);
        let mut conn = first.app.db.write().await.unwrap();
        on_conn!(&mut conn, c => diesel::insert_into(o::table)
            .values((
                o::request_kind.eq("ambulance_request"),
                o::request_id.eq(id),
                o::unit_id.eq(crew.unit),
                o::offered_at.eq(stale),
                o::expires_at.eq(stale + chrono::TimeDelta::seconds(15)),
            ))
            .execute(c)
            .await)
        .unwrap();
        on_conn!(&mut conn, c => diesel::insert_into(t::table)
            .values((
                t::entity_type.eq("ambulance_request"),
                t::entity_id.eq(id),
                t::event.eq("offer"),
                t::from_status.eq("requested"),
                t::to_status.eq("offered"),
                t::command_id.eq(format!("dispatch:ambulance_request:{id}:offer:1")),
                t::at.eq(stale),
            ))
            .execute(c)
            .await)
        .unwrap();
    }
    match &second {
        Some(second) => {
            futures_util::join!(
                onemedi::dispatch::lease::tick(&first.app),
                onemedi::dispatch::lease::tick(&second.app)
            );
        }
        None => onemedi::dispatch::lease::tick(&first.app).await,
    }
    let offer = next_offer(&mut crew.ws).await;
    assert_eq!(offer["request"]["id"], id);
    // A second sweep finds the request moving and leaves it alone.
    onemedi::dispatch::lease::tick(&first.app).await;
    let offers: i64 = {
        use schema::dispatch_offers as o;
        let mut conn = first.app.db.read().await.unwrap();
        on_conn!(&mut conn, c => o::table.filter(o::request_id.eq(id)).count().get_result(c).await).unwrap()
    };
    assert_eq!(offers, 1, "the lapsed offer row was renewed, not duplicated");
    let renewed = {
        use schema::entity_transitions as t;
        let mut conn = first.app.db.read().await.unwrap();
        on_conn!(&mut conn, c => t::table
            .filter(t::entity_id.eq(id).and(t::event.eq("offer")))
            .count()
            .get_result::<i64>(c)
            .await)
        .unwrap()
    };
    assert_eq!(
        renewed, 2,
        "exactly one node restarted the cascade and recorded its own offer"
    );
    let accepted = crew
        .ws
        .command(json!({"type": "accept", "request_id": id}), "a")
        .await;
    assert_eq!(accepted["type"], "ack", "{accepted}");
}

/// Seconds between two RFC 3339 instants.
fn seconds_between(a: &Value, b: &Value) -> f64 {
    let parse = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    ((parse(a) - parse(b)).num_milliseconds() as f64 / 1000.0).abs()
}

#[actix_web::test]
async fn after_a_reload_an_ambulance_crew_reads_its_open_offer_and_then_its_current_job() {
    let app = spawn_app().await;
    let (dispatcher, _) = app.user_with_role(Role::Dispatcher).await;
    let mut near = ambulance(&app, &dispatcher, "ALS-FLD-1", "als", PICKUP).await;
    let far = ambulance(&app, &dispatcher, "ALS-FLD-2", "als", (13.0300, 77.6050)).await;
    indexed(&app, near.unit).await;
    indexed(&app, far.unit).await;
    let idle = app.get("/api/v1/emergency/my-unit", Some(&near.token)).await;
    assert_eq!(idle.status, StatusCode::OK, "{}", idle.body);
    assert!(idle.body["open_offer"].is_null(), "{}", idle.body);
    assert!(idle.body["current_job"].is_null(), "{}", idle.body);
    assert!(idle.body["collector_id"].is_null(), "{}", idle.body);

    let created = app
        .post(
            "/api/v1/emergency/ambulance-requests",
            &call(2),
            Some(&dispatcher),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_i64().unwrap();
    let offer = next_offer(&mut near.ws).await;
    assert_eq!(offer["request"], json!({"kind": "ambulance_request", "id": id}));

    // The page reloads: the offer is read back with what is left of its countdown.
    let mine = app.get("/api/v1/emergency/my-unit", Some(&near.token)).await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
    assert_eq!(mine.body["id"], near.unit);
    let open = &mine.body["open_offer"];
    assert_eq!(
        open["request"],
        json!({"kind": "ambulance_request", "id": id}),
        "{open}"
    );
    assert!(
        seconds_between(&open["expires_at"], &offer["expires_at"]) < 1.0,
        "{open} {offer}"
    );
    let left = open["expires_in_s"].as_f64().unwrap();
    assert!(left > 0.0 && left <= 60.0, "{open}");
    assert!(open["distance_m"].as_f64().unwrap() < 50.0, "{open}");
    assert!(open["order_number"].is_null());
    assert!(mine.body["current_job"].is_null());
    // The other crew was offered nothing.
    let other = app.get("/api/v1/emergency/my-unit", Some(&far.token)).await;
    assert!(other.body["open_offer"].is_null(), "{}", other.body);

    let accepted = near
        .ws
        .command(json!({"type": "accept", "request_id": id}), "a")
        .await;
    assert_eq!(accepted["type"], "ack", "{accepted}");
    let mine = app.get("/api/v1/emergency/my-unit", Some(&near.token)).await;
    assert!(mine.body["open_offer"].is_null(), "{}", mine.body);
    assert_eq!(
        mine.body["current_job"],
        json!({"kind": "ambulance_request", "id": id, "status": "assigned"})
    );
    let moved = app
        .put(
            &format!("/api/v1/emergency/units/{}/status", near.unit),
            &json!({"status": "en_route"}),
            Some(&near.token),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    let mine = app.get("/api/v1/emergency/my-unit", Some(&near.token)).await;
    assert_eq!(mine.body["current_job"]["status"], "en_route", "{}", mine.body);
}

#[actix_web::test]
async fn a_position_flush_writes_each_units_latest_ping_and_only_that_units_row() {
    let app = spawn_app_with(|s| s.realtime.position_flush_ms = 3_600_000).await;
    let (dispatcher, _) = app.user_with_role(Role::Dispatcher).await;
    let mut first = ambulance(&app, &dispatcher, "FLUSH-1", "als", PICKUP).await;
    let second = ambulance(&app, &dispatcher, "FLUSH-2", "bls", (12.9800, 77.6100)).await;
    let idle = ambulance(&app, &dispatcher, "FLUSH-3", "bls", (12.9900, 77.6200)).await;
    app.app.positions.flush(&app.app.db).await.unwrap();
    let stored = |unit: i64| {
        let app = &app;
        async move {
            use schema::units::dsl as u;
            let mut conn = app.app.db.read().await.unwrap();
            on_conn!(&mut conn, c => u::units
                .find(unit)
                .select((u::last_lat, u::last_lng, u::last_heading, u::last_speed_mps, u::last_h3_cell, u::last_seen_at))
                .first::<(Option<f64>, Option<f64>, Option<f64>, Option<f64>, Option<i64>, Option<chrono::NaiveDateTime>)>(c)
                .await)
            .unwrap()
        }
    };
    let idle_before = stored(idle.unit).await;
    assert_eq!(idle_before.0, Some(12.9900));

    // Two pings from the first unit, one from the second, between flushes: only the latest of each
    // is written, with its heading, speed and H3 cell.
    for (lat, heading) in [(12.9760, 90.0), (12.9770, 180.0)] {
        let ping = json!({"type": "location", "lat": lat, "lng": 77.6060, "heading": heading, "speed": 7.5});
        assert_eq!(first.ws.command(ping, "p").await["type"], "ack");
    }
    let mut second_ws = second.ws;
    let ping = json!({"type": "location", "lat": 12.9810, "lng": 77.6110, "heading": 45, "speed": 3});
    assert_eq!(second_ws.command(ping, "p").await["type"], "ack");
    assert_eq!(app.app.positions.flush(&app.app.db).await.unwrap(), 2);

    let (lat, lng, heading, speed, cell, seen) = stored(first.unit).await;
    assert_eq!(
        (lat, lng, heading, speed),
        (Some(12.9770), Some(77.6060), Some(180.0), Some(7.5))
    );
    let expected_cell = h3o::LatLng::new(12.9770, 77.6060)
        .unwrap()
        .to_cell(onemedi_actors::fleet::DEFAULT_RESOLUTION);
    assert_eq!(cell, Some(u64::from(expected_cell) as i64));
    assert!(seen.unwrap() >= idle_before.5.unwrap());
    let second_row = stored(second.unit).await;
    assert_eq!((second_row.0, second_row.2), (Some(12.9810), Some(45.0)));
    assert_eq!(
        stored(idle.unit).await,
        idle_before,
        "a unit that did not ping is not rewritten"
    );
    assert_eq!(app.app.positions.flush(&app.app.db).await.unwrap(), 0);
}

/// What a dispatcher's console heard of one unit: the statuses announced to it, in order.
struct Heard {
    unit: i64,
    statuses: Vec<String>,
}

impl Heard {
    fn of(unit: i64) -> Self {
        Self {
            unit,
            statuses: Vec::new(),
        }
    }

    /// Reads the console until an event of `kind` about the unit arrives. On the way every ping must
    /// repeat the last status announced before it: a ping that carried an older one would put a unit
    /// back a step on every console that believed it.
    async fn until(&mut self, console: &mut Client, kind: &str) -> Value {
        loop {
            let frame = console.next().await;
            let event = &frame["event"];
            if event["unit_id"] != self.unit {
                continue;
            }
            match event["type"].as_str() {
                Some("unit_status") => self.statuses.push(event["status"].as_str().unwrap().to_owned()),
                Some("unit_location") => {
                    if let Some(last) = self.statuses.last() {
                        assert_eq!(
                            event["status"], *last,
                            "a ping after {:?} carried another status",
                            self.statuses
                        );
                    }
                }
                _ => {}
            }
            if event["type"] == kind {
                return event.clone();
            }
        }
    }
}

/// A crew's ping from near `PICKUP`; answered with an ack.
async fn ping(ws: &mut Client, n: usize) {
    let at = json!({"type": "location", "lat": PICKUP.0 + 0.0005 * n as f64, "lng": PICKUP.1, "speed": 9.0});
    assert_eq!(ws.command(at, &format!("p{n}")).await["type"], "ack");
}

/// The steps of a job its crew works over REST, each with the unit's stored status after it.
const JOB_STEPS: [(&str, &str); 6] = [
    ("en_route", "en_route"),
    ("on_scene", "on_scene"),
    ("transporting", "transporting"),
    ("at_destination", "at_destination"),
    ("handed_over", "at_destination"),
    ("back_in_service", "available"),
];

async fn take_step(app: &TestApp, crew: &Crew, step: &str, hospital: i64) -> String {
    let mut body = json!({"status": step});
    if step == "transporting" {
        body["hospital_id"] = json!(hospital);
    }
    let reply = app
        .put(
            &format!("/api/v1/emergency/units/{}/status", crew.unit),
            &body,
            Some(&crew.token),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{step}: {}", reply.body);
    reply.body["status"].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn a_dispatcher_hears_each_step_of_a_job_worked_over_rest_and_no_later_ping_repeats_an_older_status() {
    let app = spawn_app().await;
    let (dispatcher, _) = app.user_with_role(Role::Dispatcher).await;
    let mut console = Client::open(&app, &dispatcher).await;
    assert_eq!(console.subscribe("dispatch").await["type"], "ack");
    let mut crew = ambulance(&app, &dispatcher, "ALS-STEPS", "als", (12.9800, 77.6050)).await;
    let mut heard = Heard::of(crew.unit);
    let first = heard.until(&mut console, "unit_location").await;
    assert_eq!(first["status"], "available");
    indexed(&app, crew.unit).await;

    let (customer, _) = app.register_customer("steps@example.in").await;
    let created = app
        .post("/api/v1/emergency/ambulance-requests", &call(2), Some(&customer))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_i64().unwrap();
    assert_eq!(next_offer(&mut crew.ws).await["request"]["id"], id);
    let accepted = crew
        .ws
        .command(json!({"type": "accept", "request_id": id}), "a")
        .await;
    assert_eq!(accepted["type"], "ack", "{accepted}");
    assert_eq!(
        heard.until(&mut console, "unit_status").await["status"],
        "assigned"
    );
    ping(&mut crew.ws, 0).await;
    assert_eq!(
        heard.until(&mut console, "unit_location").await["status"],
        "assigned"
    );

    let hospital = insert_hospital(&app, 3).await;
    for (n, (step, stored)) in JOB_STEPS.into_iter().enumerate() {
        assert_eq!(take_step(&app, &crew, step, hospital).await, stored);
        let announced = heard.until(&mut console, "unit_status").await;
        assert_eq!(announced["status"], stored, "after {step}");
        ping(&mut crew.ws, n + 1).await;
        let pinged = heard.until(&mut console, "unit_location").await;
        assert_eq!(pinged["status"], stored, "the first ping after {step}");
    }
    assert_eq!(
        heard.statuses,
        [
            "available",
            "assigned",
            "en_route",
            "on_scene",
            "transporting",
            "at_destination",
            "at_destination",
            "available"
        ]
    );
    let unit = app
        .get(
            &format!("/api/v1/emergency/units/{}", crew.unit),
            Some(&dispatcher),
        )
        .await;
    assert_eq!(unit.body["status"], "available");
}

#[actix_web::test]
async fn pings_sent_to_one_node_never_trail_the_steps_a_crew_takes_over_rest_on_another() {
    if redis_url().is_none() {
        eprintln!("skipped: status changes cross nodes only through Redis (set TEST_REDIS_URL)");
        return;
    }
    let node_a = spawn_app().await;
    let node_b = spawn_second_node(&node_a).await;
    let (dispatcher, _) = node_a.user_with_role(Role::Dispatcher).await;
    let mut console = Client::open(&node_a, &dispatcher).await;
    assert_eq!(console.subscribe("dispatch").await["type"], "ack");
    let mut crew = ambulance(&node_a, &dispatcher, "ALS-NODES", "als", (12.9800, 77.6050)).await;
    let mut heard = Heard::of(crew.unit);
    heard.until(&mut console, "unit_location").await;
    indexed(&node_a, crew.unit).await;

    let (customer, _) = node_a.register_customer("nodes@example.in").await;
    let created = node_a
        .post("/api/v1/emergency/ambulance-requests", &call(2), Some(&customer))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_i64().unwrap();
    assert_eq!(next_offer(&mut crew.ws).await["request"]["id"], id);
    let accepted = crew
        .ws
        .command(json!({"type": "accept", "request_id": id}), "a")
        .await;
    assert_eq!(accepted["type"], "ack", "{accepted}");
    assert_eq!(
        heard.until(&mut console, "unit_status").await["status"],
        "assigned"
    );

    let hospital = insert_hospital(&node_a, 3).await;
    for (n, (step, stored)) in JOB_STEPS.into_iter().enumerate() {
        assert_eq!(take_step(&node_b, &crew, step, hospital).await, stored);
        // Node A may hear of the step after this ping: it then goes out before the step's event.
        ping(&mut crew.ws, 2 * n).await;
        let announced = heard.until(&mut console, "unit_status").await;
        assert_eq!(announced["status"], stored, "after {step}");
        ping(&mut crew.ws, 2 * n + 1).await;
        let pinged = heard.until(&mut console, "unit_location").await;
        assert_eq!(pinged["status"], stored, "a ping after {step} was announced");
    }
    assert_eq!(heard.statuses.last().map(String::as_str), Some("available"));
}

#[actix_web::test]
async fn a_refused_reassignment_announces_nothing_about_the_unit_that_keeps_the_job() {
    let app = spawn_app().await;
    let (dispatcher, _) = app.user_with_role(Role::Dispatcher).await;
    let mut console = Client::open(&app, &dispatcher).await;
    assert_eq!(console.subscribe("dispatch").await["type"], "ack");
    let mut kept = ambulance(&app, &dispatcher, "ALS-KEPT", "als", (12.9800, 77.6050)).await;
    let mut resting = ambulance(&app, &dispatcher, "ALS-REST", "als", (12.9900, 77.6050)).await;
    let off = resting
        .ws
        .command(json!({"type": "status", "status": "off_duty"}), "off")
        .await;
    assert_eq!(off["type"], "ack", "{off}");
    let mut heard = Heard::of(kept.unit);
    heard.until(&mut console, "unit_location").await;

    let created = app
        .post(
            "/api/v1/emergency/ambulance-requests",
            &call(3),
            Some(&dispatcher),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_i64().unwrap();
    // Once the cascade has offered it, the request stays put until the dispatcher steps in.
    assert_eq!(next_offer(&mut kept.ws).await["request"]["id"], id);
    let path = format!("/api/v1/emergency/ambulance-requests/{id}/assign");
    let assigned = app
        .post(&path, &json!({"unit_id": kept.unit}), Some(&dispatcher))
        .await;
    assert_eq!(assigned.status, StatusCode::OK, "{}", assigned.body);
    assert_eq!(
        heard.until(&mut console, "unit_status").await["status"],
        "assigned"
    );

    let refused = app
        .post(&path, &json!({"unit_id": resting.unit}), Some(&dispatcher))
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert_eq!(refused.code(), "unit_unavailable");
    ping(&mut kept.ws, 0).await;
    assert_eq!(
        heard.until(&mut console, "unit_location").await["status"],
        "assigned"
    );
    assert_eq!(heard.statuses.last().map(String::as_str), Some("assigned"));
    let unit = app
        .get(
            &format!("/api/v1/emergency/units/{}", kept.unit),
            Some(&dispatcher),
        )
        .await;
    assert_eq!(unit.body["status"], "assigned");
}
