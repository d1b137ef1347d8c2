//! The demo city simulator (`onemedi simulate`, and on by default in the no-argument demo mode): crews,
//! riders and phlebotomists that move and answer offers, a dispatcher taking calls, customers ordering
//! and pharmacy staff packing — all through the same REST API and websocket protocol as real clients,
//! so a dispatcher console opened on a fresh demo server is alive at once.

mod client;
mod crew;
mod demand;
mod geo;

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex},
};

use tokio::{sync::mpsc, task::JoinSet};

pub use crate::config::SimulateSettings;
use crate::{
    db::demo::{DEMO_DOMAIN, DEMO_USERS},
    domain::Role,
};

/// How many demo customers shop (the order rate is split between them).
const SHOPPERS: u32 = 2;

/// Orders waiting for the pharmacy, at most.
const ORDER_QUEUE: usize = 64;

/// What every simulated client shares: where the server is and how to behave.
#[derive(Debug)]
pub struct Shared {
    /// The server's base URL, e.g. `http://127.0.0.1:8080`.
    pub base: String,
    pub settings: SimulateSettings,
    /// Delivery codes of the simulated customers' orders: the code a customer reads out at the door.
    codes: Mutex<HashMap<i64, String>>,
}

/// Codes kept for orders in flight, at most (the oldest are forgotten first).
const CODES_KEPT: usize = 1024;

impl Shared {
    fn remember_code(&self, order: i64, code: String) {
        if let Ok(mut codes) = self.codes.lock() {
            if codes.len() >= CODES_KEPT
                && let Some(&oldest) = codes.keys().min()
            {
                codes.remove(&oldest);
            }
            codes.insert(order, code);
        }
    }

    fn delivery_code(&self, order: i64) -> Option<String> {
        self.codes.lock().ok()?.get(&order).cloned()
    }
}

/// Runs the demo city against the server at `base` until the returned future is dropped (every
/// simulated client is a task of one `JoinSet`, so dropping it stops them all). A client that fails to
/// start (e.g. a demo account that no longer exists) is logged and the others go on.
pub async fn run(base: String, settings: SimulateSettings) {
    let shared = Arc::new(Shared {
        base: base.trim_end_matches('/').to_owned(),
        settings,
        codes: Mutex::new(HashMap::new()),
    });
    let mut clients = JoinSet::new();
    let email = |local: &str| format!("{local}@{DEMO_DOMAIN}");
    // Crews first: they put the fleet on the map, and the login limiter lets a burst through at once.
    for (local, _, role) in DEMO_USERS {
        if matches!(role, Role::Paramedic | Role::Rider | Role::Phlebotomist) {
            spawn(&mut clients, "crew", crew::run(shared.clone(), email(local)));
        }
    }
    let (orders, incoming) = mpsc::channel(ORDER_QUEUE);
    spawn(
        &mut clients,
        "dispatcher",
        demand::dispatcher(shared.clone(), email("dispatcher")),
    );
    spawn(
        &mut clients,
        "pharmacy",
        demand::pharmacy(shared.clone(), email("staff"), incoming),
    );
    for n in 1..=SHOPPERS {
        let customer = email(&format!("customer{n}"));
        spawn(
            &mut clients,
            "customer",
            demand::shopper(shared.clone(), customer, orders.clone()),
        );
    }
    drop(orders);
    for n in 1..=SHOPPERS {
        let patient = email(&format!("customer{n}"));
        spawn(
            &mut clients,
            "patient",
            demand::lab_patient(shared.clone(), patient),
        );
    }
    tracing::info!(base = %shared.base, clients = clients.len(), "demo city simulation running");
    while clients.join_next().await.is_some() {}
}

fn spawn(
    clients: &mut JoinSet<()>,
    who: &'static str,
    client: impl Future<Output = anyhow::Result<()>> + Send + 'static,
) {
    clients.spawn(async move {
        if let Err(error) = client.await {
            tracing::warn!(who, error = %format!("{error:#}"), "simulated client stopped");
        }
    });
}
