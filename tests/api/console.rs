//! The dispatcher console's own tools, on both backends: notes on a call's timeline, a unit's
//! availability set by hand with an audited reason, the five units to send to a call from the live
//! fleet index, a crew reading the call it is offered (and only while it is), and the map's settings
//! and the pages' policy with and without a tile server.

use onemedi::domain::Role;
use reqwest::{StatusCode, header};
use serde_json::{Value, json};

use crate::{
    emergency::{Crew, ambulance, call, indexed, next_offer},
    helpers::{TestApp, spawn_app, spawn_app_with},
    ws_client::{Client, eventually},
};

/// Cubbon Park, Bengaluru.
const CENTRE: (f64, f64) = (12.9763, 77.5929);

/// A point `north_m` metres north of [`CENTRE`].
fn north(north_m: f64) -> (f64, f64) {
    (CENTRE.0 + north_m / 111_195.0, CENTRE.1)
}

async fn post_call(app: &TestApp, token: &str, body: &Value) -> i64 {
    let reply = app
        .post("/api/v1/emergency/ambulance-requests", body, Some(token))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body["id"].as_i64().unwrap()
}

/// Reads frames until an event of `kind` whose `field` is `id` arrives.
async fn event_with(ws: &mut Client, kind: &str, field: &str, id: i64) -> Value {
    loop {
        let frame = ws.next().await;
        let event = &frame["event"];
        if event["type"] == kind && event[field].as_i64() == Some(id) {
            return event.clone();
        }
    }
}

