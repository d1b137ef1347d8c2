//! Medicine deliveries end to end: a packed order offered to a rider over the websocket, the rider's
//! steps and live position on the customer's `order:{id}` topic, proof of delivery with the customer's
//! code (bounded attempts), a race of accepts settled by the database, retries for orders nobody took,
//! and expiring read-only share links.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use onemedi::{db::schema, domain::Role, on_conn};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, redis_url, spawn_app, spawn_app_with, spawn_second_node},
    shop::{add_to_cart, customer, medicine, shop},
    ws_client::{Client, eventually},
};

/// Near the demo customer's address (12 MG Road).
pub(crate) const NEAR: (f64, f64) = (12.9750, 77.6050);

pub(crate) struct Rider {
    pub token: String,
    pub unit: i64,
    pub ws: Client,
}

/// A rider unit crewed by a new rider user, inserted like the demo city's, then on duty at `at`.
pub(crate) async fn rider(app: &TestApp, call_sign: &str, at: (f64, f64)) -> Rider {
    let (token, user) = app.user_with_role(Role::Rider).await;
    let unit = rider_unit(app, call_sign, user).await;
    let ws = on_duty(app, &token, unit, at).await;
    wait_indexed(app, unit).await;
    Rider { token, unit, ws }
}

async fn rider_unit(app: &TestApp, call_sign: &str, user: i64) -> i64 {
    use schema::{unit_crew as c, units as u};
    let now = onemedi::db::now();
    let mut conn = app.app.db.write().await.unwrap();
    let unit = on_conn!(&mut conn, c => diesel::insert_into(u::table)
        .values((
            u::call_sign.eq(call_sign),
            u::kind.eq("rider"),
            u::home_lat.eq(NEAR.0),
            u::home_lng.eq(NEAR.1),
            u::created_at.eq(now),
            u::updated_at.eq(now),
        ))
        .returning(u::id)
        .get_result::<i64>(c)
        .await)
    .unwrap();
    on_conn!(&mut conn, conn => diesel::insert_into(c::table)
        .values((
            c::unit_id.eq(unit),
            c::user_id.eq(user),
            c::crew_role.eq("rider"),
            c::is_lead.eq(true),
            c::created_at.eq(now),
        ))
        .execute(conn)
        .await)
    .unwrap();
    unit
}

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

async fn wait_indexed(app: &TestApp, unit: i64) {
    use onemedi_actors::{fleet::UnitStatus, ids::UnitId};
    eventually(async || {
        onemedi::bus::lock_fleet(&app.app.fleet)
            .get(UnitId(unit))
            .is_some_and(|u| u.status == UnitStatus::Available)
    })
    .await;
}

/// The next offer frame's event.
async fn next_offer(ws: &mut Client) -> Value {
    loop {
        let frame = ws.next().await;
        if frame["type"] == "offer" {
            return frame["event"].clone();
        }
    }
}

/// Reads frames until an event of `kind` arrives.
pub(crate) async fn event_of(ws: &mut Client, kind: &str) -> Value {
    loop {
        let frame = ws.next().await;
        if frame["event"]["type"] == kind {
            return frame["event"].clone();
        }
    }
}

pub(crate) struct Placed {
    pub staff: String,
    pub customer: String,
    pub order: i64,
    pub code: String,
}

/// An order placed and confirmed (not packed yet).
pub(crate) async fn confirmed_order(app: &TestApp) -> Placed {
    let (staff, pain) = shop(app).await;
    order_in(app, staff, pain).await
}

