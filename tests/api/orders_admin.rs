//! The back-office order list: every customer's orders, filtered by status, each with only the legal
//! next statuses; staff and administrators only.

use onemedi::domain::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::{
    helpers::spawn_app,
    shop::{add_to_cart, customer, medicine, order_body, shop},
};

#[actix_web::test]
async fn staff_see_every_customers_orders_by_status_with_their_legal_next_steps() {
    let app = spawn_app().await;
    let (staff, pain) = shop(&app).await;
    let (admin, _) = app.user_with_role(Role::Admin).await;
    let pill = medicine(&app, &staff, pain, json!({"stock": 50})).await["id"]
        .as_i64()
        .unwrap();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let who = customer(&app).await;
        add_to_cart(&app, &who, pill, 1).await;
        let placed = app
            .post("/api/v1/orders", &order_body(&who, None), Some(&who.token))
            .await;
        assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.body);
        ids.push(placed.body["id"].as_i64().unwrap());
    }
    for status in ["confirmed", "packed"] {
        let moved = app
            .put(
                &format!("/api/v1/orders/{}/status", ids[0]),
                &json!({"status": status}),
                Some(&staff),
            )
            .await;
        assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    }

    let all = app.get("/api/v1/admin/orders", Some(&admin)).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert_eq!(all.body["total"], 3);
    let listed: Vec<i64> = all.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].as_i64().unwrap())
        .collect();
    assert_eq!(listed, [ids[2], ids[1], ids[0]], "newest first");

    let packed = app.get("/api/v1/admin/orders?status=packed", Some(&staff)).await;
    assert_eq!(packed.body["total"], 1);
    assert_eq!(packed.body["items"][0]["id"], ids[0]);
    assert_eq!(
        packed.body["items"][0]["next_statuses"],
        json!(["shipped", "cancelled"])
    );
    let pending = app
        .get(
            "/api/v1/admin/orders?status=pending&per_page=1&page=2",
            Some(&staff),
        )
        .await;
    assert_eq!(pending.body["total"], 2);
    assert_eq!(pending.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(pending.body["items"][0]["id"], ids[1]);
    assert_eq!(
        pending.body["items"][0]["next_statuses"],
        json!(["confirmed", "cancelled"])
    );

    let someone = customer(&app).await;
    let refused = app.get("/api/v1/admin/orders", Some(&someone.token)).await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    for bad in ["?status=lost", "?per_page=101"] {
        let reply = app.get(&format!("/api/v1/admin/orders{bad}"), Some(&staff)).await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::BAD_REQUEST, "validation_failed"),
            "{bad}"
        );
    }
}
