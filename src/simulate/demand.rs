//! Simulated demand: a dispatcher taking emergency calls across the city, customers ordering medicines,
//! and pharmacy staff confirming and packing those orders — each through the public API.

use std::{sync::Arc, time::Duration};

use anyhow::{Context, anyhow};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{
    Shared,
    client::Api,
    geo::{CITY_CENTRE, CITY_RADIUS_M, random_near},
};

/// How long a call nobody could reach stays open before the dispatcher closes it (resolved by phone).
const STALE_CALL: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// How often the dispatcher reviews open calls.
const REVIEW_EVERY: Duration = Duration::from_secs(60);

/// Calls by ARP category, roughly the national mix (C2 is the bulk of demand).
const CATEGORY_WEIGHTS: [(i32, u32); 4] = [(1, 10), (2, 45), (3, 30), (4, 15)];

const CONDITIONS: [&str; 8] = [
    "chest pain",
    "breathing difficulty",
    "road traffic collision",
    "fall at home",
    "unconscious person",
    "allergic reaction",
    "high fever, confused",
    "diabetic emergency",
];

const NAMES: [&str; 10] = [
    "Ananya", "Bhaskar", "Chitra", "Dinesh", "Esha", "Gopal", "Harini", "Irfan", "Jyothi", "Karthik",
];

/// A random wait with the given mean (exponential: independent arrivals), at least a second.
fn arrival_gap(rng: &mut impl Rng, per_hour: f64) -> Duration {
    let mean = 3600.0 / per_hour.max(0.01);
    let u: f64 = rng.random_range(f64::EPSILON..1.0);
    Duration::from_secs_f64((-u.ln() * mean).clamp(1.0, 6.0 * 3600.0))
}

/// The dispatcher: logs emergency calls at random places and closes calls nobody could reach.
pub async fn dispatcher(shared: Arc<Shared>, email: String) -> anyhow::Result<()> {
    let api = Api::login(&shared.base, &email, &shared.settings.password).await?;
    let mut rng = StdRng::from_os_rng();
    let per_hour = shared.settings.ambulance_requests_per_hour;
    if per_hour <= 0.0 {
        return Ok(());
    }
    let mut review = tokio::time::interval(REVIEW_EVERY);
    let mut next_call = Box::pin(tokio::time::sleep(arrival_gap(&mut rng, per_hour)));
    loop {
        tokio::select! {
            _ = &mut next_call => {
                if let Err(error) = call(&api, &mut rng).await {
                    tracing::warn!(error = %format!("{error:#}"), "simulated dispatcher: call not logged");
                }
                next_call.set(tokio::time::sleep(arrival_gap(&mut rng, per_hour)));
            }
            _ = review.tick() => {
                if let Err(error) = close_stale(&api).await {
                    tracing::warn!(error = %format!("{error:#}"), "simulated dispatcher: review failed");
                }
            }
        }
    }
}

async fn call(api: &Api, rng: &mut StdRng) -> anyhow::Result<()> {
    let at = random_near(rng, CITY_CENTRE, CITY_RADIUS_M);
    let category = CATEGORY_WEIGHTS
        .choose_weighted(rng, |(_, w)| *w)
        .map(|(c, _)| *c)
        .unwrap_or(2);
    let body = json!({
        "pickup": {"lat": at.lat, "lng": at.lng, "address": format!("Near {:.4}, {:.4}, Bengaluru", at.lat, at.lng)},
        "category": category,
        "patient": {
            "name": NAMES.choose(rng).copied().unwrap_or("Caller"),
            "age": rng.random_range(4..90),
            "condition": CONDITIONS.choose(rng).copied().unwrap_or("unwell"),
        },
        "notes": "simulated call",
    });
    let created = api
        .post_once("/api/v1/emergency/ambulance-requests", &body)
        .await?
        .ok()?;
    tracing::info!(
        request = created["id"].as_i64(),
        category,
        "simulated dispatcher: call logged"
    );
    Ok(())
}