#[actix_web::test]
async fn a_dispatchers_note_joins_the_calls_timeline_and_only_a_dispatcher_may_add_one() {
    let app = spawn_app().await;
    let (dispatcher, dispatcher_id) = app.user_with_role(Role::Dispatcher).await;
    let (customer, _) = app.register_customer("caller@example.in").await;
    let (paramedic, _) = app.user_with_role(Role::Paramedic).await;
    let id = post_call(&app, &customer, &call(2)).await;
    let mut desk = Client::open(&app, &dispatcher).await;
    assert_eq!(desk.subscribe("dispatch").await["type"], "ack");

    let path = format!("/api/v1/emergency/ambulance-requests/{id}/notes");
    let text = "Caller rang back: the gate code is 4821";
    let added = app
        .post(&path, &json!({"text": format!("  {text} ")}), Some(&dispatcher))
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    assert_eq!(added.body["event"], "note");
    assert_eq!(added.body["reason"], text, "stored trimmed");
    assert_eq!(added.body["actor_user_id"], dispatcher_id);
    assert_eq!(
        added.body["from_status"], added.body["to_status"],
        "a note changes no status"
    );
    let announced = event_with(&mut desk, "request_note", "request_id", id).await;
    assert_eq!(announced["by_user_id"], dispatcher_id);

    let view = app
        .get(
            &format!("/api/v1/emergency/ambulance-requests/{id}"),
            Some(&dispatcher),
        )
        .await;
    let timeline = view.body["timeline"].as_array().unwrap();
    assert_eq!(timeline[0]["event"], "call_received");
    let notes: Vec<&Value> = timeline.iter().filter(|t| t["event"] == "note").collect();
    assert_eq!(notes.len(), 1, "{timeline:?}");
    assert_eq!(notes[0]["reason"], text);
    assert_eq!(notes[0]["to_status"], view.body["status"]);

    // Only dispatchers write notes: the caller and a crew member are refused, and nothing is added.
    for token in [&customer, &paramedic] {
        let refused = app.post(&path, &json!({"text": "hello"}), Some(token)).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert_eq!(refused.code(), "forbidden");
    }
    // Bounded, non-empty text; an unknown call is 404.
    let empty = app.post(&path, &json!({"text": "   "}), Some(&dispatcher)).await;
    assert_eq!(
        (empty.status, empty.code()),
        (StatusCode::BAD_REQUEST, "validation_failed")
    );
    assert!(
        empty.body["error"]["details"]["text"].is_string(),
        "{}",
        empty.body
    );
    let long = app
        .post(&path, &json!({"text": "x".repeat(501)}), Some(&dispatcher))
        .await;
    assert_eq!(long.code(), "validation_failed");
    let control = app
        .post(&path, &json!({"text": "a\u{7}b"}), Some(&dispatcher))
        .await;
    assert_eq!(control.code(), "validation_failed");
    let unknown = app
        .post(
            "/api/v1/emergency/ambulance-requests/999999/notes",
            &json!({"text": "hello"}),
            Some(&dispatcher),
        )
        .await;
    assert_eq!(
        (unknown.status, unknown.code()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let again = app
        .get(
            &format!("/api/v1/emergency/ambulance-requests/{id}"),
            Some(&dispatcher),
        )
        .await;
    let count = again.body["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["event"] == "note")
        .count();
    assert_eq!(count, 1, "refused notes left no rows");
}

/// The audit log's `unit_status_override` entries for `unit`, newest first.
async fn overrides(app: &TestApp, admin: &str, unit: i64) -> Vec<Value> {
    let log = app
        .get(
            "/api/v1/admin/audit-log?subject_type=unit&per_page=100",
            Some(admin),
        )
        .await;
    assert_eq!(log.status, StatusCode::OK, "{}", log.body);
    log.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["action"] == "unit_status_override"
                && e["subject_id"].as_str() == Some(unit.to_string().as_str())
        })
        .cloned()
        .collect()
}

#[actix_web::test]
async fn a_dispatcher_sets_a_units_availability_with_a_reason_that_is_audited_but_never_for_a_unit_on_a_job()
{
    let app = spawn_app().await;
    let (dispatcher, dispatcher_id) = app.user_with_role(Role::Dispatcher).await;
    let (admin, _) = app.user_with_role(Role::Admin).await;
    let mut crew = ambulance(&app, &dispatcher, "OVR-1", "als", CENTRE).await;
    indexed(&app, crew.unit).await;
    let mut desk = Client::open(&app, &dispatcher).await;
    assert_eq!(desk.subscribe("dispatch").await["type"], "ack");
    let path = format!("/api/v1/emergency/units/{}/status-override", crew.unit);

    let set = app
        .post(
            &path,
            &json!({"status": "off_duty", "reason": "Radio: tyre puncture"}),
            Some(&dispatcher),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.body["status"], "off_duty");
    let announced = event_with(&mut desk, "unit_status", "unit_id", crew.unit).await;
    assert_eq!(announced["status"], "off_duty");
    let unit = app
        .get(
            &format!("/api/v1/emergency/units/{}", crew.unit),
            Some(&dispatcher),
        )
        .await;
    assert_eq!(unit.body["status"], "off_duty");
    let audited = overrides(&app, &admin, crew.unit).await;
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert_eq!(audited[0]["actor_user_id"], dispatcher_id);
    let details: Value = serde_json::from_str(audited[0]["details"].as_str().unwrap()).unwrap();
    assert_eq!(
        details,
        json!({"from": "available", "to": "off_duty", "reason": "Radio: tyre puncture"})
    );

    // Refused without a change or an audit row: a crew member, no reason, a job step, an unknown unit.
    let by_crew = app
        .post(
            &path,
            &json!({"status": "available", "reason": "fixed"}),
            Some(&crew.token),
        )
        .await;
    assert_eq!(
        (by_crew.status, by_crew.code()),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    let no_reason = app
        .post(
            &path,
            &json!({"status": "available", "reason": " "}),
            Some(&dispatcher),
        )
        .await;
    assert_eq!(no_reason.code(), "validation_failed");
    assert!(no_reason.body["error"]["details"]["reason"].is_string());
    let step = app
        .post(
            &path,
            &json!({"status": "en_route", "reason": "x"}),
            Some(&dispatcher),
        )
        .await;
    assert_eq!(step.code(), "validation_failed");
    assert!(step.body["error"]["details"]["status"].is_string());
    let long = app
        .post(
            &path,
            &json!({"status": "busy", "reason": "y".repeat(501)}),
            Some(&dispatcher),
        )
        .await;
    assert_eq!(long.code(), "validation_failed");
    let unknown = app
        .post(
            "/api/v1/emergency/units/999999/status-override",
            &json!({"status": "busy", "reason": "x"}),
            Some(&dispatcher),
        )
        .await;
    assert_eq!(
        (unknown.status, unknown.code()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    assert_eq!(overrides(&app, &admin, crew.unit).await.len(), 1);

    // Back in service by hand, then on a job: the job decides its status, the override is refused.
    let back = app
        .post(
            &path,
            &json!({"status": "available", "reason": "Tyre changed"}),
            Some(&dispatcher),
        )
        .await;
    assert_eq!(back.body["status"], "available", "{}", back.body);
    indexed(&app, crew.unit).await;
    let id = post_call(
        &app,
        &dispatcher,
        &json!({"pickup": {"lat": CENTRE.0, "lng": CENTRE.1}, "category": 2}),
    )
    .await;
    let offer = next_offer(&mut crew.ws).await;
    assert_eq!(offer["request"]["id"], id);
    let accepted = crew
        .ws
        .command(json!({"type": "accept", "request_id": id}), "a")
        .await;
    assert_eq!(accepted["type"], "ack", "{accepted}");
    let busy = app
        .post(
            &path,
            &json!({"status": "off_duty", "reason": "end of shift"}),
            Some(&dispatcher),
        )
        .await;
    assert_eq!(
        (busy.status, busy.code()),
        (StatusCode::CONFLICT, "invalid_transition")
    );
    let unit = app
        .get(
            &format!("/api/v1/emergency/units/{}", crew.unit),
            Some(&dispatcher),
        )
        .await;
    assert_eq!(unit.body["status"], "assigned");
    let audited = overrides(&app, &admin, crew.unit).await;
    assert_eq!(audited.len(), 2, "the refused override is not audited");
}

#[actix_web::test]
async fn the_units_recommended_for_a_call_are_the_five_nearest_available_by_eta_from_the_live_fleet() {
    // Offers stay open long enough not to change who is available while the test reads.
    let app = spawn_app().await;
    let (dispatcher, _) = app.user_with_role(Role::Dispatcher).await;
    let (paramedic, _) = app.user_with_role(Role::Paramedic).await;
    // Six ambulances north of the call, 0.6 to 9 km away; the call itself is well away from all of them
    // for the engine (category 4 takes BLS first, then ALS: both kinds are recommended).
    let distances = [600.0, 1500.0, 2500.0, 4000.0, 6000.0, 9000.0];
    let mut crews: Vec<Crew> = Vec::new();
    for (i, d) in distances.iter().enumerate() {
        let kind = if i % 2 == 0 { "als" } else { "bls" };
        crews.push(ambulance(&app, &dispatcher, &format!("REC-{i}"), kind, north(*d)).await);
    }
    for crew in &crews {
        indexed(&app, crew.unit).await;
    }
    // The nearest goes off duty: it must not be recommended.
    let off = crews[0]
        .ws
        .command(json!({"type": "status", "status": "off_duty"}), "off")
        .await;
    assert_eq!(off["type"], "ack");
    eventually(async || {
        onemedi::bus::lock_fleet(&app.app.fleet)
            .get(onemedi_actors::ids::UnitId(crews[0].unit))
            .is_some_and(|u| u.status != onemedi_actors::fleet::UnitStatus::Available)
    })
    .await;
    let id = post_call(
        &app,
        &dispatcher,
        &json!({"pickup": {"lat": CENTRE.0, "lng": CENTRE.1}, "category": 4}),
    )
    .await;
    let path = format!("/api/v1/emergency/ambulance-requests/{id}/recommended-units");
    let got = app.get(&path, Some(&dispatcher)).await;
    assert_eq!(got.status, StatusCode::OK, "{}", got.body);
    assert_eq!(got.body["request_id"], id);
    let units = got.body["units"].as_array().unwrap();
    let ids: Vec<i64> = units.iter().map(|u| u["unit_id"].as_i64().unwrap()).collect();
    let expected: Vec<i64> = crews[1..].iter().map(|c| c.unit).collect();
    assert_eq!(ids, expected, "the five available, nearest first: {}", got.body);
    for (unit, d) in units.iter().zip(&distances[1..]) {
        let distance = unit["distance_m"].as_f64().unwrap();
        assert!((distance - d).abs() < 5.0, "{unit}");
        let eta = unit["eta_s"].as_f64().unwrap();
        let per_km = unit["eta_per_km_s"].as_f64().unwrap();
        assert!(
            (eta - distance / 1000.0 * per_km).abs() < 0.01,
            "the ETA follows the profile: {unit}"
        );
        assert!(unit["call_sign"].as_str().unwrap().starts_with("REC-"));
        assert!(unit["lat"].as_f64().unwrap() > CENTRE.0);
    }
    let etas: Vec<f64> = units.iter().map(|u| u["eta_s"].as_f64().unwrap()).collect();
    assert!(etas.windows(2).all(|w| w[0] <= w[1]), "{etas:?}");

    // Only dispatchers; an unknown call is 404.
    let refused = app.get(&path, Some(&paramedic)).await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    let unknown = app
        .get(
            "/api/v1/emergency/ambulance-requests/999999/recommended-units",
            Some(&dispatcher),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn a_crew_reads_the_call_it_is_offered_while_the_offer_is_open_and_not_after_it_declines() {
    let app = spawn_app().await;
    let (dispatcher, _) = app.user_with_role(Role::Dispatcher).await;
    let (stranger, _) = app.user_with_role(Role::Paramedic).await;
    let mut crew = ambulance(&app, &dispatcher, "OFR-1", "als", CENTRE).await;
    indexed(&app, crew.unit).await;
    let mut body = call(2);
    body["pickup"] = json!({"lat": CENTRE.0 + 0.004, "lng": CENTRE.1, "address": "Gate 3, Cubbon Park"});
    let id = post_call(&app, &dispatcher, &body).await;
    let offer = next_offer(&mut crew.ws).await;
    assert_eq!(offer["request"]["id"], id);
    assert!(offer["distance_m"].as_f64().unwrap() > 400.0, "{offer}");

    let path = format!("/api/v1/emergency/ambulance-requests/{id}");
    let read = app.get(&path, Some(&crew.token)).await;
    assert_eq!(
        read.status,
        StatusCode::OK,
        "the offered crew reads the call: {}",
        read.body
    );
    assert_eq!(read.body["category"], 2);
    assert_eq!(read.body["patient_condition"], "chest pain");
    assert_eq!(read.body["pickup_address"], "Gate 3, Cubbon Park");
    let other = app.get(&path, Some(&stranger)).await;
    assert_eq!((other.status, other.code()), (StatusCode::NOT_FOUND, "not_found"));

    let declined = crew
        .ws
        .command(
            json!({"type": "decline", "request_id": id, "reason": "blocked road"}),
            "d",
        )
        .await;
    assert_eq!(declined["type"], "ack", "{declined}");
    // The call goes back to the queue (no other unit): the crew that declined no longer sees it.
    eventually(async || app.get(&path, Some(&crew.token)).await.status == StatusCode::NOT_FOUND).await;
    let queued = app.get(&path, Some(&dispatcher)).await;
    assert_eq!(queued.body["status"], "queued", "{}", queued.body);
}

#[actix_web::test]
async fn the_map_names_its_tile_server_and_the_pages_admit_only_that_origin_for_images() {
    let offline = spawn_app().await;
    let config = offline.get("/api/v1/map/config", None).await;
    assert_eq!(config.status, StatusCode::OK);
    assert_eq!(config.body, json!({"tile_url": null, "tile_attribution": null}));
    let page = offline.client.get(offline.url("/console")).send().await.unwrap();
    let csp = page.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("img-src 'self' data:;"), "{csp}");
    // Leaflet is served by the binary, its images next to its style sheet.
    for (path, kind) in [
        (
            "/assets/vendor/leaflet/leaflet.js",
            "text/javascript; charset=utf-8",
        ),
        ("/assets/vendor/leaflet/leaflet.css", "text/css; charset=utf-8"),
        ("/assets/vendor/leaflet/images/layers.png", "image/png"),
        ("/assets/vendor/leaflet/LICENSE", "text/plain; charset=utf-8"),
        ("/assets/map.js", "text/javascript; charset=utf-8"),
    ] {
        let res = offline.client.get(offline.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert_eq!(res.headers()[header::CONTENT_TYPE], kind, "{path}");
    }
    let license = offline
        .client
        .get(offline.url("/assets/vendor/leaflet/LICENSE"))
        .send()
        .await
        .unwrap();
    assert!(license.text().await.unwrap().contains("BSD 2-Clause"));
    let unlisted = offline.get("/assets/vendor/leaflet/leaflet.js.map", None).await;
    assert_eq!(
        unlisted.status,
        StatusCode::NOT_FOUND,
        "only the listed files are served"
    );

    let tiled = spawn_app_with(|s| {
        s.maps.tile_url = "https://{s}.tiles.example.org/osm/{z}/{x}/{y}.png".to_owned();
        s.maps.tile_attribution = "© OpenStreetMap contributors".to_owned();
    })
    .await;
    let config = tiled.get("/api/v1/map/config", None).await;
    assert_eq!(
        config.body["tile_url"],
        "https://{s}.tiles.example.org/osm/{z}/{x}/{y}.png"
    );
    assert_eq!(config.body["tile_attribution"], "© OpenStreetMap contributors");
    for path in ["/console", "/track/ambulance/1", "/assets/map.js"] {
        let res = tiled.client.get(tiled.url(path)).send().await.unwrap();
        let csp = res.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(
            csp.contains("img-src 'self' data: https://*.tiles.example.org;"),
            "{path}: {csp}"
        );
        assert!(
            csp.contains("connect-src 'self';") && csp.contains("script-src 'self';"),
            "{csp}"
        );
    }
}
