//! The lab test catalog on the demo city's data: search by name or code, filters, sorting, packages
//! with their contents, categories, and refusals that name the field.

use onemedi::db::demo;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, spawn_app};

async fn seeded() -> TestApp {
    let app = spawn_app().await;
    let mut conn = app.app.db.write().await.unwrap();
    assert!(demo::seed(&mut conn).await.unwrap());
    drop(conn);
    app
}

fn codes(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["code"].as_str().unwrap().to_owned())
        .collect()
}

#[actix_web::test]
async fn tests_are_found_by_name_or_code_filtered_sorted_and_paged() {
    let app = seeded().await;
    let sugar = app
        .get("/api/v1/lab-tests?q=blood%20sugar&sort=price_asc", None)
        .await;
    assert_eq!(sugar.status, StatusCode::OK, "{}", sugar.body);
    assert_eq!(codes(&sugar.body), ["FBS", "PPBS"]);
    assert_eq!(
        codes(&app.get("/api/v1/lab-tests?q=hba1c", None).await.body),
        ["HBA1C"]
    );
    let wildcard = app.get("/api/v1/lab-tests?q=%25", None).await;
    assert_eq!(
        wildcard.body["total"], 0,
        "a % in the query is a character, not a wildcard"
    );

    let diabetes = app
        .get("/api/v1/lab-tests?category=diabetes&package=false", None)
        .await;
    assert_eq!(diabetes.body["total"], 3);
    let cheap = app
        .get(
            "/api/v1/lab-tests?max_price=14900&sort=price_desc&per_page=2",
            None,
        )
        .await;
    assert_eq!(cheap.body["per_page"], 2);
    assert!(cheap.body["total"].as_i64().unwrap() > 2);
    let prices: Vec<i64> = cheap.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["price_paise"].as_i64().unwrap())
        .collect();
    assert!(prices.windows(2).all(|w| w[0] >= w[1]) && prices.iter().all(|p| *p <= 14_900));

    let bad = app
        .get("/api/v1/lab-tests?min_price=-1&sort=cheapest", None)
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body["error"]["details"]["min_price"].is_string());
    assert!(bad.body["error"]["details"]["sort"].is_string());
}

#[actix_web::test]
async fn packages_list_their_tests_and_categories_come_in_display_order() {
    let app = seeded().await;
    let packages = app.get("/api/v1/lab-tests/packages", None).await;
    let list = packages.body.as_array().unwrap();
    assert_eq!(list.len(), 2);
    let full = list.iter().find(|p| p["code"] == "PKG-FULLBODY").unwrap();
    let inside: Vec<&str> = full["includes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["code"].as_str().unwrap())
        .collect();
    assert!(
        inside.contains(&"CBC") && inside.contains(&"THYROID"),
        "{inside:?}"
    );

    let id = full["id"].as_i64().unwrap();
    let one = app.get(&format!("/api/v1/lab-tests/{id}"), None).await;
    assert_eq!(one.body["is_package"], true);
    assert_eq!(one.body["includes"].as_array().unwrap().len(), inside.len());
    assert_eq!(
        app.get("/api/v1/lab-tests/999999", None).await.code(),
        "not_found"
    );

    let categories = app.get("/api/v1/lab-tests/categories", None).await;
    let slugs: Vec<&str> = categories
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["slug"].as_str().unwrap())
        .collect();
    assert_eq!(
        slugs,
        ["fever-blood", "diabetes", "organ-function", "vitamins-routine"]
    );
}
