//! Tracking pages' live data. For people without an account, a share link's token in the websocket's
//! `auth` frame opens a read-only session that may follow exactly its order's topic, sees only the
//! events a share link may show (never the delivery code or the address), and ends when the link
//! expires. For an ambulance's requester, the assigned crew's pings arrive on the request's topic.

use reqwest::StatusCode;
use serde_json::{Value, json};

use onemedi::domain::Role;

use crate::{
    delivery::{NEAR, assigned, confirmed_order, order_in, rider, set_status, share_token},
    emergency::{ambulance, call, indexed, next_offer},
    helpers::{TestApp, spawn_app},
    shop::shop,
    ws_client::{Client, Ended},
};

/// A session opened without a token, then authenticated with `token` in its first frame.
async fn shared_session(app: &TestApp, token: &str) -> (Client, Value) {
    let mut client = Client::open_with(app, None, None).await.unwrap();
    let reply = client
        .command(json!({"type": "auth", "token": token}), "auth")
        .await;
    (client, reply)
}

/// Reads frames until the order's status changes to `status`, returning every frame read.
async fn frames_until(ws: &mut Client, status: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let frame = ws.next().await;
        let done = frame["event"]["type"] == "order_status_changed" && frame["event"]["to"] == status;
        seen.push(frame);
        if done {
            return seen;
        }
    }
}

#[actix_web::test]
async fn a_share_link_session_follows_only_its_order_read_only_and_never_sees_the_code_or_address() {
    let app = spawn_app().await;
    let (staff, pain) = shop(&app).await;
    let placed = order_in(&app, staff.clone(), pain).await;
    let other = order_in(&app, staff, pain).await;
    let mut near = rider(&app, "BLR-RDR-S1", NEAR).await;
    let link = app
        .post(
            &format!("/api/v1/orders/{}/share", placed.order),
            &json!({"hours": 1}),
            Some(&placed.customer),
        )
        .await;
    assert_eq!(link.status, StatusCode::CREATED, "{}", link.body);
    let token = link.body["token"].as_str().unwrap().to_owned();

    // The link is not a login: the handshake refuses it in a header or the query.
    assert_eq!(
        Client::open_with(&app, Some(&token), None).await.err(),
        Some(StatusCode::UNAUTHORIZED)
    );

    let (mut shared, reply) = shared_session(&app, &token).await;
    assert_eq!(reply["type"], "ack", "{reply}");
    for topic in [
        format!("order:{}", other.order),
        format!("order:{}", placed.order + 1000),
        "dispatch".to_owned(),
        format!("unit:{}", near.unit),
        "user:1".to_owned(),
    ] {
        let refused = shared.subscribe(&topic).await;
        assert_eq!(
            (refused["type"].as_str(), refused["code"].as_str()),
            (Some("error"), Some("forbidden")),
            "{topic}: {refused}"
        );
    }
    assert_eq!(
        shared.subscribe(&format!("order:{}", placed.order)).await["type"],
        "ack"
    );
    for (i, command) in [
        json!({"type": "location", "lat": NEAR.0, "lng": NEAR.1}),
        json!({"type": "status", "status": "available"}),
        json!({"type": "accept", "request_id": placed.order}),
        json!({"type": "decline", "request_id": placed.order}),
    ]
    .into_iter()
    .enumerate()
    {
        let refused = shared.command(command, &format!("c{i}")).await;
        assert_eq!(refused["code"], "forbidden", "{refused}");
    }

    // The customer follows the same order with a session token, for comparison.
    let mut owner = Client::open(&app, &placed.customer).await;
    assert_eq!(
        owner.subscribe(&format!("order:{}", placed.order)).await["type"],
        "ack"
    );
    assigned(&app, &placed, &mut near).await;
    let ping = json!({"type": "location", "lat": NEAR.0 + 0.001, "lng": NEAR.1, "heading": 10, "speed": 5});
    assert_eq!(near.ws.command(ping, "p").await["type"], "ack");
    assert_eq!(
        set_status(&app, &placed, "shipped", &near.token).await.status,
        StatusCode::OK
    );

    let owner_saw = frames_until(&mut owner, "shipped").await;
    assert!(
        owner_saw.iter().any(|f| f["event"]["type"] == "unit_assigned"),
        "the dispatcher's unit_assigned reaches the order's topic: {owner_saw:?}"
    );
    let saw = frames_until(&mut shared, "shipped").await;
    let kinds: Vec<&str> = saw.iter().filter_map(|f| f["event"]["type"].as_str()).collect();
    assert!(kinds.contains(&"rider_assigned"), "{kinds:?}");
    assert!(kinds.contains(&"rider_location"), "{kinds:?}");
    for kind in &kinds {
        assert!(
            onemedi::ws::share::SHARED_EVENTS.contains(kind),
            "only listed events reach a share link: {kind}"
        );
    }
    let text = serde_json::to_string(&saw).unwrap();
    assert!(!text.contains(&placed.code), "no delivery code: {text}");
    assert!(
        !text.contains("MG Road") && !text.contains("Asha"),
        "no address or name: {text}"
    );
    // Nothing of the other order arrives.
    assert!(
        saw.iter()
            .all(|f| f["topic"] == format!("order:{}", placed.order)),
        "{text}"
    );
}

