//! Staff coupon administration: validation, unique codes, audit, and edits that can never set a global
//! limit below the uses already counted; the checkout engine honours every change at once.

use onemedi::domain::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    helpers::spawn_app,
    shop::{add_to_cart, customer, medicine, order_body, shop},
};

fn body(code: Option<&str>) -> Value {
    let mut body = json!({
        "description": "Winter wellness: 10% off medicines",
        "kind": "percent",
        "value": 10,
        "global_limit": 5,
        "per_user_limit": 1,
    });
    if let Some(code) = code {
        body["code"] = json!(code);
    }
    body
}

#[actix_web::test]
async fn staff_manage_coupons_and_checkout_follows_every_change() {
    let app = spawn_app().await;
    let (staff, pain) = shop(&app).await;
    let asha = customer(&app).await;

    let created = app
        .post("/api/v1/admin/coupons", &body(Some("winter10")), Some(&staff))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["code"], "WINTER10");
    assert_eq!(created.body["used_count"], 0);
    let id = created.body["id"].as_i64().unwrap();
    let taken = app
        .post("/api/v1/admin/coupons", &body(Some("WINTER10")), Some(&staff))
        .await;
    assert_eq!(
        (taken.status, taken.code()),
        (StatusCode::CONFLICT, "coupon_code_taken")
    );
    let mut bad = body(Some("BAD1"));
    bad["value"] = json!(150);
    bad["ends_at"] = json!("2000-01-01T00:00:00");
    let refused = app.post("/api/v1/admin/coupons", &bad, Some(&staff)).await;
    assert_eq!(refused.code(), "validation_failed");
    assert!(refused.body["error"]["details"]["value"].is_string());
    assert_eq!(
        app.post("/api/v1/admin/coupons", &body(Some("MINE")), Some(&asha.token))
            .await
            .code(),
        "forbidden"
    );
    let listed = app.get("/api/v1/admin/coupons", Some(&staff)).await;
    assert_eq!(listed.body["total"], 1, "refused writes stored nothing");

    let med = medicine(
        &app,
        &staff,
        pain,
        json!({"price_paise": 50_000, "mrp_paise": 55_000, "stock": 10}),
    )
    .await["id"]
        .as_i64()
        .unwrap();
    add_to_cart(&app, &asha, med, 1).await;
    let placed = app
        .post(
            "/api/v1/orders",
            &order_body(&asha, Some("WINTER10")),
            Some(&asha.token),
        )
        .await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.body);
    assert_eq!(placed.body["discount_paise"], 5_000);

    let path = format!("/api/v1/admin/coupons/{id}");
    let mut lower = body(None);
    lower["global_limit"] = json!(1);
    let at_count = app.put(&path, &lower, Some(&staff)).await;
    assert_eq!(at_count.status, StatusCode::OK, "{}", at_count.body);
    assert_eq!(at_count.body["used_count"], 1);
    let ravi = customer(&app).await;
    add_to_cart(&app, &ravi, med, 1).await;
    let exhausted = app
        .post(
            "/api/v1/orders",
            &order_body(&ravi, Some("WINTER10")),
            Some(&ravi.token),
        )
        .await;
    assert_eq!(exhausted.code(), "coupon_exhausted");
    let mut off = body(None);
    off["is_active"] = json!(false);
    off["global_limit"] = json!(10);
    assert_eq!(app.put(&path, &off, Some(&staff)).await.body["is_active"], false);
    let inactive = app
        .post(
            "/api/v1/orders",
            &order_body(&ravi, Some("WINTER10")),
            Some(&ravi.token),
        )
        .await;
    assert_eq!(inactive.code(), "coupon_invalid");
    let mut renamed = body(Some("OTHER"));
    renamed["global_limit"] = json!(10);
    assert_eq!(
        app.put(&path, &renamed, Some(&staff)).await.code(),
        "validation_failed"
    );

    let (admin, _) = app.user_with_role(Role::Admin).await;
    let log = app
        .get("/api/v1/admin/audit-log?subject_type=coupon", Some(&admin))
        .await;
    assert_eq!(log.body["total"], 3, "{}", log.body);
}

#[actix_web::test]
async fn a_global_limit_below_the_uses_counted_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let (staff, pain) = shop(&app).await;
    let id = app
        .post("/api/v1/admin/coupons", &body(Some("FEW")), Some(&staff))
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    let med = medicine(&app, &staff, pain, json!({"stock": 10})).await["id"]
        .as_i64()
        .unwrap();
    for _ in 0..2 {
        let who = customer(&app).await;
        add_to_cart(&app, &who, med, 1).await;
        let placed = app
            .post("/api/v1/orders", &order_body(&who, Some("FEW")), Some(&who.token))
            .await;
        assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.body);
    }
    let mut lower = body(None);
    lower["global_limit"] = json!(1);
    let refused = app
        .put(&format!("/api/v1/admin/coupons/{id}"), &lower, Some(&staff))
        .await;
    assert_eq!(refused.code(), "validation_failed");
    let listed = app.get("/api/v1/admin/coupons", Some(&staff)).await;
    assert_eq!(listed.body["items"][0]["global_limit"], 5);
    assert_eq!(listed.body["items"][0]["used_count"], 2);
}
