//! The demo city loads on either backend, once, and its printed logins work.

use onemedi::db::demo;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::spawn_app;

#[actix_web::test]
async fn the_demo_city_loads_once_and_its_logins_work() {
    let app = spawn_app().await;
    let mut conn = app.app.db.write().await.unwrap();
    assert!(demo::seed(&mut conn).await.unwrap());
    assert!(!demo::seed(&mut conn).await.unwrap(), "a second seed is a no-op");
    drop(conn);

    let login = app
        .post(
            "/api/v1/auth/login",
            &json!({"email": format!("admin@{}", demo::DEMO_DOMAIN), "password": demo::DEMO_PASSWORD}),
            None,
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    let token = login.body["token"].as_str().unwrap();
    let paramedics = app.get("/api/v1/admin/users?role=paramedic", Some(token)).await;
    assert_eq!(paramedics.body["total"], 12, "one crew per ambulance");
    let everyone = app.get("/api/v1/admin/users?per_page=100", Some(token)).await;
    assert_eq!(everyone.body["total"], demo::DEMO_USERS.len());
    assert!(demo::logins().contains("dispatcher@demo.onemedi.in"));
}
