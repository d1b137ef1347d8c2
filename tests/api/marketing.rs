//! Marketing: live banners and offers (window, activity, placement), staff-only CRUD with validation
//! that changes nothing on bad input, campaigns sent exactly once to their segment (racing sends across
//! two nodes, rate limit), and the notifications inbox pushed live on `user:{id}`, owner-only.

use futures_util::future::join_all;
use onemedi::domain::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, spawn_app, spawn_second_node},
    shop::{Customer, customer},
    ws_client::{Client, eventually},
};

fn at(offset_hours: i64) -> String {
    (onemedi::db::now() + chrono::TimeDelta::hours(offset_hours))
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

async fn create(app: &TestApp, path: &str, body: Value, token: &str) -> Value {
    let reply = app.post(path, &body, Some(token)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body
}

fn titles(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|b| b["title"].as_str().unwrap().to_owned())
        .collect()
}

#[actix_web::test]
async fn only_live_banners_and_offers_are_shown_and_only_staff_edit_them() {
    let app = spawn_app().await;
    let (staff, _) = app.user_with_role(Role::Staff).await;
    let banner = |title: &str, extra: Value| {
        let mut body = json!({"title": title, "image_url": "/assets/banners/monsoon.png"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    create(
        &app,
        "/api/v1/admin/banners",
        banner("Second", json!({"sort_order": 2})),
        &staff,
    )
    .await;
    create(
        &app,
        "/api/v1/admin/banners",
        banner(
            "First",
            json!({"sort_order": 1, "link_url": "https://onemedi.in/offers"}),
        ),
        &staff,
    )
    .await;
    create(
        &app,
        "/api/v1/admin/banners",
        banner("Later", json!({"starts_at": at(24)})),
        &staff,
    )
    .await;
    create(
        &app,
        "/api/v1/admin/banners",
        banner("Over", json!({"starts_at": at(-48), "ends_at": at(-24)})),
        &staff,
    )
    .await;
    let off = create(&app, "/api/v1/admin/banners", banner("Off", json!({})), &staff).await;
    create(
        &app,
        "/api/v1/admin/banners",
        banner("Lab", json!({"placement": "lab_tests"})),
        &staff,
    )
    .await;
    let mut body = banner("Off", json!({}));
    body["is_active"] = json!(false);
    let reply = app
        .put(
            &format!("/api/v1/admin/banners/{}", off["id"]),
            &body,
            Some(&staff),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);

    let live = app.get("/api/v1/banners?placement=home_hero", None).await;
    assert_eq!(live.status, StatusCode::OK, "{}", live.body);
    assert_eq!(titles(&live.body), ["First", "Second"]);
    assert_eq!(
        titles(&app.get("/api/v1/banners?placement=lab_tests", None).await.body),
        ["Lab"]
    );
    let reply = app.get("/api/v1/banners?placement=nowhere", None).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::BAD_REQUEST, "validation_failed")
    );

    // Bad input: every problem named, nothing written.
    let reply = app
        .post(
            "/api/v1/admin/banners",
            &json!({"title": " ", "image_url": "javascript:alert(1)", "placement": "moon",
                "starts_at": at(2), "ends_at": at(1)}),
            Some(&staff),
        )
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::BAD_REQUEST, "validation_failed")
    );
    for field in ["title", "image_url", "placement", "ends_at"] {
        assert!(
            reply.body["error"]["details"][field].is_string(),
            "{field}: {}",
            reply.body
        );
    }
    let all = app.get("/api/v1/admin/banners?per_page=50", Some(&staff)).await;
    assert_eq!(all.body["total"], 6);

    // Customers read, never write.
    let shopper = customer(&app).await;
    let reply = app
        .post(
            "/api/v1/admin/banners",
            &banner("Mine", json!({})),
            Some(&shopper.token),
        )
        .await;
    assert_eq!((reply.status, reply.code()), (StatusCode::FORBIDDEN, "forbidden"));
    let reply = app.get("/api/v1/admin/offers", Some(&shopper.token)).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);

    // Offers: the service filter includes offers for everything; an unknown coupon is refused.
    create(
        &app,
        "/api/v1/admin/offers",
        json!({"title": "Lab week", "description": "20% off blood tests", "applies_to": "lab_tests"}),
        &staff,
    )
    .await;
    create(
        &app,
        "/api/v1/admin/offers",
        json!({"title": "Everything", "description": "Free delivery", "badge": "NEW"}),
        &staff,
    )
    .await;
    create(
        &app,
        "/api/v1/admin/offers",
        json!({"title": "Pills", "description": "Medicines", "applies_to": "medicines"}),
        &staff,
    )
    .await;
    let lab = app.get("/api/v1/offers?applies_to=lab_tests", None).await;
    let mut seen = titles(&lab.body);
    seen.sort();
    assert_eq!(seen, ["Everything", "Lab week"]);
    assert_eq!(titles(&app.get("/api/v1/offers", None).await.body).len(), 3);
    let reply = app
        .post(
            "/api/v1/admin/offers",
            &json!({"title": "Ghost", "description": "x", "coupon_id": 999_999}),
            Some(&staff),
        )
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::BAD_REQUEST, "validation_failed")
    );
    assert!(reply.body["error"]["details"]["coupon_id"].is_string());
    assert_eq!(
        app.get("/api/v1/admin/offers", Some(&staff)).await.body["total"],
        3
    );
}

