//! The cart: current prices, quantity rules, ownership, and the coupon preview.

use reqwest::StatusCode;
use serde_json::json;

use crate::{
    helpers::spawn_app,
    shop::{add_to_cart, coupon, customer, medicine, shop},
};

#[actix_web::test]
async fn the_cart_adds_up_lines_at_current_prices() {
    let app = spawn_app().await;
    let (staff, pain) = shop(&app).await;
    let a = medicine(&app, &staff, pain, json!({"name": "Crocin", "price_paise": 3000})).await["id"]
        .as_i64()
        .unwrap();
    let b = medicine(&app, &staff, pain, json!({"name": "Brufen", "price_paise": 2500})).await["id"]
        .as_i64()
        .unwrap();
    let asha = customer(&app).await;
    add_to_cart(&app, &asha, a, 2).await;
    add_to_cart(&app, &asha, a, 1).await;
    add_to_cart(&app, &asha, b, 1).await;
    let cart = app.get("/api/v1/cart", Some(&asha.token)).await;
    assert_eq!(cart.status, StatusCode::OK);
    assert_eq!(cart.body["items"][0]["quantity"], 3, "adding again increments");
    assert_eq!(cart.body["items"][0]["line_total_paise"], 9000);
    assert_eq!(cart.body["item_count"], 4);
    assert_eq!(cart.body["subtotal_paise"], 11_500);

    app.put(
        &format!("/api/v1/admin/medicines/{a}"),
        &json!({"price_paise": 2000}),
        Some(&staff),
    )
    .await;
    let cart = app.get("/api/v1/cart", Some(&asha.token)).await;
    assert_eq!(
        cart.body["subtotal_paise"], 8_500,
        "the cart follows the current price"
    );

    let line = cart.body["items"][1]["id"].as_i64().unwrap();
    let reply = app
        .put(
            &format!("/api/v1/cart/items/{line}"),
            &json!({"quantity": 5}),
            Some(&asha.token),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["subtotal_paise"], 6_000 + 12_500);
    let reply = app
        .delete(&format!("/api/v1/cart/items/{line}"), Some(&asha.token))
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/api/v1/cart", Some(&asha.token)).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        app.get("/api/v1/cart", None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[actix_web::test]
async fn cart_quantities_are_checked_against_limits_and_stock() {
    let app = spawn_app().await;
    let (staff, pain) = shop(&app).await;
    let scarce = medicine(&app, &staff, pain, json!({"stock": 3, "max_per_order": 5})).await["id"]
        .as_i64()
        .unwrap();
    let asha = customer(&app).await;
    let add = async |medicine_id: i64, quantity: i64| {
        app.post(
            "/api/v1/cart/items",
            &json!({"medicine_id": medicine_id, "quantity": quantity}),
            Some(&asha.token),
        )
        .await
    };
    for quantity in [0, -1, 101] {
        let reply = add(scarce, quantity).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{quantity}");
        assert!(reply.body["error"]["details"]["quantity"].is_string());
    }
    let reply = add(scarce, 4).await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.body);
    assert_eq!(reply.code(), "out_of_stock");
    assert_eq!(reply.body["error"]["details"]["available"], 3);
    app.put(
        &format!("/api/v1/admin/medicines/{scarce}"),
        &json!({"stock_delta": 47}),
        Some(&staff),
    )
    .await;
    let reply = add(scarce, 6).await;
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "over max_per_order: {}",
        reply.body
    );
    assert_eq!(add(scarce, 3).await.status, StatusCode::CREATED);
    let reply = add(scarce, 3).await;
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "3 + 3 is over max_per_order 5"
    );
    assert_eq!(add(999_999, 1).await.status, StatusCode::NOT_FOUND);
    let reply = app
        .post(
            "/api/v1/cart/items",
            &json!({"medicine_id": scarce}),
            Some(&asha.token),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "missing quantity: {}",
        reply.body
    );

    app.delete(&format!("/api/v1/admin/medicines/{scarce}"), Some(&staff))
        .await;
    let reply = add(scarce, 1).await;
    assert_eq!(
        reply.status,
        StatusCode::NOT_FOUND,
        "an inactive medicine cannot be added"
    );
    let cart = app.get("/api/v1/cart", Some(&asha.token)).await;
    assert_eq!(cart.body["items"][0]["available"], false);
    assert_eq!(cart.body["subtotal_paise"], 0);
}