async fn close_stale(api: &Api) -> anyhow::Result<()> {
    let open = api
        .get("/api/v1/emergency/ambulance-requests?open=true&per_page=100")
        .await?;
    let now = chrono::Utc::now().naive_utc();
    for request in open["items"].as_array().into_iter().flatten() {
        let stuck = matches!(
            request["status"].as_str(),
            Some("no_unit_available" | "escalated")
        );
        let since = request["times"]["call_received"]
            .as_str()
            .and_then(|t| t.parse::<chrono::NaiveDateTime>().ok());
        if stuck && since.is_some_and(|t| now - t > STALE_CALL) {
            let id = request["id"].as_i64().unwrap_or_default();
            api.post(
                &format!("/api/v1/emergency/ambulance-requests/{id}/cancel"),
                &json!({"reason": "resolved by phone advice"}),
            )
            .await?
            .ok()?;
        }
    }
    Ok(())
}

/// A customer who now and then orders an over-the-counter medicine, cash on delivery; each order's id
/// goes to the pharmacy staff.
pub async fn shopper(shared: Arc<Shared>, email: String, orders: mpsc::Sender<i64>) -> anyhow::Result<()> {
    let api = Api::login(&shared.base, &email, &shared.settings.password).await?;
    let mut rng = StdRng::from_os_rng();
    let per_hour = shared.settings.orders_per_hour / f64::from(super::SHOPPERS);
    if per_hour <= 0.0 {
        return Ok(());
    }
    let address = home_address(&api, &mut rng).await?;
    loop {
        tokio::time::sleep(arrival_gap(&mut rng, per_hour)).await;
        match order(&shared, &api, &mut rng, address).await {
            Ok(id) => {
                tracing::info!(order = id, "simulated customer: order placed");
                if orders.send(id).await.is_err() {
                    return Ok(());
                }
            }
            Err(error) => tracing::warn!(error = %format!("{error:#}"), "simulated customer: no order"),
        }
    }
}

/// The customer's default address, created near the centre if they have none.
async fn home_address(api: &Api, rng: &mut StdRng) -> anyhow::Result<i64> {
    let listed = api.get("/api/v1/users/addresses").await?;
    let first = match &listed {
        Value::Array(items) => items.first(),
        other => other["items"].as_array().and_then(|items| items.first()),
    };
    if let Some(id) = first.and_then(|a| a["id"].as_i64()) {
        return Ok(id);
    }
    let at = random_near(rng, CITY_CENTRE, CITY_RADIUS_M / 2.0);
    let created = api
        .post(
            "/api/v1/users/addresses",
            &json!({
                "label": "Home", "line1": "12, 4th Cross, Indiranagar", "city": "Bengaluru",
                "state": "Karnataka", "pincode": "560038", "lat": at.lat, "lng": at.lng, "is_default": true,
            }),
        )
        .await?
        .ok()?;
    created["id"]
        .as_i64()
        .ok_or_else(|| anyhow!("address without an id"))
}

async fn order(shared: &Shared, api: &Api, rng: &mut StdRng, address: i64) -> anyhow::Result<i64> {
    let shelf = api
        .get("/api/v1/medicines?in_stock=true&prescription_required=false&per_page=50")
        .await?;
    let items = shelf["items"].as_array().cloned().unwrap_or_default();
    let medicine = items
        .choose(rng)
        .and_then(|m| m["id"].as_i64())
        .ok_or_else(|| anyhow!("nothing in stock"))?;
    api.post(
        "/api/v1/cart/items",
        &json!({"medicine_id": medicine, "quantity": rng.random_range(1..=2)}),
    )
    .await?
    .ok()
    .context("adding to the cart")?;
    let placed = api
        .post_once(
            "/api/v1/orders",
            &json!({"address_id": address, "payment_method": "cod"}),
        )
        .await?
        .ok()
        .context("placing the order")?;
    let id = placed["id"]
        .as_i64()
        .ok_or_else(|| anyhow!("order without an id"))?;
    if let Some(code) = placed["delivery_code"].as_str() {
        shared.remember_code(id, code.to_owned());
    }
    Ok(id)
}

