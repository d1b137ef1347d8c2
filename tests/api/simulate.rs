//! The demo city simulator drives a demo server through its public API: units report live positions,
//! calls are logged and worked by crews, orders are packed and carried by riders, home collections are
//! booked and taken by phlebotomists.

use std::time::Duration;

use onemedi::{db::demo, simulate};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with};

/// The simulator's clients sign in and start within seconds; a crew then needs a few ticks to work a job.
const PATIENCE: Duration = Duration::from_secs(45);

async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the simulation never got to: {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn login(app: &TestApp, local: &str) -> String {
    let body = json!({"email": format!("{local}@{}", demo::DEMO_DOMAIN), "password": demo::DEMO_PASSWORD});
    let mut reply = app.post("/api/v1/auth/login", &body, None).await;
    // The simulator's clients sign in at the same moment: a full password line is waited out.
    while reply.status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
        tokio::time::sleep(Duration::from_millis(200)).await;
        reply = app.post("/api/v1/auth/login", &body, None).await;
    }
    reply.body["token"].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn the_simulated_city_moves_units_and_its_calls_orders_and_collections_are_worked() {
    let app = spawn_app_with(|s| {
        // Every simulated client signs in from loopback at once.
        s.rate_limit.auth_per_minute = 200;
        s.rate_limit.per_minute = 10_000;
    })
    .await;
    let mut conn = app.app.db.write().await.unwrap();
    assert!(demo::seed(&mut conn).await.unwrap());
    drop(conn);
    let settings = simulate::SimulateSettings {
        ping_interval_ms: 200,
        speed_factor: 20.0,
        ambulance_requests_per_hour: 1800.0,
        orders_per_hour: 1800.0,
        lab_bookings_per_hour: 1800.0,
        accept_percent: 100,
        ..Default::default()
    };
    let simulation = tokio::spawn(simulate::run(app.address.clone(), settings));

    let dispatcher = login(&app, "dispatcher").await;
    until("every ambulance reporting live", async || {
        let board = app.get("/api/v1/emergency/board", Some(&dispatcher)).await;
        let units = board.body["units"].as_array().cloned().unwrap_or_default();
        units.len() == 12 && units.iter().all(|u| u["position"]["source"] == "live")
    })
    .await;
    until("a call worked by its crew", async || {
        let listed = app
            .get(
                "/api/v1/emergency/ambulance-requests?per_page=100",
                Some(&dispatcher),
            )
            .await;
        listed.body["items"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r: &Value| !r["times"]["en_route"].is_null())
    })
    .await;
    let customers = [login(&app, "customer1").await, login(&app, "customer2").await];
    until("an order confirmed and packed by the pharmacy", async || {
        for token in &customers {
            let listed = app.get("/api/v1/orders", Some(token)).await;
            if listed.body["items"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|o| o["status"] == "packed")
            {
                return true;
            }
        }
        false
    })
    .await;
    simulation.abort();
}