/// A customer with a second saved address in `city`.
async fn customer_in(app: &TestApp, city: &str) -> Customer {
    let who = customer(app).await;
    let reply = app
        .post(
            "/api/v1/users/addresses",
            &json!({"label": "Work", "line1": "4 FC Road", "city": city, "state": "Maharashtra",
                "pincode": "411004", "lat": 18.52, "lng": 73.85}),
            Some(&who.token),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    who
}

async fn inbox(app: &TestApp, who: &str) -> Value {
    let reply = app.get("/api/v1/notifications", Some(who)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

#[actix_web::test]
async fn a_campaign_reaches_its_segment_once_however_many_sends_race_and_arrives_live() {
    let a = spawn_app().await;
    let b = spawn_second_node(&a).await;
    let (staff, _) = a.user_with_role(Role::Staff).await;
    let pune_1 = customer_in(&a, "Pune").await;
    let pune_2 = customer_in(&a, "Pune").await;
    let bengaluru = customer(&a).await;
    let (doctor, _) = a.user_with_role(Role::Doctor).await;

    // Pune customer 1 listens on their own topic on both nodes.
    let topic = format!("user:{}", pune_1.id);
    let mut listeners = Vec::new();
    for node in [&a, &b] {
        let mut live = Client::open(node, &pune_1.token).await;
        assert_eq!(live.subscribe(&topic).await["type"], "ack");
        listeners.push(live);
    }

    let campaign = create(
        &a,
        "/api/v1/admin/campaigns",
        json!({"name": "Monsoon", "title": "Stay healthy this monsoon", "body": "Flu tests at home from ₹499",
            "audience": {"roles": ["customer"], "cities": ["Pune"]}}),
        &staff,
    )
    .await;
    assert_eq!(campaign["status"], "draft");
    let send = format!("/api/v1/admin/campaigns/{}/send", campaign["id"]);
    let empty = json!({});
    let replies = join_all([&a, &b, &a].map(|node| node.post(&send, &empty, Some(&staff)))).await;
    let winner = replies
        .iter()
        .position(|r| r.status == StatusCode::OK)
        .map(|i| i % 2);
    let sent: Vec<_> = replies.iter().filter(|r| r.status == StatusCode::OK).collect();
    assert_eq!(
        sent.len(),
        1,
        "{:?}",
        replies.iter().map(|r| r.body.clone()).collect::<Vec<_>>()
    );
    assert_eq!(sent[0].body["status"], "sent");
    assert_eq!(sent[0].body["sent_count"], 2);
    for lost in replies.iter().filter(|r| r.status != StatusCode::OK) {
        assert_eq!(
            (lost.status, lost.code()),
            (StatusCode::CONFLICT, "invalid_transition")
        );
    }

    // Pushed live: on the node that sent it, and with Redis across to the other node too.
    let mut hearing = vec![winner.unwrap()];
    if crate::helpers::redis_url().is_some() {
        hearing.push(1 - winner.unwrap());
    }
    for node in hearing {
        let event = loop {
            let frame = listeners[node].next().await;
            if frame["type"] == "event" && frame["event"]["type"] == "notification" {
                break frame;
            }
        };
        assert_eq!(event["topic"], topic);
        assert_eq!(event["event"]["title"], "Stay healthy this monsoon");
        assert_eq!(event["event"]["data"]["campaign_id"], campaign["id"]);
    }

    // In the inboxes of the segment only.
    for who in [&pune_1, &pune_2] {
        let mine = inbox(&a, &who.token).await;
        assert_eq!(
            (mine["total"].as_i64(), mine["unread"].as_i64()),
            (Some(1), Some(1)),
            "{mine}"
        );
        assert_eq!(mine["items"][0]["kind"], "campaign");
    }
    assert_eq!(inbox(&b, &bengaluru.token).await["total"], 0);
    assert_eq!(inbox(&b, &doctor).await["total"], 0);

    // Reading: own only; read-all marks the rest.
    let id = inbox(&a, &pune_1.token).await["items"][0]["id"].as_i64().unwrap();
    let reply = b
        .post(
            &format!("/api/v1/notifications/{id}/read"),
            &json!({}),
            Some(&pune_2.token),
        )
        .await;
    assert_eq!((reply.status, reply.code()), (StatusCode::NOT_FOUND, "not_found"));
    let reply = b
        .post(
            &format!("/api/v1/notifications/{id}/read"),
            &json!({}),
            Some(&pune_1.token),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.body["read_at"].is_string());
    assert_eq!(inbox(&a, &pune_1.token).await["unread"], 0);
    let unread = a
        .get("/api/v1/notifications?unread_only=true", Some(&pune_2.token))
        .await;
    assert_eq!(unread.body["items"].as_array().unwrap().len(), 1);
    let reply = a
        .post("/api/v1/notifications/read-all", &json!({}), Some(&pune_2.token))
        .await;
    assert_eq!(reply.body["marked"], 1);
    assert_eq!(inbox(&a, &pune_2.token).await["unread"], 0);
}

#[actix_web::test]
async fn campaign_sends_are_rate_limited_and_bad_campaigns_are_refused() {
    let app = spawn_app().await;
    let (staff, _) = app.user_with_role(Role::Staff).await;
    let shopper = customer(&app).await;
    let reply = app
        .post(
            "/api/v1/admin/campaigns",
            &json!({"name": "x", "title": "t", "body": "b", "channel": "sms",
                "audience": {"roles": ["wizard"], "cities": [""]}}),
            Some(&staff),
        )
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::BAD_REQUEST, "validation_failed")
    );
    for field in ["channel", "audience.roles", "audience.cities"] {
        assert!(
            reply.body["error"]["details"][field].is_string(),
            "{field}: {}",
            reply.body
        );
    }
    let reply = app
        .post(
            "/api/v1/admin/campaigns",
            &json!({"name": "n", "title": "t", "body": "b"}),
            Some(&shopper.token),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.get("/api/v1/admin/campaigns", Some(&staff)).await.body["total"],
        0
    );

    let mut ids = Vec::new();
    for n in 0..4 {
        let campaign = create(
            &app,
            "/api/v1/admin/campaigns",
            json!({"name": format!("Wave {n}"), "title": "Hello", "body": "News"}),
            &staff,
        )
        .await;
        ids.push(campaign["id"].as_i64().unwrap());
    }
    for id in &ids[..3] {
        let reply = app
            .post(
                &format!("/api/v1/admin/campaigns/{id}/send"),
                &json!({}),
                Some(&staff),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    let reply = app
        .post(
            &format!("/api/v1/admin/campaigns/{}/send", ids[3]),
            &json!({}),
            Some(&staff),
        )
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    let retry_after: u64 = reply.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let list = app.get("/api/v1/admin/campaigns", Some(&staff)).await;
    let fourth = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == ids[3])
        .unwrap()
        .clone();
    assert_eq!(fourth["status"], "draft", "a refused send changes nothing");
    // Everyone (no segment) got the three sent waves: the staff member and the customer.
    assert_eq!(inbox(&app, &shopper.token).await["total"], 3);
}

#[actix_web::test]
async fn order_updates_land_in_the_customers_inbox() {
    let app = spawn_app().await;
    let (staff, pain) = crate::shop::shop(&app).await;
    let med = crate::shop::medicine(
        &app,
        &staff,
        pain,
        json!({"price_paise": 10_000, "mrp_paise": 11_000}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let who = customer(&app).await;
    crate::shop::add_to_cart(&app, &who, med, 1).await;
    let reply = app
        .post(
            "/api/v1/orders",
            &json!({"address_id": who.address_id, "payment_method": "cod"}),
            Some(&who.token),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let order = reply.body["id"].as_i64().unwrap();
    let number = reply.body["order_number"].as_str().unwrap().to_owned();
    eventually(async || inbox(&app, &who.token).await["total"] == 1).await;
    let mine = inbox(&app, &who.token).await;
    assert_eq!(mine["items"][0]["kind"], "order");
    assert_eq!(mine["items"][0]["title"], format!("Order {number} is confirmed"));
    assert_eq!(
        serde_json::from_str::<Value>(mine["items"][0]["data"].as_str().unwrap()).unwrap()["order_id"],
        order
    );
    let reply = app
        .post(
            &format!("/api/v1/orders/{order}/cancel"),
            &json!({}),
            Some(&who.token),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    eventually(async || inbox(&app, &who.token).await["total"] == 2).await;
    assert_eq!(
        inbox(&app, &who.token).await["items"][0]["title"],
        format!("Order {number} is cancelled")
    );
}
