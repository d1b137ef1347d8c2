//! Profiles and addresses: each user sees and changes only their own.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::spawn_app;

fn address(label: &str) -> Value {
    json!({"label": label, "line1": "12 MG Road", "city": "Bengaluru", "state": "Karnataka",
           "pincode": "560001", "lat": 12.9756, "lng": 77.6066})
}

#[actix_web::test]
async fn a_user_updates_their_name_and_phone_but_not_their_role() {
    let app = spawn_app().await;
    let (token, _) = app.register_customer("profile@example.in").await;
    let updated = app
        .put(
            "/api/v1/users/profile",
            &json!({"name": "Asha R", "phone": "9000011111"}),
            Some(&token),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["name"], "Asha R");
    assert_eq!(updated.body["phone"], "+919000011111");

    let escalation = app
        .put(
            "/api/v1/users/profile",
            &json!({"name": "X", "role": "admin"}),
            Some(&token),
        )
        .await;
    assert_eq!(escalation.status, StatusCode::BAD_REQUEST);
    let profile = app.get("/api/v1/users/profile", Some(&token)).await;
    assert_eq!(profile.body["role"], "customer");
    assert_eq!(profile.body["name"], "Asha R");
}

#[actix_web::test]
async fn addresses_are_created_listed_updated_and_deleted_by_their_owner() {
    let app = spawn_app().await;
    let (token, _) = app.register_customer("home@example.in").await;
    let home = app
        .post("/api/v1/users/addresses", &address("Home"), Some(&token))
        .await;
    assert_eq!(home.status, StatusCode::CREATED, "{}", home.body);
    assert_eq!(
        home.body["is_default"], true,
        "the first address becomes the default"
    );
    let mut work = address("Office");
    work["is_default"] = json!(true);
    let office = app.post("/api/v1/users/addresses", &work, Some(&token)).await;
    assert_eq!(office.status, StatusCode::CREATED);

    let list = app.get("/api/v1/users/addresses", Some(&token)).await;
    assert_eq!(list.body["total"], 2);
    let defaults: Vec<_> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["is_default"] == true)
        .collect();
    assert_eq!(defaults.len(), 1);
    assert_eq!(defaults[0]["label"], "Office");

    let id = home.body["id"].as_i64().unwrap();
    let mut changed = address("Home (new)");
    changed["pincode"] = json!("560038");
    let updated = app
        .put(&format!("/api/v1/users/addresses/{id}"), &changed, Some(&token))
        .await;
    assert_eq!(updated.status, StatusCode::OK);
    assert_eq!(updated.body["pincode"], "560038");

    assert_eq!(
        app.delete(&format!("/api/v1/users/addresses/{id}"), Some(&token))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get("/api/v1/users/addresses", Some(&token)).await.body["total"],
        1
    );
}

#[actix_web::test]
async fn another_users_address_is_not_found_and_untouched() {
    let app = spawn_app().await;
    let (owner, _) = app.register_customer("owner@example.in").await;
    let (intruder, _) = app.register_customer("intruder@example.in").await;
    let created = app
        .post("/api/v1/users/addresses", &address("Home"), Some(&owner))
        .await;
    let id = created.body["id"].as_i64().unwrap();

    let update = app
        .put(
            &format!("/api/v1/users/addresses/{id}"),
            &address("Mine now"),
            Some(&intruder),
        )
        .await;
    assert_eq!(update.status, StatusCode::NOT_FOUND);
    assert_eq!(update.code(), "not_found");
    assert_eq!(
        app.delete(&format!("/api/v1/users/addresses/{id}"), Some(&intruder))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/v1/users/addresses", Some(&intruder)).await.body["total"],
        0
    );

    let list = app.get("/api/v1/users/addresses", Some(&owner)).await;
    assert_eq!(list.body["items"][0]["label"], "Home");
}

#[actix_web::test]
async fn an_address_off_the_globe_is_refused_with_field_details() {
    let app = spawn_app().await;
    let (token, _) = app.register_customer("geo@example.in").await;
    let mut bad = address("Nowhere");
    bad["lat"] = json!(123.0);
    bad["pincode"] = json!("12");
    let reply = app.post("/api/v1/users/addresses", &bad, Some(&token)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.body["error"]["details"]["lat"].is_string());
    assert!(reply.body["error"]["details"]["pincode"].is_string());
    assert_eq!(
        app.get("/api/v1/users/addresses", Some(&token)).await.body["total"],
        0
    );
}

#[actix_web::test]
async fn address_lists_are_paginated_and_page_sizes_are_bounded() {
    let app = spawn_app().await;
    let (token, _) = app.register_customer("many@example.in").await;
    for i in 0..5 {
        app.post(
            "/api/v1/users/addresses",
            &address(&format!("Place {i}")),
            Some(&token),
        )
        .await;
    }
    let page = app
        .get("/api/v1/users/addresses?page=2&per_page=2", Some(&token))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.body["page"], 2);
    assert_eq!(page.body["per_page"], 2);
    assert_eq!(page.body["total"], 5);
    assert_eq!(page.body["items"].as_array().unwrap().len(), 2);
    let too_big = app
        .get("/api/v1/users/addresses?per_page=101", Some(&token))
        .await;
    assert_eq!(too_big.status, StatusCode::BAD_REQUEST);
    assert_eq!(too_big.code(), "validation_failed");
    let junk = app.get("/api/v1/users/addresses?page=abc", Some(&token)).await;
    assert_eq!(junk.status, StatusCode::BAD_REQUEST);
}