/// An order placed and confirmed in an existing shop (`staff`, category `pain`).
pub(crate) async fn order_in(app: &TestApp, staff: String, pain: i64) -> Placed {
    let name = format!("Paracetamol {}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let id = medicine(app, &staff, pain, json!({"stock": 10, "name": name})).await["id"]
        .as_i64()
        .unwrap();
    let asha = customer(app).await;
    add_to_cart(app, &asha, id, 1).await;
    let placed = app
        .post(
            "/api/v1/orders",
            &json!({"address_id": asha.address_id, "payment_method": "cod"}),
            Some(&asha.token),
        )
        .await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.body);
    let order = placed.body["id"].as_i64().unwrap();
    let code = placed.body["delivery_code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 6);
    let placed = Placed {
        staff,
        customer: asha.token,
        order,
        code,
    };
    assert_eq!(
        set_status(app, &placed, "confirmed", &placed.staff).await.status,
        StatusCode::OK
    );
    placed
}

pub(crate) async fn set_status(
    app: &TestApp,
    placed: &Placed,
    status: &str,
    token: &str,
) -> crate::helpers::Reply {
    app.put(
        &format!("/api/v1/orders/{}/status", placed.order),
        &json!({"status": status}),
        Some(token),
    )
    .await
}

async fn deliver(app: &TestApp, placed: &Placed, code: &str, token: &str) -> crate::helpers::Reply {
    app.post(
        &format!("/api/v1/orders/{}/deliver", placed.order),
        &json!({"code": code}),
        Some(token),
    )
    .await
}

fn wrong(code: &str) -> String {
    if code == "000000" {
        "000001".to_owned()
    } else {
        "000000".to_owned()
    }
}

async fn unit_status(app: &TestApp, unit: i64) -> String {
    use schema::units as u;
    let mut conn = app.app.db.read().await.unwrap();
    on_conn!(&mut conn, c => u::table.find(unit).select(u::status).first::<String>(c).await).unwrap()
}

async fn order_row(app: &TestApp, order: i64) -> (String, Option<i64>, i32) {
    use schema::{order_delivery_codes as d, orders as o};
    let mut conn = app.app.db.read().await.unwrap();
    on_conn!(&mut conn, c => o::table
        .inner_join(d::table)
        .filter(o::id.eq(order))
        .select((o::status, o::rider_unit_id, d::attempts))
        .first::<(String, Option<i64>, i32)>(c)
        .await)
    .unwrap()
}

/// Packs `placed` with `rider` on duty, and has the rider accept the offer over the websocket.
pub(crate) async fn assigned(app: &TestApp, placed: &Placed, rider: &mut Rider) {
    assert_eq!(
        set_status(app, placed, "packed", &placed.staff).await.status,
        StatusCode::OK
    );
    let offer = next_offer(&mut rider.ws).await;
    assert_eq!(
        offer["request"],
        json!({"kind": "order", "id": placed.order}),
        "{offer}"
    );
    let accepted = rider
        .ws
        .command(json!({"type": "accept", "request_id": placed.order}), "a")
        .await;
    assert_eq!(accepted["type"], "ack", "{accepted}");
}

#[actix_web::test]
async fn a_packed_order_is_offered_to_the_nearest_rider_who_carries_it_to_the_door_live() {
    let app = spawn_app().await;
    let placed = confirmed_order(&app).await;
    let mut near = rider(&app, "BLR-RDR-T1", NEAR).await;
    let mut far = rider(&app, "BLR-RDR-T2", (12.9900, 77.6300)).await;
    let mut follower = Client::open(&app, &placed.customer).await;
    assert_eq!(
        follower.subscribe(&format!("order:{}", placed.order)).await["type"],
        "ack"
    );

    assert_eq!(
        set_status(&app, &placed, "packed", &placed.staff).await.status,
        StatusCode::OK
    );
    let offer = next_offer(&mut near.ws).await;
    assert_eq!(offer["request"], json!({"kind": "order", "id": placed.order}));
    assert!(offer["eta_s"].as_f64().unwrap() > 0.0);
    // The other rider cannot answer an offer made to someone else.
    let stolen = far
        .ws
        .command(json!({"type": "accept", "request_id": placed.order}), "x")
        .await;
    assert_eq!(
        (stolen["type"].as_str(), stolen["code"].as_str()),
        (Some("error"), Some("not_found"))
    );
    let accepted = near
        .ws
        .command(json!({"type": "accept", "request_id": placed.order}), "a")
        .await;
    assert_eq!(accepted["type"], "ack", "{accepted}");

    let assigned = event_of(&mut follower, "rider_assigned").await;
    assert_eq!(assigned["unit_id"], near.unit);
    assert_eq!(assigned["call_sign"], "BLR-RDR-T1");
    assert_eq!(unit_status(&app, near.unit).await, "assigned");
    assert_eq!(order_row(&app, placed.order).await.1, Some(near.unit));

    // The rider picks it up and sets off; the customer follows the position with an ETA.
    assert_eq!(
        set_status(&app, &placed, "shipped", &near.token).await.status,
        StatusCode::OK
    );
    assert_eq!(
        set_status(&app, &placed, "out_for_delivery", &near.token)
            .await
            .status,
        StatusCode::OK
    );
    let ping = json!({"type": "location", "lat": 12.9730, "lng": 77.5990, "heading": 270, "speed": 6});
    near.ws.send(ping).await;
    let moved = event_of(&mut follower, "rider_location").await;
    assert_eq!(
        (moved["order_id"].as_i64(), moved["unit_id"].as_i64()),
        (Some(placed.order), Some(near.unit))
    );
    assert_eq!(moved["lat"], 12.9730);
    assert!(moved["eta_s"].as_f64().unwrap() > 0.0);

    let seen = app
        .get(
            &format!("/api/v1/orders/{}", placed.order),
            Some(&placed.customer),
        )
        .await;
    assert_eq!(seen.status, StatusCode::OK);
    assert_eq!(seen.body["status"], "out_for_delivery");
    assert_eq!(seen.body["delivery_code"], placed.code.as_str());
    assert_eq!(seen.body["tracking"]["rider"]["unit_id"], near.unit);
    let position = &seen.body["tracking"]["rider"]["position"];
    assert!(position["last_seen_age_s"].as_f64().unwrap() >= 0.0, "{position}");
    assert!(seen.body["tracking"]["eta_s"].as_f64().unwrap() > 0.0);
    // Neither staff nor the rider see the code.
    for token in [&placed.staff, &near.token] {
        let other = app
            .get(&format!("/api/v1/orders/{}", placed.order), Some(token))
            .await;
        assert_eq!(other.status, StatusCode::OK);
        assert!(other.body.get("delivery_code").is_none(), "{}", other.body);
    }
    // The rider may not skip the code.
    assert_eq!(
        set_status(&app, &placed, "delivered", &near.token).await.status,
        StatusCode::FORBIDDEN
    );

    let refused = deliver(&app, &placed, &wrong(&placed.code), &near.token).await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "delivery_code_invalid")
    );
    assert_eq!(refused.body["error"]["details"]["attempts_left"], 4);
    assert_eq!(order_row(&app, placed.order).await.0, "out_for_delivery");
    assert_eq!(unit_status(&app, near.unit).await, "assigned");
    // Someone else's rider cannot confirm it.
    assert_eq!(
        deliver(&app, &placed, &placed.code, &far.token).await.status,
        StatusCode::NOT_FOUND
    );

    let done = deliver(&app, &placed, &placed.code, &near.token).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(done.body["status"], "delivered");
    assert_eq!(unit_status(&app, near.unit).await, "available");
    let changed = event_of(&mut follower, "order_status_changed").await;
    assert_eq!(changed["to"], "delivered", "{changed}");
    let after = app
        .get(
            &format!("/api/v1/orders/{}", placed.order),
            Some(&placed.customer),
        )
        .await;
    assert!(
        after.body.get("delivery_code").is_none(),
        "a used code is not shown again"
    );
    let events: Vec<&str> = after.body["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["event"].as_str().unwrap())
        .collect();
    assert!(
        events.contains(&"offer_rider") && events.contains(&"assign_rider"),
        "{events:?}"
    );
}