#[actix_web::test]
async fn an_expired_or_tampered_share_link_cannot_open_a_session_and_a_live_one_ends_at_its_expiry() {
    let app = spawn_app().await;
    let placed = confirmed_order(&app).await;
    let now = jsonwebtoken::get_current_timestamp();

    let expired = share_token(placed.order, now - 5);
    let mut tampered = share_token(placed.order, now + 3600);
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    for token in [&expired, &tampered] {
        let (mut refused, reply) = shared_session(&app, token).await;
        assert_eq!(reply["code"], "unauthorized", "{reply}");
        assert_eq!(refused.ended().await, Ended::Code(1008));
    }

    // A link that ends in three seconds: the session works, then is closed when the link expires.
    let brief = share_token(placed.order, jsonwebtoken::get_current_timestamp() + 3);
    let (mut shared, reply) = shared_session(&app, &brief).await;
    assert_eq!(reply["type"], "ack", "{reply}");
    assert_eq!(
        shared.subscribe(&format!("order:{}", placed.order)).await["type"],
        "ack"
    );
    assert_eq!(shared.ended().await, Ended::Code(1008));
    let (_, again) = shared_session(&app, &brief).await;
    assert_eq!(again["code"], "unauthorized", "{again}");
}

#[actix_web::test]
async fn an_ambulance_crews_pings_reach_the_requesters_topic_once_it_works_the_request() {
    let app = spawn_app().await;
    let (dispatcher, _) = app.user_with_role(Role::Dispatcher).await;
    let mut crew = ambulance(&app, &dispatcher, "ALS-T1", "als", (12.9800, 77.6050)).await;
    indexed(&app, crew.unit).await;
    let (customer, _) = app.register_customer("tracker@example.in").await;
    let created = app
        .post("/api/v1/emergency/ambulance-requests", &call(2), Some(&customer))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_i64().unwrap();
    let topic = format!("ambulance_request:{id}");
    let mut follower = Client::open(&app, &customer).await;
    assert_eq!(follower.subscribe(&topic).await["type"], "ack");

    let offer = next_offer(&mut crew.ws).await;
    assert_eq!(offer["request"], json!({"kind": "ambulance_request", "id": id}));
    let accepted = crew
        .ws
        .command(json!({"type": "accept", "request_id": id}), "a")
        .await;
    assert_eq!(accepted["type"], "ack", "{accepted}");
    let ping = json!({"type": "location", "lat": 12.9790, "lng": 77.6051, "heading": 180, "speed": 9});
    assert_eq!(crew.ws.command(ping, "p").await["type"], "ack");
    let location = loop {
        let frame = follower.next().await;
        if frame["event"]["type"] == "unit_location" {
            break frame;
        }
    };
    assert_eq!(location["topic"], topic);
    assert_eq!(location["event"]["unit_id"], crew.unit);
    assert_eq!(location["event"]["lat"], 12.979);
}
