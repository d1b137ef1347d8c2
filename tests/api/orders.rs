//! Checkout and orders: totals, stock claimed exactly under races, coupon limits, prescriptions, status
//! transitions, cancellation, ownership and idempotent retries.

use futures_util::future::join_all;
use onemedi::domain::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::{
    helpers::{TestApp, into_reply, spawn_app},
    shop::{
        Customer, add_to_cart, coupon, coupon_uses, customer, medicine, order_body, prescription, shop, stock,
    },
};

async fn place(app: &TestApp, who: &Customer, coupon: Option<&str>) -> crate::helpers::Reply {
    app.post("/api/v1/orders", &order_body(who, coupon), Some(&who.token))
        .await
}

#[actix_web::test]
async fn checkout_turns_the_cart_into_an_order_with_integer_totals() {
    let app = spawn_app().await;
    let (staff, pain) = shop(&app).await;
    let a = medicine(
        &app,
        &staff,
        pain,
        json!({"name": "Crocin", "price_paise": 12_345, "mrp_paise": 13_000,
        "gst_rate_percent": 12, "stock": 10}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let b = medicine(
        &app,
        &staff,
        pain,
        json!({"name": "ORS", "price_paise": 1_000, "mrp_paise": 1_000,
        "gst_rate_percent": 5, "stock": 10}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let asha = customer(&app).await;
    add_to_cart(&app, &asha, a, 1).await;
    add_to_cart(&app, &asha, b, 3).await;

    let reply = place(&app, &asha, None).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let order = &reply.body;
    assert_eq!(order["status"], "pending");
    assert_eq!(order["subtotal_paise"], 15_345);
    assert_eq!(order["tax_paise"], 1_481 + 150, "GST per line, rounded half up");
    assert_eq!(
        order["delivery_paise"], 4_900,
        "below the free-delivery threshold"
    );
    assert_eq!(order["total_paise"], 15_345 + 1_631 + 4_900);
    assert_eq!(order["shipping"]["city"], "Bengaluru");
    assert_eq!(order["shipping"]["pincode"], "560001");
    assert_eq!(order["items"].as_array().unwrap().len(), 2);
    assert_eq!(order["items"][1]["line_total_paise"], 3_000);
    assert_eq!(order["timeline"][0]["to_status"], "pending");
    assert_eq!(order["timeline"][0]["actor_user_id"], asha.id);
    assert_eq!((stock(&app, a).await, stock(&app, b).await), (9, 7));
    let cart = app.get("/api/v1/cart", Some(&asha.token)).await;
    assert!(
        cart.body["items"].as_array().unwrap().is_empty(),
        "the cart is emptied"
    );

    let list = app.get("/api/v1/orders", Some(&asha.token)).await;
    assert_eq!(list.body["total"], 1);
    assert_eq!(list.body["items"][0]["id"], order["id"]);
    let again = place(&app, &asha, None).await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "cart_empty")
    );
}

#[actix_web::test]
async fn checkout_input_is_validated() {
    let app = spawn_app().await;
    let (staff, pain) = shop(&app).await;
    let id = medicine(&app, &staff, pain, json!({})).await["id"]
        .as_i64()
        .unwrap();
    let asha = customer(&app).await;
    let ravi = customer(&app).await;
    add_to_cart(&app, &asha, id, 1).await;
    let reply = app
        .post(
            "/api/v1/orders",
            &json!({"address_id": asha.address_id, "payment_method": "cash"}),
            Some(&asha.token),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let reply = app
        .post(
            "/api/v1/orders",
            &json!({"address_id": ravi.address_id, "payment_method": "cod"}),
            Some(&asha.token),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "another customer's address: {}",
        reply.body
    );
    assert!(reply.body["error"]["details"]["address_id"].is_string());
    let reply = place(&app, &asha, Some("NOPE")).await;
    assert_eq!(reply.code(), "coupon_invalid");
    assert_eq!(stock(&app, id).await, 100, "refusals write nothing");
    assert_eq!(
        app.get("/api/v1/cart", Some(&asha.token)).await.body["item_count"],
        1
    );
}

#[actix_web::test]
async fn out_of_stock_on_one_line_rolls_back_the_whole_order() {
    let app = spawn_app().await;
    let (staff, pain) = shop(&app).await;
    let plenty = medicine(&app, &staff, pain, json!({"name": "Plenty", "stock": 10})).await["id"]
        .as_i64()
        .unwrap();
    let scarce = medicine(&app, &staff, pain, json!({"name": "Scarce", "stock": 5})).await["id"]
        .as_i64()
        .unwrap();
    let asha = customer(&app).await;
    add_to_cart(&app, &asha, plenty, 2).await;
    add_to_cart(&app, &asha, scarce, 3).await;
    app.put(
        &format!("/api/v1/admin/medicines/{scarce}"),
        &json!({"stock_delta": -3}),
        Some(&staff),
    )
    .await;
    let reply = place(&app, &asha, None).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::CONFLICT, "out_of_stock"),
        "{}",
        reply.body
    );
    assert_eq!(reply.body["error"]["details"]["medicine_id"], scarce);
    assert_eq!(reply.body["error"]["details"]["name"], "Scarce");
    assert_eq!((stock(&app, plenty).await, stock(&app, scarce).await), (10, 2));
    assert_eq!(
        app.get("/api/v1/cart", Some(&asha.token)).await.body["item_count"],
        5,
        "the cart is kept"
    );
    assert_eq!(
        app.get("/api/v1/orders", Some(&asha.token)).await.body["total"],
        0
    );
}

#[actix_web::test]
async fn fifty_customers_race_for_five_units_and_exactly_five_win() {
    let app = spawn_app().await;
    let (staff, pain) = shop(&app).await;
    let id = medicine(&app, &staff, pain, json!({"stock": 5})).await["id"]
        .as_i64()
        .unwrap();
    let mut customers = Vec::new();
    for _ in 0..50 {
        let c = customer(&app).await;
        add_to_cart(&app, &c, id, 1).await;
        customers.push(c);
    }
    let replies = join_all(customers.iter().map(|c| place(&app, c, None))).await;
    let won = replies.iter().filter(|r| r.status == StatusCode::CREATED).count();
    let sold_out = replies
        .iter()
        .filter(|r| r.status == StatusCode::CONFLICT && r.code() == "out_of_stock")
        .count();
    let other: Vec<_> = replies
        .iter()
        .filter(|r| r.status != StatusCode::CREATED && r.code() != "out_of_stock")
        .map(|r| r.body.to_string())
        .collect();
    assert!(other.is_empty(), "unexpected answers: {other:?}");
    assert_eq!((won, sold_out), (5, 45));
    assert_eq!(stock(&app, id).await, 0);
}

#[actix_web::test]
async fn a_coupon_with_three_uses_is_redeemed_exactly_three_times_under_twenty_checkouts() {
    let app = spawn_app().await;
    let (staff, pain) = shop(&app).await;
    let id = medicine(&app, &staff, pain, json!({"stock": 1000})).await["id"]
        .as_i64()
        .unwrap();
    coupon(&app, "THREE", "flat", 500, Some(3), None).await;
    let mut customers = Vec::new();
    for _ in 0..20 {
        let c = customer(&app).await;
        add_to_cart(&app, &c, id, 1).await;
        customers.push(c);
    }
    let replies = join_all(customers.iter().map(|c| place(&app, c, Some("THREE")))).await;
    let won: Vec<_> = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .collect();
    let exhausted = replies.iter().filter(|r| r.code() == "coupon_exhausted").count();
    assert_eq!(
        (won.len(), exhausted),
        (3, 17),
        "{:?}",
        replies.iter().map(|r| r.body.to_string()).collect::<Vec<_>>()
    );
    for reply in won {
        assert_eq!(reply.body["discount_paise"], 500);
    }
    assert_eq!(coupon_uses(&app, "THREE").await, 3);
    assert_eq!(
        stock(&app, id).await,
        997,
        "refused checkouts gave their stock back"
    );
}

#[actix_web::test]
async fn a_per_customer_coupon_limit_holds_and_a_cancel_gives_the_use_back() {
    let app = spawn_app().await;
    let (staff, pain) = shop(&app).await;
    let id = medicine(&app, &staff, pain, json!({"stock": 100})).await["id"]
        .as_i64()
        .unwrap();
    coupon(&app, "TWICE", "percent", 10, None, Some(2)).await;
    let asha = customer(&app).await;
    let mut orders = Vec::new();
    for _ in 0..2 {
        add_to_cart(&app, &asha, id, 1).await;
        let reply = place(&app, &asha, Some("twice")).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        assert_eq!(reply.body["discount_paise"], 300);
        orders.push(reply.body["id"].as_i64().unwrap());
    }
    add_to_cart(&app, &asha, id, 1).await;
    let reply = place(&app, &asha, Some("TWICE")).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::CONFLICT, "coupon_exhausted")
    );
    let preview = app
        .post(
            "/api/v1/cart/coupon/preview",
            &json!({"code": "TWICE"}),
            Some(&asha.token),
        )
        .await;
    assert_eq!(preview.code(), "coupon_exhausted");

    let ravi = customer(&app).await;
    add_to_cart(&app, &ravi, id, 1).await;
    assert_eq!(
        place(&app, &ravi, Some("TWICE")).await.status,
        StatusCode::CREATED,
        "the limit is per customer"
    );

    let reply = app
        .post(
            &format!("/api/v1/orders/{}/cancel", orders[0]),
            &json!({}),
            Some(&asha.token),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(coupon_uses(&app, "TWICE").await, 2);
    assert_eq!(
        place(&app, &asha, Some("TWICE")).await.status,
        StatusCode::CREATED,
        "the use came back"
    );
    assert_eq!(coupon_uses(&app, "TWICE").await, 3);
}