#[actix_web::test]
async fn wrong_delivery_codes_are_bounded_then_the_order_is_locked_and_nothing_else_changes() {
    let app = spawn_app().await;
    let placed = confirmed_order(&app).await;
    let mut bike = rider(&app, "BLR-RDR-T3", NEAR).await;
    assigned(&app, &placed, &mut bike).await;
    for step in ["shipped", "out_for_delivery"] {
        assert_eq!(
            set_status(&app, &placed, step, &bike.token).await.status,
            StatusCode::OK
        );
    }
    let malformed = deliver(&app, &placed, "12ab", &bike.token).await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    for left in (0..5).rev() {
        let reply = deliver(&app, &placed, &wrong(&placed.code), &bike.token).await;
        assert_eq!(reply.code(), "delivery_code_invalid");
        assert_eq!(reply.body["error"]["details"]["attempts_left"], left);
    }
    let locked = deliver(&app, &placed, &placed.code, &bike.token).await;
    assert_eq!(
        (locked.status, locked.code()),
        (StatusCode::LOCKED, "delivery_code_locked")
    );
    assert_eq!(
        order_row(&app, placed.order).await,
        ("out_for_delivery".to_owned(), Some(bike.unit), 5)
    );
    assert_eq!(unit_status(&app, bike.unit).await, "assigned");
}

