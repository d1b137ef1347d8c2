//! The dispatch queue end to end, on both backends: a call nobody can take waits `queued` with its
//! place in the queue and is offered the moment a unit frees up; calls competing for units freed
//! together get the batch assignment; a candidate that fell silent after the search is never offered.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use onemedi::{db::schema, domain::Role, on_conn};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    emergency::{Crew, ambulance, call, indexed, insert_hospital, next_offer},
    helpers::{TestApp, spawn_app, spawn_app_with},
    ws_client::eventually,
};

/// Cubbon Park, Bengaluru: where the calls of the batch test are placed.
const CENTRE: (f64, f64) = (12.9763, 77.5929);

/// A point `north_m` metres north of [`CENTRE`].
fn north(north_m: f64) -> (f64, f64) {
    (CENTRE.0 + north_m / 111_195.0, CENTRE.1)
}

fn call_at(at: (f64, f64), category: i32) -> Value {
    json!({"pickup": {"lat": at.0, "lng": at.1}, "category": category})
}

async fn post_call(app: &TestApp, dispatcher: &str, body: &Value) -> i64 {
    let reply = app
        .post("/api/v1/emergency/ambulance-requests", body, Some(dispatcher))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body["id"].as_i64().unwrap()
}

async fn request(app: &TestApp, dispatcher: &str, id: i64) -> Value {
    let reply = app
        .get(
            &format!("/api/v1/emergency/ambulance-requests/{id}"),
            Some(dispatcher),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

/// Waits until the request's stored status is `status`.
async fn reaches(app: &TestApp, dispatcher: &str, id: i64, status: &str) {
    eventually(async || request(app, dispatcher, id).await["status"] == status).await;
}

/// The request's timeline as (to_status, reason) pairs, oldest first.
async fn timeline(app: &TestApp, id: i64) -> Vec<(String, Option<String>)> {
    use schema::entity_transitions as t;
    let mut conn = app.app.db.read().await.unwrap();
    on_conn!(&mut conn, c => t::table
        .filter(t::entity_type.eq("ambulance_request").and(t::entity_id.eq(id)))
        .order(t::id.asc())
        .select((t::to_status, t::reason))
        .load::<(String, Option<String>)>(c)
        .await)
    .unwrap()
}

async fn accept(crew: &mut Crew, request: i64) {
    let accepted = crew
        .ws
        .command(json!({"type": "accept", "request_id": request}), "accept")
        .await;
    assert_eq!(accepted["type"], "ack", "{accepted}");
}

async fn crew_status(crew: &mut Crew, status: &str) {
    let reply = crew
        .ws
        .command(json!({"type": "status", "status": status}), "status")
        .await;
    assert_eq!(reply["type"], "ack", "{reply}");
}

async fn step(app: &TestApp, crew: &Crew, body: Value) {
    let reply = app
        .put(
            &format!("/api/v1/emergency/units/{}/status", crew.unit),
            &body,
            Some(&crew.token),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{body}: {}", reply.body);
}

#[actix_web::test]
async fn a_call_nobody_can_take_waits_queued_in_order_and_is_offered_the_moment_the_unit_is_back_in_service()
{
    let app = spawn_app().await;
    let (dispatcher, _) = app.user_with_role(Role::Dispatcher).await;
    let hospital = insert_hospital(&app, 4).await;
    let mut crew = ambulance(&app, &dispatcher, "ALS-Q1", "als", (12.9760, 77.6040)).await;
    indexed(&app, crew.unit).await;

    let first = post_call(&app, &dispatcher, &call(2)).await;
    assert_eq!(next_offer(&mut crew.ws).await["request"]["id"], first);
    accept(&mut crew, first).await;

    // The only unit is busy: both later calls wait, the category 1 ahead of the older category 3.
    let third = post_call(&app, &dispatcher, &call(3)).await;
    let urgent = post_call(&app, &dispatcher, &call(1)).await;
    reaches(&app, &dispatcher, third, "queued").await;
    reaches(&app, &dispatcher, urgent, "queued").await;
    let waiting = request(&app, &dispatcher, urgent).await;
    assert_eq!(waiting["queue"]["position"], 1, "{waiting}");
    assert!(waiting["queue"]["waited_s"].as_i64().unwrap() >= 0);
    assert_eq!(request(&app, &dispatcher, third).await["queue"]["position"], 2);
    assert!(request(&app, &dispatcher, first).await["queue"].is_null());

    // The crew finishes the first job over REST; the freed unit goes to the category 1 call.
    for body in [
        json!({"status": "en_route"}),
        json!({"status": "on_scene"}),
        json!({"status": "transporting", "hospital_id": hospital}),
        json!({"status": "at_destination"}),
        json!({"status": "handed_over"}),
        json!({"status": "back_in_service"}),
    ] {
        step(&app, &crew, body).await;
    }
    let offer = next_offer(&mut crew.ws).await;
    assert_eq!(offer["request"]["id"], urgent, "{offer}");
    let steps = timeline(&app, urgent).await;
    let statuses: Vec<&str> = steps.iter().map(|(to, _)| to.as_str()).collect();
    assert_eq!(statuses, ["requested", "queued", "offered"], "{steps:?}");
    let reason = steps[2].1.as_deref().unwrap_or_default();
    assert!(reason.starts_with("queue: nearest free unit"), "{reason}");
    // The category 3 call keeps waiting, now first in the queue.
    let still = request(&app, &dispatcher, third).await;
    assert_eq!(still["status"], "queued");
    assert_eq!(still["queue"]["position"], 1);
}

#[actix_web::test]
async fn calls_competing_for_units_freed_together_get_the_assignment_with_the_least_total_eta() {
    // Triggers within 400 ms are solved together, so the two crews coming back is one batch.
    let app = spawn_app_with(|s| s.dispatch.resolve_delay_ms = 400).await;
    let (dispatcher, _) = app.user_with_role(Role::Dispatcher).await;
    // Call A at the centre and call B 2 km north; unit 1 is 1 km north, unit 2 1.5 km south. Serving
    // the older call A with its nearest unit first would cost 1 + 3 km; the batch sends 1.5 + 1 km.
    let mut one = ambulance(&app, &dispatcher, "ALS-B1", "als", north(1_000.0)).await;
    let mut two = ambulance(&app, &dispatcher, "ALS-B2", "als", north(-1_500.0)).await;
    for crew in [&mut one, &mut two] {
        indexed(&app, crew.unit).await;
        crew_status(crew, "busy").await;
    }
    let a = post_call(&app, &dispatcher, &call_at(north(0.0), 2)).await;
    let b = post_call(&app, &dispatcher, &call_at(north(2_000.0), 2)).await;
    reaches(&app, &dispatcher, a, "queued").await;
    reaches(&app, &dispatcher, b, "queued").await;

    let (back_one, back_two) = tokio::join!(
        one.ws
            .command(json!({"type": "status", "status": "available"}), "back"),
        two.ws
            .command(json!({"type": "status", "status": "available"}), "back"),
    );
    assert_eq!(
        (back_one["type"].as_str(), back_two["type"].as_str()),
        (Some("ack"), Some("ack"))
    );
    assert_eq!(next_offer(&mut one.ws).await["request"]["id"], b);
    assert_eq!(next_offer(&mut two.ws).await["request"]["id"], a);
    for id in [a, b] {
        let steps = timeline(&app, id).await;
        let (to, reason) = steps.last().unwrap();
        assert_eq!(to, "offered");
        let reason = reason.as_deref().unwrap_or_default();
        assert!(
            reason.starts_with("batch exact: 2 calls x 2 units in "),
            "{reason}"
        );
    }
}

#[actix_web::test]
async fn a_unit_that_fell_silent_after_the_search_is_never_offered() {
    use onemedi_actors::ids::UnitId;
    let app = spawn_app().await;
    let (dispatcher, _) = app.user_with_role(Role::Dispatcher).await;
    let mut nearest = ambulance(&app, &dispatcher, "ALS-F1", "als", north(300.0)).await;
    let silent = ambulance(&app, &dispatcher, "ALS-F2", "als", north(600.0)).await;
    let mut farther = ambulance(&app, &dispatcher, "ALS-F3", "als", north(900.0)).await;
    for crew in [&nearest, &silent, &farther] {
        indexed(&app, crew.unit).await;
    }
    let id = post_call(&app, &dispatcher, &call_at(north(0.0), 2)).await;
    assert_eq!(next_offer(&mut nearest.ws).await["request"]["id"], id);

    // The second candidate stops reporting: its last ping is now two minutes old.
    {
        let mut index = onemedi::bus::lock_fleet(&app.app.fleet);
        let mut unit = *index.get(UnitId(silent.unit)).unwrap();
        unit.last_seen -= chrono::TimeDelta::seconds(120);
        index.upsert(unit).unwrap();
    }
    let declined = nearest
        .ws
        .command(json!({"type": "decline", "request_id": id}), "no")
        .await;
    assert_eq!(declined["type"], "ack", "{declined}");
    assert_eq!(next_offer(&mut farther.ws).await["request"]["id"], id);
    let offered_to_silent: i64 = {
        use schema::dispatch_offers as o;
        let mut conn = app.app.db.read().await.unwrap();
        on_conn!(&mut conn, c => o::table
            .filter(o::unit_id.eq(silent.unit))
            .count()
            .get_result(c)
            .await)
        .unwrap()
    };
    assert_eq!(offered_to_silent, 0);
}

/// Reads the crew's frames until an event of `kind` arrives.
async fn next_event(crew: &mut Crew, kind: &str) -> Value {
    loop {
        let frame = crew.ws.next().await;
        if frame["event"]["type"] == kind {
            return frame["event"].clone();
        }
    }
}

async fn status_of(app: &TestApp, id: i64) -> (String, Option<i64>) {
    use schema::ambulance_requests as ar;
    let mut conn = app.app.db.read().await.unwrap();
    on_conn!(&mut conn, c => ar::table
        .find(id)
        .select((ar::status, ar::assigned_unit_id))
        .first::<(String, Option<i64>)>(c)
        .await)
    .unwrap()
}

/// Two category 1 calls arrive at once on two nodes next to an ambulance on its way to a category 4
/// call, with the only free ambulance 12 km away: exactly one of them takes that ambulance, the
/// category 4 call goes back to the queue (and is served next), and no unit is on two calls.
#[actix_web::test]
async fn two_urgent_calls_racing_across_nodes_preempt_one_unit_once_and_the_preempted_call_is_not_lost() {
    let first = spawn_app().await;
    let second = match crate::helpers::redis_url() {
        Some(_) => Some(crate::helpers::spawn_second_node(&first).await),
        None => None,
    };
    let nodes: Vec<&TestApp> = std::iter::once(&first).chain(second.as_ref()).collect();
    let (dispatcher, _) = first.user_with_role(Role::Dispatcher).await;
    let mut near = ambulance(&first, &dispatcher, "ALS-P1", "als", north(500.0)).await;
    for node in &nodes {
        indexed(node, near.unit).await;
    }
    let minor = post_call(&first, &dispatcher, &call_at(north(800.0), 4)).await;
    assert_eq!(next_offer(&mut near.ws).await["request"]["id"], minor);
    accept(&mut near, minor).await;
    step(&first, &near, json!({"status": "en_route"})).await;
    let mut far = ambulance(&first, &dispatcher, "ALS-P2", "als", north(12_000.0)).await;
    for node in &nodes {
        indexed(node, far.unit).await;
    }

    let calls = nodes.iter().map(|node| {
        let dispatcher = dispatcher.clone();
        async move { post_call(node, &dispatcher, &call_at(north(300.0), 1)).await }
    });
    let urgent: Vec<i64> = futures_util::future::join_all(calls).await;

    let notice = next_event(&mut near, "preempted").await;
    assert_eq!(notice["from"]["id"], minor, "{notice}");
    let winner = notice["to"]["id"].as_i64().unwrap();
    assert!(urgent.contains(&winner), "{notice}");
    assert_eq!(
        status_of(&first, winner).await,
        ("assigned".to_owned(), Some(near.unit))
    );
    // The preempted call keeps its place: back in the queue, then served by the far unit (the other
    // urgent call, if any, competes for it too, and goes first).
    let minor_steps = timeline(&first, minor).await;
    assert!(
        minor_steps
            .iter()
            .any(|(to, reason)| to == "queued" && reason.as_deref().unwrap_or_default().contains("taken for")),
        "{minor_steps:?}"
    );
    // The far unit is offered one of the calls still waiting (which one is the two nodes' race: each
    // node orders its own queue).
    let offered = next_offer(&mut far.ws).await["request"]["id"].as_i64().unwrap();
    assert!(
        offered != winner && (urgent.contains(&offered) || offered == minor),
        "{offered}"
    );

    // No unit is on two live calls, and every call is still worked: assigned, offered or queued.
    let mut live_units = Vec::new();
    for id in urgent.iter().copied().chain([minor]) {
        let (status, unit) = status_of(&first, id).await;
        assert!(
            ["assigned", "offered", "queued"].contains(&status.as_str()),
            "call {id} is {status}"
        );
        if status == "assigned" {
            live_units.push(unit.unwrap());
        }
    }
    let distinct: std::collections::HashSet<_> = live_units.iter().collect();
    assert_eq!(distinct.len(), live_units.len(), "{live_units:?}");
}

#[actix_web::test]
async fn a_dispatcher_may_give_a_category_1_call_the_unit_on_its_way_to_a_category_4_call() {
    let app = spawn_app().await;
    let (dispatcher, _) = app.user_with_role(Role::Dispatcher).await;
    let mut crew = ambulance(&app, &dispatcher, "ALS-M1", "als", north(500.0)).await;
    indexed(&app, crew.unit).await;
    let minor = post_call(&app, &dispatcher, &call_at(north(800.0), 4)).await;
    assert_eq!(next_offer(&mut crew.ws).await["request"]["id"], minor);
    accept(&mut crew, minor).await;
    step(&app, &crew, json!({"status": "en_route"})).await;
    // A free unit 1.5 km away (under 5 minutes) is offered the call by the engine; the dispatcher
    // prefers the one passing by.
    let mut free = ambulance(&app, &dispatcher, "ALS-M2", "als", north(1_800.0)).await;
    indexed(&app, free.unit).await;
    let urgent = post_call(&app, &dispatcher, &call_at(north(300.0), 1)).await;
    assert_eq!(next_offer(&mut free.ws).await["request"]["id"], urgent);

    let assigned = app
        .post(
            &format!("/api/v1/emergency/ambulance-requests/{urgent}/assign"),
            &json!({"unit_id": crew.unit}),
            Some(&dispatcher),
        )
        .await;
    assert_eq!(assigned.status, StatusCode::OK, "{}", assigned.body);
    assert_eq!(assigned.body["status"], "assigned");
    assert_eq!(next_event(&mut crew, "preempted").await["to"]["id"], urgent);
    // The preempted call is back with the engine (queued, or already offered to the free unit).
    let (status, unit) = status_of(&app, minor).await;
    assert!(["queued", "offered"].contains(&status.as_str()), "{status}");
    assert_ne!(unit, Some(crew.unit));
    let steps = timeline(&app, minor).await;
    assert!(steps.iter().any(|(to, _)| to == "queued"), "{steps:?}");
    // A category 3 call cannot take a unit that way.
    let other = post_call(&app, &dispatcher, &call_at(north(100.0), 3)).await;
    let refused = app
        .post(
            &format!("/api/v1/emergency/ambulance-requests/{other}/assign"),
            &json!({"unit_id": crew.unit}),
            Some(&dispatcher),
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert_eq!(
        status_of(&app, urgent).await,
        ("assigned".to_owned(), Some(crew.unit))
    );
}

#[actix_web::test]
async fn a_category_1_call_with_no_unit_free_at_all_takes_the_one_on_its_way_to_a_category_4_call() {
    let app = spawn_app().await;
    let (dispatcher, _) = app.user_with_role(Role::Dispatcher).await;
    let mut crew = ambulance(&app, &dispatcher, "ALS-N1", "als", north(500.0)).await;
    indexed(&app, crew.unit).await;
    let minor = post_call(&app, &dispatcher, &call_at(north(2_000.0), 4)).await;
    assert_eq!(next_offer(&mut crew.ws).await["request"]["id"], minor);
    accept(&mut crew, minor).await;
    step(&app, &crew, json!({"status": "en_route"})).await;

    // Nobody else is on duty: the urgent call waits for no one but takes the unit passing by.
    let urgent = post_call(&app, &dispatcher, &call_at(north(300.0), 1)).await;
    let notice = next_event(&mut crew, "preempted").await;
    assert_eq!(notice["from"]["id"], minor, "{notice}");
    assert_eq!(notice["to"]["id"], urgent, "{notice}");
    assert_eq!(
        status_of(&app, urgent).await,
        ("assigned".to_owned(), Some(crew.unit))
    );
    let (status, unit) = status_of(&app, minor).await;
    assert_eq!((status.as_str(), unit), ("queued", None));
}

#[actix_web::test]
async fn a_category_2_call_takes_a_unit_from_lesser_work_only_while_one_is_left_for_category_1() {
    let app = spawn_app_with(|s| {
        s.dispatch.preemption = onemedi::config::PreemptionPolicy::C1C2;
        s.dispatch.reserve_c1 = 1;
    })
    .await;
    let (dispatcher, _) = app.user_with_role(Role::Dispatcher).await;
    // Two units, each on its way to a category 4 call, nobody else on duty.
    let mut east = ambulance(&app, &dispatcher, "ALS-E1", "als", north(400.0)).await;
    indexed(&app, east.unit).await;
    let minor_east = post_call(&app, &dispatcher, &call_at(north(2_000.0), 4)).await;
    assert_eq!(next_offer(&mut east.ws).await["request"]["id"], minor_east);
    accept(&mut east, minor_east).await;
    step(&app, &east, json!({"status": "en_route"})).await;
    let mut west = ambulance(&app, &dispatcher, "ALS-W1", "als", north(600.0)).await;
    indexed(&app, west.unit).await;
    let minor_west = post_call(&app, &dispatcher, &call_at(north(-2_000.0), 4)).await;
    assert_eq!(next_offer(&mut west.ws).await["request"]["id"], minor_west);
    accept(&mut west, minor_west).await;
    step(&app, &west, json!({"status": "en_route"})).await;

    // Two takeable units, one more than the category 1 reserve: a category 2 call takes one.
    let serious = post_call(&app, &dispatcher, &call_at(north(500.0), 2)).await;
    eventually(async || status_of(&app, serious).await.0 == "assigned").await;
    let (_, taken) = status_of(&app, serious).await;
    let (mut kept, kept_from) = if taken == Some(east.unit) {
        (west, minor_west)
    } else {
        assert_eq!(taken, Some(west.unit));
        (east, minor_east)
    };

    // One takeable unit left, the reserve: a second category 2 call waits queued and leaves it alone…
    let second = post_call(&app, &dispatcher, &call_at(north(500.0), 2)).await;
    reaches(&app, &dispatcher, second, "queued").await;
    // (a preemption is asked for within the first re-solve; give it several)
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    assert_eq!(
        status_of(&app, kept_from).await,
        ("en_route".to_owned(), Some(kept.unit)),
        "a category 2 call took the unit kept for category 1"
    );
    assert_eq!(status_of(&app, second).await, ("queued".to_owned(), None));

    // …which a category 1 call then takes.
    let urgent = post_call(&app, &dispatcher, &call_at(north(500.0), 1)).await;
    let notice = next_event(&mut kept, "preempted").await;
    assert_eq!(notice["from"]["id"], kept_from, "{notice}");
    assert_eq!(notice["to"]["id"], urgent, "{notice}");
    assert_eq!(
        status_of(&app, urgent).await,
        ("assigned".to_owned(), Some(kept.unit))
    );
}