#[actix_web::test]
async fn a_prescription_medicine_needs_an_approved_prescription() {
    let app = spawn_app().await;
    let (staff, pain) = shop(&app).await;
    let rx = medicine(
        &app,
        &staff,
        pain,
        json!({"name": "Telma 40", "prescription_required": true, "stock": 10}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    let asha = customer(&app).await;
    add_to_cart(&app, &asha, rx, 1).await;
    let reply = place(&app, &asha, None).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "prescription_required")
    );
    assert_eq!(reply.body["error"]["details"]["medicines"][0], "Telma 40");
    assert_eq!(stock(&app, rx).await, 10);
    prescription(&app, asha.id, "pending").await;
    assert_eq!(
        place(&app, &asha, None).await.code(),
        "prescription_required",
        "pending is not approved"
    );
    let ravi = customer(&app).await;
    prescription(&app, ravi.id, "approved").await;
    assert_eq!(
        place(&app, &asha, None).await.code(),
        "prescription_required",
        "another customer's does not count"
    );
    prescription(&app, asha.id, "approved").await;
    let reply = place(&app, &asha, None).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert!(reply.body["prescription_id"].is_i64());
}

#[actix_web::test]
async fn staff_walk_an_order_through_its_states_and_illegal_moves_change_nothing() {
    let app = spawn_app().await;
    let (staff, pain) = shop(&app).await;
    let id = medicine(&app, &staff, pain, json!({"stock": 10})).await["id"]
        .as_i64()
        .unwrap();
    let asha = customer(&app).await;
    add_to_cart(&app, &asha, id, 2).await;
    let order = place(&app, &asha, None).await.body["id"].as_i64().unwrap();
    let status_path = format!("/api/v1/orders/{order}/status");
    let set = async |status: &str, token: &str| {
        app.put(&status_path, &json!({"status": status}), Some(token))
            .await
    };

    assert_eq!(set("confirmed", &asha.token).await.status, StatusCode::FORBIDDEN);
    for illegal in ["packed", "delivered", "pending"] {
        let reply = set(illegal, &staff).await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::CONFLICT, "invalid_transition"),
            "{illegal}"
        );
    }
    assert_eq!(set("lost", &staff).await.status, StatusCode::BAD_REQUEST);
    let unchanged = app
        .get(&format!("/api/v1/orders/{order}"), Some(&asha.token))
        .await;
    assert_eq!(
        (
            unchanged.body["status"].as_str(),
            unchanged.body["version"].as_i64()
        ),
        (Some("pending"), Some(1))
    );
    assert_eq!(unchanged.body["timeline"].as_array().unwrap().len(), 1);

    for next in ["confirmed", "packed"] {
        let reply = set(next, &staff).await;
        assert_eq!(reply.status, StatusCode::OK, "{next}: {}", reply.body);
        assert_eq!(reply.body["status"], next);
    }
    let reply = app
        .post(
            &format!("/api/v1/orders/{order}/cancel"),
            &json!({}),
            Some(&asha.token),
        )
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::CONFLICT, "invalid_transition"),
        "packed: too late for the customer"
    );
    for next in ["shipped", "out_for_delivery", "delivered"] {
        assert_eq!(set(next, &staff).await.status, StatusCode::OK, "{next}");
    }
    assert_eq!(set("cancelled", &staff).await.code(), "invalid_transition");
    let done = app.get(&format!("/api/v1/orders/{order}"), Some(&staff)).await;
    assert_eq!(done.body["status"], "delivered");
    assert!(done.body["delivered_at"].is_string());
    let timeline: Vec<_> = done.body["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["to_status"].as_str().unwrap())
        .collect();
    assert_eq!(
        timeline,
        [
            "pending",
            "confirmed",
            "packed",
            "shipped",
            "out_for_delivery",
            "delivered"
        ]
    );
    assert!(done.body["timeline"][1]["at"].is_string());
    assert_eq!(stock(&app, id).await, 8);
}

