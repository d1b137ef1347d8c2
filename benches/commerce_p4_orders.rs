//! P4 / P7: order placement. Concurrent clients, each its own customer with an address, loop: put two
//! medicines in the cart (two `POST /cart/items`), then `POST /orders` (cash on delivery, with a coupon,
//! so every order claims stock twice and one coupon use). Measured: orders/s over the whole loop and the
//! latency of the order request and of the whole iteration.
//!
//! P4 runs the release server on PostgreSQL (a scratch database, created and dropped) and, in the same run
//! and database, pgbench with the same number of clients executing `benches/commerce_p4_order.sql`: the
//! same cart refill and checkout transaction as plain SQL, its own customers. P7 runs the same driver
//! against the embedded SQLite default (no baseline: SQLite has no pgbench).
//!
//! `cargo bench --bench commerce_p4_orders -- [--clients 8] [--secs 20] [--max-orders 100000]
//! [--backend both|postgres|sqlite]` (PostgreSQL at `P4_DATABASE_URL`, default
//! postgres://postgres@127.0.0.1:5432/test; pgbench on PATH).

mod support;

use std::{path::Path, process::Command, sync::Arc, time::Duration};

use anyhow::Context;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use onemedi::{db::schema, domain::Role, on_conn};
use serde_json::{Value, json};
use support::{Options, Server, quantile_ms, r2};
use tokio::time::Instant;

/// Medicines on sale; each order takes one from each half, so lines are claimed in id order.
const MEDICINES: usize = 40;
/// Goal from the issue: our rate at least this share of pgbench's.
const RATIO_GOAL: f64 = 0.5;
const COUPON: &str = "BENCHP4";

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn main() -> anyhow::Result<()> {
    let options = Options::from_env();
    let clients = options.number("clients", 8)? as usize;
    let secs = options.number("secs", 20)?;
    let max_orders = options.number("max-orders", 100_000)? as usize;
    let backend = options.word("backend", "both");
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run(clients, Duration::from_secs(secs), max_orders, &backend))
}

/// What one run of the HTTP driver measured.
#[derive(Debug, Default)]
struct Driven {
    placed: usize,
    failed: usize,
    first_error: Option<String>,
    elapsed_s: f64,
    order_us: Vec<u32>,
    iteration_us: Vec<u32>,
}

impl Driven {
    fn rate(&self) -> f64 {
        self.placed as f64 / self.elapsed_s.max(1e-9)
    }

    fn summary(&self) -> Value {
        let mut order = self.order_us.clone();
        order.sort_unstable();
        let mut iteration = self.iteration_us.clone();
        iteration.sort_unstable();
        json!({
            "orders": self.placed,
            "failed": self.failed,
            "first_error": self.first_error,
            "elapsed_s": r2(self.elapsed_s),
            "orders_per_s": r2(self.rate()),
            "order_p50_ms": r2(quantile_ms(&order, 0.5)),
            "order_p99_ms": r2(quantile_ms(&order, 0.99)),
            "iteration_p50_ms": r2(quantile_ms(&iteration, 0.5)),
            "iteration_p99_ms": r2(quantile_ms(&iteration, 0.99)),
        })
    }
}