/// Two riders hold an open offer of the same order (as when two nodes both restarted its cascade) and
/// accept at the same moment, on two nodes when Redis joins them: the order row decides, one wins.
#[actix_web::test]
async fn two_riders_accepting_the_same_delivery_at_once_give_it_to_exactly_one() {
    let first = spawn_app().await;
    let second = match redis_url() {
        Some(_) => Some(spawn_second_node(&first).await),
        None => None,
    };
    let other = second.as_ref().unwrap_or(&first);
    let (staff, pain) = shop(&first).await;
    for round in 0..3 {
        // Packed with nobody on duty: the cascade finds no one and the order waits, packed, in the queue.
        let placed = order_in(&first, staff.clone(), pain).await;
        assert_eq!(
            set_status(&first, &placed, "packed", &placed.staff).await.status,
            StatusCode::OK
        );
        let mut a = rider(&first, &format!("RACE-A{round}"), NEAR).await;
        let (b_token, b_user) = first.user_with_role(Role::Rider).await;
        let b_unit = rider_unit(&first, &format!("RACE-B{round}"), b_user).await;
        let mut b = on_duty(other, &b_token, b_unit, NEAR).await;
        {
            use schema::dispatch_offers as d;
            let now = onemedi::db::now();
            let mut conn = first.app.db.write().await.unwrap();
            for unit in [a.unit, b_unit] {
                on_conn!(&mut conn, c => diesel::insert_into(d::table)
                    .values((
                        d::request_kind.eq("order"),
                        d::request_id.eq(placed.order),
                        d::unit_id.eq(unit),
                        d::status.eq("offered"),
                        d::offered_at.eq(now),
                        d::expires_at.eq(now + chrono::TimeDelta::seconds(60)),
                    ))
                    // The queue may already have offered the order to the rider who came on duty.
                    .on_conflict((d::request_kind, d::request_id, d::unit_id))
                    .do_update()
                    .set((
                        d::status.eq("offered"),
                        d::expires_at.eq(now + chrono::TimeDelta::seconds(60)),
                    ))
                    .execute(c)
                    .await)
                .unwrap();
            }
        }
        let accept = json!({"type": "accept", "request_id": placed.order});
        let (ra, rb) = tokio::join!(a.ws.command(accept.clone(), "race"), b.command(accept, "race"));
        let acks = [&ra, &rb].iter().filter(|r| r["type"] == "ack").count();
        assert_eq!(acks, 1, "exactly one accept wins: {ra} / {rb}");
        let loser = if ra["type"] == "ack" { &rb } else { &ra };
        assert_eq!(loser["code"], "offer_taken", "{loser}");
        let winner = if ra["type"] == "ack" { a.unit } else { b_unit };
        let looser_unit = if winner == a.unit { b_unit } else { a.unit };
        assert_eq!(order_row(&first, placed.order).await.1, Some(winner));
        assert_eq!(unit_status(&first, winner).await, "assigned");
        assert_eq!(unit_status(&first, looser_unit).await, "available");
    }
}

#[actix_web::test]
async fn a_packed_order_nobody_took_is_offered_again_to_a_rider_who_comes_on_duty() {
    let app = spawn_app_with(|s| {
        s.delivery.retry_after_secs = 1;
        s.delivery.retry_sweep_ms = 200;
    })
    .await;
    let placed = confirmed_order(&app).await;
    assert_eq!(
        set_status(&app, &placed, "packed", &placed.staff).await.status,
        StatusCode::OK
    );
    let mut late = rider(&app, "BLR-RDR-T9", NEAR).await;
    let offer = next_offer(&mut late.ws).await;
    assert_eq!(offer["request"], json!({"kind": "order", "id": placed.order}));
    let accepted = late
        .ws
        .command(json!({"type": "accept", "request_id": placed.order}), "a")
        .await;
    assert_eq!(accepted["type"], "ack", "{accepted}");
    assert_eq!(order_row(&app, placed.order).await.1, Some(late.unit));
}

const SECRET: &[u8] = b"test-secret-0123456789abcdef0123456789abcdef";