#[actix_web::test]
async fn racing_cancels_restore_stock_exactly_once() {
    let app = spawn_app().await;
    let (staff, pain) = shop(&app).await;
    let id = medicine(&app, &staff, pain, json!({"stock": 10})).await["id"]
        .as_i64()
        .unwrap();
    coupon(&app, "ONCE", "flat", 100, Some(5), None).await;
    let asha = customer(&app).await;
    add_to_cart(&app, &asha, id, 3).await;
    let order = place(&app, &asha, Some("ONCE")).await.body["id"]
        .as_i64()
        .unwrap();
    assert_eq!(stock(&app, id).await, 7);

    let cancel_path = format!("/api/v1/orders/{order}/cancel");
    let status_path = format!("/api/v1/orders/{order}/status");
    let empty = json!({});
    let staff_cancel = json!({"status": "cancelled", "reason": "duplicate"});
    let (mut replies, by_staff) = futures_util::future::join(
        join_all((0..4).map(|_| app.post(&cancel_path, &empty, Some(&asha.token)))),
        join_all((0..4).map(|_| app.put(&status_path, &staff_cancel, Some(&staff)))),
    )
    .await;
    replies.extend(by_staff);
    let ok = replies.iter().filter(|r| r.status == StatusCode::OK).count();
    assert_eq!(
        ok,
        1,
        "{:?}",
        replies.iter().map(|r| r.body.to_string()).collect::<Vec<_>>()
    );
    for reply in replies.iter().filter(|r| r.status != StatusCode::OK) {
        assert_eq!(reply.status, StatusCode::CONFLICT);
        assert!(
            matches!(reply.code(), "conflict" | "invalid_transition"),
            "{}",
            reply.body
        );
    }
    assert_eq!(stock(&app, id).await, 10);
    assert_eq!(coupon_uses(&app, "ONCE").await, 0);
    let cancelled = app
        .get(&format!("/api/v1/orders/{order}"), Some(&asha.token))
        .await;
    assert_eq!(cancelled.body["status"], "cancelled");
    assert_eq!(cancelled.body["timeline"].as_array().unwrap().len(), 2);
}