/// pgbench's figures.
#[derive(Debug, Default)]
struct Baseline {
    transactions: usize,
    tps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

async fn run(clients: usize, duration: Duration, max_orders: usize, backend: &str) -> anyhow::Result<()> {
    let mut postgres = None;
    if backend == "both" || backend == "postgres" {
        let base = std::env::var("P4_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let (url, name) = scratch_database(&base).await?;
        let outcome = postgres_run(&url, clients, duration, max_orders).await;
        drop_database(&base, &name).await?;
        postgres = Some(outcome?);
    }
    let mut sqlite = None;
    if backend == "both" || backend == "sqlite" {
        let server = Server::start().await?;
        let setup = setup(&server, clients, false).await?;
        eprintln!("p7: SQLite, {clients} clients for {duration:?}");
        sqlite = Some(drive(&server, &setup, duration, max_orders).await?);
    }
    report(clients, duration, postgres.as_ref(), sqlite.as_ref())
}

async fn postgres_run(
    url: &str,
    clients: usize,
    duration: Duration,
    max_orders: usize,
) -> anyhow::Result<(Driven, Baseline)> {
    let server = Server::start_on(Some(url), None).await?;
    let setup = setup(&server, clients, true).await?;
    eprintln!("p4: PostgreSQL, {clients} clients for {duration:?}");
    let ours = drive(&server, &setup, duration, max_orders).await?;
    eprintln!("p4: pgbench, {clients} clients for {duration:?}");
    let baseline = pgbench(url, &setup, clients, duration)?;
    Ok((ours, baseline))
}

/// Customers (one per client, and as many for pgbench), medicines with ample stock and the coupon.
struct Setup {
    /// (token, address id) per HTTP client.
    customers: Vec<(String, i64)>,
    medicines: Vec<i64>,
    /// pgbench's customers: first user id and first address id (consecutive).
    pgbench_first_user: i64,
    pgbench_first_address: i64,
    coupon_id: i64,
}

async fn setup(server: &Server, clients: usize, with_pgbench: bool) -> anyhow::Result<Setup> {
    server
        .insert_rows(
            "medicine_categories (name, slug, created_at, updated_at)",
            &["('Bench P4', 'bench-p4', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)".to_owned()],
        )
        .await?;
    let medicines: Vec<String> = (0..MEDICINES)
        .map(|i| {
            format!(
                "('Bench medicine {i}', 'bench-p4-{i}', 'Paracetamol', \
                 (SELECT id FROM medicine_categories WHERE slug = 'bench-p4'), '10 tablets', \
                 {}, 20000, 12, 1000000000, 10, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
                10_000 + i * 100
            )
        })
        .collect();
    server
        .insert_rows(
            "medicines (name, slug, salt_composition, category_id, pack_size, price_paise, mrp_paise, \
             gst_rate_percent, stock, max_per_order, created_at, updated_at)",
            &medicines,
        )
        .await?;
    server
        .insert_rows(
            "coupons (code, description, kind, value, applies_to, starts_at, created_at, updated_at)",
            &[format!(
                "('{COUPON}', 'P4 benchmark', 'percent', 10, 'medicines', '2020-01-01 00:00:00', \
                 CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )],
        )
        .await?;
    let http = server.users("bench-p4-http", Role::Customer, clients).await?;
    let pgb = if with_pgbench {
        server.users("bench-p4-pgb", Role::Customer, clients).await?
    } else {
        Vec::new()
    };
    let addresses: Vec<String> = http
        .iter()
        .chain(&pgb)
        .map(|(id, _)| {
            format!(
                "({id}, 'Home', '12 MG Road', 'Bengaluru', 'Karnataka', '560001', 12.97, 77.59, TRUE, \
                 CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        })
        .collect();
    server
        .insert_rows(
            "addresses (user_id, label, line1, city, state, pincode, lat, lng, is_default, created_at, \
             updated_at)",
            &addresses,
        )
        .await?;
    let mut conn = server.db.read().await?;
    let medicine_ids = on_conn!(&mut conn, c => schema::medicines::table
        .filter(schema::medicines::slug.like("bench-p4-%"))
        .order(schema::medicines::id.asc())
        .select(schema::medicines::id)
        .load::<i64>(c)
        .await)?;
    let address_of = |user: i64| {
        schema::addresses::table
            .filter(schema::addresses::user_id.eq(user))
            .select(schema::addresses::id)
    };
    let mut customers = Vec::new();
    for (id, token) in &http {
        let address = on_conn!(&mut conn, c => address_of(*id).first::<i64>(c).await)?;
        customers.push((token.clone(), address));
    }
    let (pgbench_first_user, pgbench_first_address) = match pgb.as_slice().first() {
        Some((id, _)) => (
            *id,
            on_conn!(&mut conn, c => address_of(*id).first::<i64>(c).await)?,
        ),
        None => (0, 0),
    };
    let coupon_id = on_conn!(&mut conn, c => schema::coupons::table
        .filter(schema::coupons::code.eq(COUPON))
        .select(schema::coupons::id)
        .first::<i64>(c)
        .await)?;
    anyhow::ensure!(medicine_ids.len() == MEDICINES, "medicines not inserted");
    Ok(Setup {
        customers,
        medicines: medicine_ids,
        pgbench_first_user,
        pgbench_first_address,
        coupon_id,
    })
}

/// Every client loops until the time is up or the orders are placed; returns the merged measurements.
async fn drive(
    server: &Server,
    setup: &Setup,
    duration: Duration,
    max_orders: usize,
) -> anyhow::Result<Driven> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;
    let base = Arc::new(format!("http://127.0.0.1:{}/api/v1", server.port));
    let medicines = Arc::new(setup.medicines.clone());
    let per_client = max_orders.div_ceil(setup.customers.len().max(1));
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for (k, (token, address)) in setup.customers.iter().cloned().enumerate() {
        let (http, base, medicines) = (http.clone(), base.clone(), medicines.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (k as u64 + 1));
            let mut out = Driven::default();
            let half = medicines.len() / 2;
            while Instant::now() < deadline && out.placed < per_client {
                let began = Instant::now();
                for medicine in [medicines[rng.below(half)], medicines[half + rng.below(half)]] {
                    http.post(format!("{base}/cart/items"))
                        .bearer_auth(&token)
                        .json(&json!({"medicine_id": medicine, "quantity": 1}))
                        .send()
                        .await?
                        .error_for_status()?;
                }
                let sent = Instant::now();
                let reply = http
                    .post(format!("{base}/orders"))
                    .bearer_auth(&token)
                    .json(&json!({"address_id": address, "payment_method": "cod", "coupon_code": COUPON}))
                    .send()
                    .await?;
                let status = reply.status();
                let body = reply.text().await?;
                let done = Instant::now();
                if status.as_u16() == 201 {
                    out.placed += 1;
                    out.order_us.push(micros(done - sent));
                    out.iteration_us.push(micros(done - began));
                } else {
                    out.failed += 1;
                    out.first_error.get_or_insert(format!("{status} {body}"));
                    // A refused checkout may leave the cart filled; empty it for the next round.
                    let _ = http.get(format!("{base}/cart")).bearer_auth(&token).send().await;
                }
            }
            anyhow::Ok(out)
        }));
    }
    let mut total = Driven::default();
    for task in tasks {
        let part = task.await??;
        total.placed += part.placed;
        total.failed += part.failed;
        if total.first_error.is_none() {
            total.first_error = part.first_error;
        }
        total.order_us.extend(part.order_us);
        total.iteration_us.extend(part.iteration_us);
    }
    total.elapsed_s = start.elapsed().as_secs_f64();
    Ok(total)
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// Runs pgbench with the script; returns its rate and latency percentiles (from its per-transaction log).
/// pgbench is bounded by time only (its `--transactions` and `--time` exclude each other).
fn pgbench(url: &str, setup: &Setup, clients: usize, duration: Duration) -> anyhow::Result<Baseline> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/commerce_p4_order.sql");
    let logs = tempfile::tempdir()?;
    let prefix = logs.path().join("p4");
    let output = Command::new("pgbench")
        .arg("--no-vacuum")
        .arg("--file")
        .arg(&script)
        .args(["--client", &clients.to_string(), "--jobs", "2"])
        .args(["--time", &duration.as_secs().max(1).to_string()])
        .args(["--define", &format!("first_user={}", setup.pgbench_first_user)])
        .args(["--define", &format!("users={clients}")])
        .args([
            "--define",
            &format!("first_address={}", setup.pgbench_first_address),
        ])
        .args(["--define", &format!("first_med={}", setup.medicines[0])])
        .args(["--define", &format!("meds={}", setup.medicines.len())])
        .args(["--define", &format!("coupon={}", setup.coupon_id)])
        .arg("--log")
        .arg(format!("--log-prefix={}", prefix.display()))
        .arg(url)
        .output()
        .context("running pgbench (is it on PATH?)")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success(),
        "pgbench failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tps = stdout
        .lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|v| v.parse::<f64>().ok())
        .context("no tps in pgbench's output")?;
    let mut latencies = Vec::new();
    for entry in std::fs::read_dir(logs.path())? {
        let text = std::fs::read_to_string(entry?.path())?;
        for line in text.lines() {
            if let Some(us) = line.split_whitespace().nth(2).and_then(|v| v.parse::<u32>().ok()) {
                latencies.push(us);
            }
        }
    }
    latencies.sort_unstable();
    Ok(Baseline {
        transactions: latencies.len(),
        tps,
        p50_ms: quantile_ms(&latencies, 0.5),
        p99_ms: quantile_ms(&latencies, 0.99),
    })
}

async fn scratch_database(base: &str) -> anyhow::Result<(String, String)> {
    let name = format!("onemedi_bench_p4_{}", std::process::id());
    let mut admin = AsyncPgConnection::establish(base).await?;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await?;
    admin.batch_execute(&format!("CREATE DATABASE {name}")).await?;
    let url = match base.rsplit_once('/') {
        Some((root, _)) => format!("{root}/{name}"),
        None => anyhow::bail!("database url without a path: {base}"),
    };
    Ok((url, name))
}

async fn drop_database(base: &str, name: &str) -> anyhow::Result<()> {
    let mut admin = AsyncPgConnection::establish(base).await?;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await?;
    Ok(())
}

fn report(
    clients: usize,
    duration: Duration,
    postgres: Option<&(Driven, Baseline)>,
    sqlite: Option<&Driven>,
) -> anyhow::Result<()> {
    let mut json = json!({
        "benchmark": "commerce-p4-orders",
        "clients": clients,
        "secs": duration.as_secs(),
        "machine": machine(),
        "ratio_goal": RATIO_GOAL,
    });
    let mut md = format!(
        "# P4 / P7: order placement\n\n{clients} clients, each its own customer: two `POST /cart/items` then \
         `POST /orders` (cash on delivery, 10% coupon, two stock claims), in a loop for {} s. \
         Orders/s counts whole iterations. Baseline: pgbench, {clients} clients, the same cart refill and \
         checkout transaction as SQL (`benches/commerce_p4_order.sql`), same scratch database, right after.\n\n\
         | run | orders | failed | orders/s | order p50 ms | order p99 ms | iteration p50 ms | iteration p99 ms |\n\
         |---|---|---|---|---|---|---|---|\n",
        duration.as_secs()
    );
    let row = |name: &str, d: &Driven| {
        let mut order = d.order_us.clone();
        order.sort_unstable();
        let mut iteration = d.iteration_us.clone();
        iteration.sort_unstable();
        format!(
            "| {name} | {} | {} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} |\n",
            d.placed,
            d.failed,
            d.rate(),
            quantile_ms(&order, 0.5),
            quantile_ms(&order, 0.99),
            quantile_ms(&iteration, 0.5),
            quantile_ms(&iteration, 0.99)
        )
    };
    if let Some((ours, baseline)) = postgres {
        json["p4_postgres"] = ours.summary();
        json["p4_pgbench"] = json!({
            "transactions": baseline.transactions,
            "tps": r2(baseline.tps),
            "p50_ms": r2(baseline.p50_ms),
            "p99_ms": r2(baseline.p99_ms),
        });
        let ratio = ours.rate() / baseline.tps.max(1e-9);
        json["p4_ratio"] = json!(r2(ratio));
        md.push_str(&row("P4 ONE MEDI on PostgreSQL", ours));
        md.push_str(&format!(
            "| P4 pgbench (same SQL) | {} | 0 | {:.1} | – | – | {:.2} | {:.2} |\n",
            baseline.transactions, baseline.tps, baseline.p50_ms, baseline.p99_ms
        ));
        md.push_str(&format!(
            "\nP4: ONE MEDI / pgbench = {ratio:.2} (goal ≥ {RATIO_GOAL}).\n"
        ));
    }
    if let Some(ours) = sqlite {
        json["p7_sqlite"] = ours.summary();
        if postgres.is_some() {
            md.push('\n');
            md.push_str("| run | orders | failed | orders/s | order p50 ms | order p99 ms | iteration p50 ms | iteration p99 ms |\n|---|---|---|---|---|---|---|---|\n");
        }
        md.push_str(&row("P7 ONE MEDI on SQLite (embedded)", ours));
    }
    md.push_str(&format!(
        "\nRun: `cargo bench --bench commerce_p4_orders -- --clients {clients} --secs {}`. Machine: {}.\n",
        duration.as_secs(),
        machine()
    ));
    let dir = support::write_results("commerce-p4-orders", &json, &md)?;
    println!("{md}");
    eprintln!("results in {}", dir.display());
    Ok(())
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    format!(
        "{cores} cores (shared VM), server, load clients and pgbench on the same machine; release profile, \
         in-process event bus (no REDIS_URL), mail to the file outbox"
    )
}