/// A customer who books home sample collections now and then: one to three tests collectable at
/// home, the next window still open today (India time) or one tomorrow.
pub async fn lab_patient(shared: Arc<Shared>, email: String) -> anyhow::Result<()> {
    let api = Api::login(&shared.base, &email, &shared.settings.password).await?;
    let mut rng = StdRng::from_os_rng();
    let per_hour = shared.settings.lab_bookings_per_hour / f64::from(super::SHOPPERS);
    if per_hour <= 0.0 {
        return Ok(());
    }
    let address = home_address(&api, &mut rng).await?;
    loop {
        tokio::time::sleep(arrival_gap(&mut rng, per_hour)).await;
        match book_collection(&api, &mut rng, address).await {
            Ok(id) => tracing::info!(collection = id, "simulated patient: home collection booked"),
            Err(error) => tracing::warn!(error = %format!("{error:#}"), "simulated patient: no booking"),
        }
    }
}

/// Collection windows as the lab desk offers them (India time).
const WINDOWS: [(&str, u32); 8] = [
    ("06:00-08:00", 6 * 60),
    ("07:00-09:00", 7 * 60),
    ("08:00-10:00", 8 * 60),
    ("09:00-11:00", 9 * 60),
    ("10:00-12:00", 10 * 60),
    ("12:00-14:00", 12 * 60),
    ("14:00-16:00", 14 * 60),
    ("16:00-18:00", 16 * 60),
];

async fn book_collection(api: &Api, rng: &mut StdRng, address: i64) -> anyhow::Result<i64> {
    let menu = api
        .get("/api/v1/lab-tests?home_collection=true&per_page=50")
        .await?;
    let tests: Vec<i64> = menu["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["is_package"] != true)
        .filter_map(|t| t["id"].as_i64())
        .collect();
    let count = rng.random_range(1..=3).min(tests.len());
    let chosen: Vec<i64> = tests.choose_multiple(rng, count).copied().collect();
    if chosen.is_empty() {
        return Err(anyhow!("no test can be collected at home"));
    }
    let india = chrono::Utc::now() + chrono::TimeDelta::minutes(330);
    let minute = chrono::Timelike::hour(&india) * 60 + chrono::Timelike::minute(&india);
    let later: Vec<&str> = WINDOWS
        .iter()
        .filter(|(_, start)| *start > minute + 30)
        .map(|(w, _)| *w)
        .collect();
    let (date, window) = match later.first() {
        Some(window) => (india.date_naive(), *window),
        None => (
            india.date_naive() + chrono::TimeDelta::days(1),
            WINDOWS.choose(rng).map(|(w, _)| *w).unwrap_or("09:00-11:00"),
        ),
    };
    let booked = api
        .post_once(
            "/api/v1/lab-tests/book",
            &json!({
                "test_ids": chosen,
                "address_id": address,
                "slot": {"date": date.to_string(), "window": window},
                "patient": {"name": NAMES.choose(rng).copied().unwrap_or("Patient"), "age": rng.random_range(18..80)},
            }),
        )
        .await?
        .ok()
        .context("booking")?;
    booked["id"]
        .as_i64()
        .ok_or_else(|| anyhow!("collection without an id"))
}

/// Pharmacy staff: confirm each new order after a short check, then pack it; a packed order goes to
/// the riders through dispatch.
pub async fn pharmacy(
    shared: Arc<Shared>,
    email: String,
    mut orders: mpsc::Receiver<i64>,
) -> anyhow::Result<()> {
    let api = Api::login(&shared.base, &email, &shared.settings.password).await?;
    let factor = shared.settings.speed_factor();
    // Orders in hand; dropped (and so stopped) with this task.
    let mut in_hand = tokio::task::JoinSet::new();
    while let Some(id) = orders.recv().await {
        while in_hand.try_join_next().is_some() {}
        // At most ORDER_QUEUE orders in hand: a faster order rate waits for the pharmacy.
        if in_hand.len() >= super::ORDER_QUEUE {
            in_hand.join_next().await;
        }
        let api = api.clone();
        in_hand.spawn(async move {
            for (status, after) in [("confirmed", 20.0), ("packed", 60.0)] {
                tokio::time::sleep(Duration::from_secs_f64(after / factor)).await;
                let path = format!("/api/v1/orders/{id}/status");
                match api.put(&path, &json!({"status": status})).await.and_then(|r| r.ok()) {
                    Ok(_) => tracing::info!(order = id, status, "simulated pharmacy: order moved on"),
                    Err(error) => {
                        tracing::warn!(order = id, error = %format!("{error:#}"), "simulated pharmacy: stopped");
                        return;
                    }
                }
            }
        });
    }
    Ok(())
}