#[actix_web::test]
async fn a_customer_cannot_see_or_cancel_another_customers_order() {
    let app = spawn_app().await;
    let (staff, pain) = shop(&app).await;
    let id = medicine(&app, &staff, pain, json!({})).await["id"]
        .as_i64()
        .unwrap();
    let asha = customer(&app).await;
    let ravi = customer(&app).await;
    add_to_cart(&app, &asha, id, 1).await;
    let order = place(&app, &asha, None).await.body["id"].as_i64().unwrap();
    let path = format!("/api/v1/orders/{order}");
    assert_eq!(
        app.get(&path, Some(&ravi.token)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.post(&format!("{path}/cancel"), &json!({}), Some(&ravi.token))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/v1/orders", Some(&ravi.token)).await.body["total"],
        0
    );
    assert_eq!(app.get(&path, Some(&asha.token)).await.status, StatusCode::OK);
    let (admin, _) = app.user_with_role(Role::Admin).await;
    assert_eq!(
        app.get(&path, Some(&admin)).await.status,
        StatusCode::OK,
        "staff and admins see any order"
    );
    assert_eq!(
        app.get("/api/v1/orders/999999", Some(&asha.token)).await.status,
        StatusCode::NOT_FOUND
    );
}

#[actix_web::test]
async fn a_retried_checkout_with_the_same_idempotency_key_creates_one_order() {
    let app = spawn_app().await;
    let (staff, pain) = shop(&app).await;
    let id = medicine(&app, &staff, pain, json!({"stock": 10})).await["id"]
        .as_i64()
        .unwrap();
    let asha = customer(&app).await;
    add_to_cart(&app, &asha, id, 2).await;
    let send = async || {
        into_reply(
            app.client
                .post(app.url("/api/v1/orders"))
                .bearer_auth(&asha.token)
                .header("Idempotency-Key", "checkout-7f3a")
                .json(&order_body(&asha, None))
                .send()
                .await
                .unwrap(),
        )
        .await
    };
    let first = send().await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let retry = send().await;
    assert_eq!(retry.status, StatusCode::CREATED);
    assert_eq!(
        retry.body["id"], first.body["id"],
        "the stored answer is replayed"
    );
    assert_eq!(
        app.get("/api/v1/orders", Some(&asha.token)).await.body["total"],
        1
    );
    assert_eq!(stock(&app, id).await, 8);
}

/// A second server process, killed when the test ends.
struct SecondNode(std::process::Child);

impl Drop for SecondNode {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the real binary against the same PostgreSQL database (and Redis) as `app`; returns its base URL.
async fn second_node(app: &TestApp, data_dir: &std::path::Path) -> (SecondNode, String) {
    use secrecy::ExposeSecret;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let settings = &app.app.settings;
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_onemedi"))
        .args(["serve", "--bind", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(data_dir)
        .env("ONEMEDI_ENV", "test")
        .env(
            "ONEMEDI_CONFIG_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config"),
        )
        .env("DATABASE_URL", settings.database.url.expose_secret())
        .env("REDIS_URL", settings.redis.url.expose_secret())
        .env("ONEMEDI__REDIS__KEY_PREFIX", &settings.redis.key_prefix)
        .env(
            "ONEMEDI__AUTH__JWT_SECRET",
            settings.auth.jwt_secret.expose_secret(),
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let node = SecondNode(child);
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        if let Ok(reply) = app.client.get(format!("{base}/ready")).send().await
            && reply.status() == StatusCode::OK
        {
            return (node, base);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the second node did not become ready");
}

/// PostgreSQL only (SQLite is one process): two server processes sell the same five units.
#[actix_web::test]
async fn two_server_processes_sell_five_units_to_fifty_customers_exactly_once() {
    if crate::helpers::postgres_url().is_none() {
        return;
    }
    let app = spawn_app().await;
    let node_dir = tempfile::tempdir().unwrap();
    let (_node, other) = second_node(&app, node_dir.path()).await;
    let (staff, pain) = shop(&app).await;
    let id = medicine(&app, &staff, pain, json!({"stock": 5})).await["id"]
        .as_i64()
        .unwrap();
    let mut customers = Vec::new();
    for _ in 0..50 {
        let c = customer(&app).await;
        add_to_cart(&app, &c, id, 1).await;
        customers.push(c);
    }
    let client = &app.client;
    let replies = join_all(customers.iter().enumerate().map(|(i, c)| {
        let base = if i % 2 == 0 {
            app.address.clone()
        } else {
            other.clone()
        };
        async move {
            into_reply(
                client
                    .post(format!("{base}/api/v1/orders"))
                    .bearer_auth(&c.token)
                    .json(&order_body(c, None))
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    }))
    .await;
    let won = replies.iter().filter(|r| r.status == StatusCode::CREATED).count();
    let sold_out = replies.iter().filter(|r| r.code() == "out_of_stock").count();
    assert_eq!(
        (won, sold_out),
        (5, 45),
        "{:?}",
        replies.iter().map(|r| r.body.to_string()).collect::<Vec<_>>()
    );
    assert_eq!(stock(&app, id).await, 0);

    // A price change made through one node is visible through the other at once (shared cache generation).
    let path = format!("/api/v1/medicines/{id}");
    let fetch =
        async |base: &str| into_reply(app.client.get(format!("{base}{path}")).send().await.unwrap()).await;
    fetch(&other).await;
    assert_eq!(fetch(&other).await.body["price_paise"], 3000);
    app.put(
        &format!("/api/v1/admin/medicines/{id}"),
        &json!({"price_paise": 2000}),
        Some(&staff),
    )
    .await;
    let expected = if crate::helpers::redis_url().is_some() {
        2000
    } else {
        3000
    };
    assert_eq!(fetch(&other).await.body["price_paise"], expected);
}