#[actix_web::test]
async fn another_customers_cart_line_is_not_found() {
    let app = spawn_app().await;
    let (staff, pain) = shop(&app).await;
    let id = medicine(&app, &staff, pain, json!({})).await["id"]
        .as_i64()
        .unwrap();
    let asha = customer(&app).await;
    let ravi = customer(&app).await;
    add_to_cart(&app, &asha, id, 1).await;
    let line = app.get("/api/v1/cart", Some(&asha.token)).await.body["items"][0]["id"]
        .as_i64()
        .unwrap();
    let reply = app
        .put(
            &format!("/api/v1/cart/items/{line}"),
            &json!({"quantity": 2}),
            Some(&ravi.token),
        )
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.delete(&format!("/api/v1/cart/items/{line}"), Some(&ravi.token))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/v1/cart", Some(&asha.token)).await.body["items"][0]["quantity"],
        1
    );
}

#[actix_web::test]
async fn a_coupon_preview_shows_the_discount_on_the_current_cart() {
    let app = spawn_app().await;
    let (staff, pain) = shop(&app).await;
    let id = medicine(
        &app,
        &staff,
        pain,
        json!({"price_paise": 30_000, "mrp_paise": 30_000}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    coupon(&app, "SAVE10", "percent", 10, None, None).await;
    let asha = customer(&app).await;
    let preview = async |code: &str| {
        app.post(
            "/api/v1/cart/coupon/preview",
            &json!({"code": code}),
            Some(&asha.token),
        )
        .await
    };
    assert_eq!(preview("SAVE10").await.code(), "cart_empty");
    add_to_cart(&app, &asha, id, 2).await;
    let reply = preview(" save10 ").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["totals"]["subtotal_paise"], 60_000);
    assert_eq!(reply.body["totals"]["discount_paise"], 6_000);
    let reply = preview("NOPE").await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "coupon_invalid")
    );
    assert_eq!(preview("bad code!").await.status, StatusCode::BAD_REQUEST);
}

#[actix_web::test]
async fn concurrent_adds_of_one_medicine_end_in_one_line() {
    let app = spawn_app().await;
    let (staff, pain) = shop(&app).await;
    let id = medicine(&app, &staff, pain, json!({"max_per_order": 10})).await["id"]
        .as_i64()
        .unwrap();
    let asha = customer(&app).await;
    let body = json!({"medicine_id": id, "quantity": 1});
    let replies = futures_util::future::join_all(
        (0..5).map(|_| app.post("/api/v1/cart/items", &body, Some(&asha.token))),
    )
    .await;
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    }
    let cart = app.get("/api/v1/cart", Some(&asha.token)).await;
    assert_eq!(cart.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(cart.body["items"][0]["quantity"], 5);
}

#[actix_web::test]
async fn concurrent_adds_past_the_per_order_limit_stop_exactly_at_it() {
    let app = spawn_app().await;
    let (staff, pain) = shop(&app).await;
    let id = medicine(&app, &staff, pain, json!({"max_per_order": 6})).await["id"]
        .as_i64()
        .unwrap();
    let asha = customer(&app).await;
    let body = json!({"medicine_id": id, "quantity": 1});
    let replies = futures_util::future::join_all(
        (0..15).map(|_| app.post("/api/v1/cart/items", &body, Some(&asha.token))),
    )
    .await;
    let created = replies.iter().filter(|r| r.status == StatusCode::CREATED).count();
    assert_eq!(created, 6, "one add per unit allowed");
    for reply in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
        assert_eq!(reply.code(), "validation_failed");
    }
    let cart = app.get("/api/v1/cart", Some(&asha.token)).await;
    assert_eq!(cart.body["items"][0]["quantity"], 6);
}

#[actix_web::test]
async fn a_full_cart_refuses_another_medicine_but_still_adds_to_its_lines() {
    let app = spawn_app().await;
    let (staff, pain) = shop(&app).await;
    let asha = customer(&app).await;
    let mut ids = Vec::new();
    for i in 0..51 {
        let name = format!("Cetirizine {i}");
        ids.push(
            medicine(&app, &staff, pain, json!({"name": name})).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    for id in &ids[..50] {
        add_to_cart(&app, &asha, *id, 1).await;
    }
    let reply = app
        .post(
            "/api/v1/cart/items",
            &json!({"medicine_id": ids[50], "quantity": 1}),
            Some(&asha.token),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert!(reply.body["error"]["details"]["medicine_id"].is_string());
    let reply = app
        .post(
            "/api/v1/cart/items",
            &json!({"medicine_id": ids[7], "quantity": 2}),
            Some(&asha.token),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let items = reply.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 50);
    let line = items.iter().find(|l| l["medicine_id"] == ids[7]).unwrap();
    assert_eq!(line["quantity"], 3);
}