pub(crate) fn share_token(order: i64, exp: u64) -> String {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = json!({"sub": format!("order:{order}"), "iss": "onemedi", "aud": "onemedi-api-track", "iat": now, "exp": exp});
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

#[actix_web::test]
async fn a_share_link_tracks_without_login_until_it_expires_and_strangers_get_nothing() {
    let app = spawn_app().await;
    let placed = confirmed_order(&app).await;
    let stranger = customer(&app).await;
    let path = format!("/api/v1/orders/{}", placed.order);
    assert_eq!(
        app.get(&path, Some(&stranger.token)).await.status,
        StatusCode::NOT_FOUND
    );
    let share = format!("{path}/share");
    let foreign = app.post(&share, &json!({}), Some(&stranger.token)).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    for hours in [
        json!(0),
        json!(49),
        json!(9_223_372_036_854_775_808_u64),
        json!("2"),
    ] {
        let reply = app
            .post(&share, &json!({"hours": hours}), Some(&placed.customer))
            .await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::BAD_REQUEST, "validation_failed")
        );
    }

    let link = app
        .post(&share, &json!({"hours": 2}), Some(&placed.customer))
        .await;
    assert_eq!(link.status, StatusCode::CREATED, "{}", link.body);
    let token = link.body["token"].as_str().unwrap().to_owned();
    assert_eq!(link.body["url"], format!("/track/{token}"));
    let tracked = app.get(&format!("/api/v1/track/{token}"), None).await;
    assert_eq!(tracked.status, StatusCode::OK, "{}", tracked.body);
    assert_eq!(tracked.body["order_id"], placed.order);
    assert_eq!(tracked.body["status"], "confirmed");
    assert!(!tracked.body["timeline"].as_array().unwrap().is_empty());
    let text = tracked.body.to_string();
    assert!(
        !text.contains(&placed.code),
        "the code never leaves through a share link"
    );
    assert!(
        !text.contains("MG Road") && !text.contains("Asha"),
        "no address or name: {text}"
    );

    // Tampered, misused and expired links are refused.
    let mut tampered = token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let refused = app.get(&format!("/api/v1/track/{tampered}"), None).await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::UNAUTHORIZED, "share_link_invalid")
    );
    let session = app.get(&format!("/api/v1/track/{}", placed.customer), None).await;
    assert_eq!(session.code(), "share_link_invalid");
    let as_login = app.get("/api/v1/auth/me", Some(&token)).await;
    assert_eq!(as_login.status, StatusCode::UNAUTHORIZED);
    let expired = share_token(placed.order, jsonwebtoken::get_current_timestamp() - 5);
    let refused = app.get(&format!("/api/v1/track/{expired}"), None).await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::UNAUTHORIZED, "share_link_expired")
    );
    // The same signer with a live expiry works: only the expiry made the difference.
    let live = share_token(placed.order, jsonwebtoken::get_current_timestamp() + 60);
    assert_eq!(
        app.get(&format!("/api/v1/track/{live}"), None).await.status,
        StatusCode::OK
    );
}

#[actix_web::test]
async fn after_a_reload_a_rider_reads_the_open_delivery_offer_and_then_the_delivery_being_made() {
    let app = spawn_app().await;
    let placed = confirmed_order(&app).await;
    let mut near = rider(&app, "BLR-RDR-F1", NEAR).await;
    let far = rider(&app, "BLR-RDR-F2", (12.9900, 77.6300)).await;
    let number = app
        .get(
            &format!("/api/v1/orders/{}", placed.order),
            Some(&placed.customer),
        )
        .await
        .body["order_number"]
        .clone();
    assert!(number.is_string());
    assert_eq!(
        set_status(&app, &placed, "packed", &placed.staff).await.status,
        StatusCode::OK
    );
    let offer = next_offer(&mut near.ws).await;

    let mine = app.get("/api/v1/emergency/my-unit", Some(&near.token)).await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
    let open = &mine.body["open_offer"];
    assert_eq!(
        open["request"],
        json!({"kind": "order", "id": placed.order}),
        "{open}"
    );
    assert_eq!(open["order_number"], number);
    assert!(open["expires_in_s"].as_f64().unwrap() > 0.0, "{open}");
    // Measured like the offer: from the rider's position to the delivery address.
    let (told, read) = (
        offer["distance_m"].as_f64().unwrap(),
        open["distance_m"].as_f64().unwrap(),
    );
    assert!((told - read).abs() < 1.0, "{offer} {open}");
    assert!(open["eta_s"].as_f64().unwrap() > 0.0, "{open}");
    assert!(mine.body["current_job"].is_null());
    let other = app.get("/api/v1/emergency/my-unit", Some(&far.token)).await;
    assert!(other.body["open_offer"].is_null(), "{}", other.body);

    let accepted = near
        .ws
        .command(json!({"type": "accept", "request_id": placed.order}), "a")
        .await;
    assert_eq!(accepted["type"], "ack", "{accepted}");
    let mine = app.get("/api/v1/emergency/my-unit", Some(&near.token)).await;
    assert!(mine.body["open_offer"].is_null(), "{}", mine.body);
    assert_eq!(
        mine.body["current_job"],
        json!({"kind": "order", "id": placed.order, "status": "packed"})
    );
    assert_eq!(
        set_status(&app, &placed, "shipped", &near.token).await.status,
        StatusCode::OK
    );
    let mine = app.get("/api/v1/emergency/my-unit", Some(&near.token)).await;
    assert_eq!(mine.body["current_job"]["status"], "shipped", "{}", mine.body);
    assert_eq!(
        set_status(&app, &placed, "out_for_delivery", &near.token)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        deliver(&app, &placed, &placed.code, &near.token).await.status,
        StatusCode::OK
    );
    let mine = app.get("/api/v1/emergency/my-unit", Some(&near.token)).await;
    assert!(mine.body["current_job"].is_null(), "{}", mine.body);
}
