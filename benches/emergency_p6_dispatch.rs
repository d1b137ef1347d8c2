//! P6: emergency dispatch end to end — an ambulance request posted over REST → the offer frame arriving on
//! the chosen crew's websocket — at stepped request rates, under a background of location pings (every
//! crew pings every 4 s). The server runs as in production: PostgreSQL + Redis (the bus relays through
//! Redis even with one node).
//!
//! Baseline in the same run: the same flow composed by hand from Redis GEOSEARCH (nearest unit) + one
//! PostgreSQL INSERT (the request row) + Redis PUBLISH to the unit's channel, received by a subscriber.
//!
//! Requests are category 4 (45 s offer timeout) and are never answered, so each one holds exactly one
//! unit for the whole run: the fleet must be larger than the number of requests.
//!
//! `cargo bench --bench emergency_p6_dispatch -- [--units 4000] [--rates 100,300,500] [--step-secs 3]`
//! (needs PostgreSQL at `P6_DATABASE_URL`, default postgres://postgres@127.0.0.1:5432/test, and Redis at
//! `P6_REDIS_URL`, default redis://127.0.0.1:6379; a scratch database is created and dropped).

mod support;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use futures_util::{StreamExt, stream};
use onemedi::domain::Role;
use serde_json::{Value, json};
use support::{
    Options, Rng, Server, location_at, quantile_ms, r2,
    raw::{Incoming, RawSocket},
    unix_ms,
};
use tokio::time::{Instant, MissedTickBehavior};

/// Latency goal (p99, ms) at the highest rate, and the baseline ratio goal.
const P99_GOAL_MS: f64 = 20.0;
const BASELINE_RATIO_GOAL: f64 = 3.0;
/// Every crew pings this often.
const PING_PERIOD: Duration = Duration::from_secs(4);
/// Pause between steps; and how long offers are still awaited after the last request.
const GAP: Duration = Duration::from_secs(2);
/// City centre and half-width of the square the units and calls are spread over (≈ ±5.5 km).
const CENTRE: (f64, f64) = (12.9716, 77.5946);
const SPREAD_DEG: f64 = 0.05;

fn main() -> anyhow::Result<()> {
    let options = Options::from_env();
    let units = options.number("units", 4000)? as usize;
    let rates = options.list("rates", &[100, 300, 500])?;
    let step_secs = options.number("step-secs", 3)?;
    let total: u64 = rates.iter().map(|r| r * step_secs).sum();
    anyhow::ensure!(
        (total as usize) < units,
        "{total} requests need more than {units} units"
    );
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run(units, rates, Duration::from_secs(step_secs)))
}

/// One step's measurements.
#[derive(Debug, Default)]
struct Step {
    rate: u64,
    sent: usize,
    delivered: usize,
    latencies_us: Vec<u32>,
    /// Request posted → its `201` received (ours only): the REST half of the flow, for locating a tail.
    answered_us: Vec<u32>,
}

impl Step {
    fn summary(&self) -> Value {
        let mut sorted = self.latencies_us.clone();
        sorted.sort_unstable();
        let mut summary = json!({
            "rate_per_s": self.rate,
            "sent": self.sent,
            "delivered": self.delivered,
            "p50_ms": r2(quantile_ms(&sorted, 0.50)),
            "p90_ms": r2(quantile_ms(&sorted, 0.90)),
            "p99_ms": r2(quantile_ms(&sorted, 0.99)),
            "max_ms": r2(quantile_ms(&sorted, 1.0)),
        });
        if !self.answered_us.is_empty() {
            let mut answered = self.answered_us.clone();
            answered.sort_unstable();
            summary["created_201_p50_ms"] = json!(r2(quantile_ms(&answered, 0.50)));
            summary["created_201_p99_ms"] = json!(r2(quantile_ms(&answered, 0.99)));
        }
        summary
    }

    fn p99(&self) -> f64 {
        let mut sorted = self.latencies_us.clone();
        sorted.sort_unstable();
        quantile_ms(&sorted, 0.99)
    }
}

async fn scratch_database(base: &str) -> anyhow::Result<(String, String)> {
    let name = format!("onemedi_bench_p6_{}", std::process::id());
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

async fn run(units: usize, rates: Vec<u64>, step: Duration) -> anyhow::Result<()> {
    let base = std::env::var("P6_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let redis_url = std::env::var("P6_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let (url, name) = scratch_database(&base).await?;
    let outcome = measure(&url, &redis_url, units, &rates, step).await;
    drop_database(&base, &name).await?;
    let (ours, baseline) = outcome?;
    report(units, step, &ours, &baseline)
}

async fn measure(
    url: &str,
    redis_url: &str,
    units: usize,
    rates: &[u64],
    step: Duration,
) -> anyhow::Result<(Vec<Step>, Vec<Step>)> {
    let server = Server::start_on(Some(url), Some(redis_url)).await?;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let homes: Vec<(f64, f64)> = (0..units).map(|_| rng.point(CENTRE, SPREAD_DEG)).collect();
    let crews = server.users("bench-p6-crew", Role::Paramedic, units).await?;
    let unit_ids = server.ambulances(&crews, &homes).await?;
    let (_, dispatcher) = server
        .users("bench-p6-dispatcher", Role::Dispatcher, 1)
        .await?
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no dispatcher"))?;
    eprintln!("p6: {units} crewed ambulances inserted; opening sessions");
    let sockets: Vec<RawSocket> = stream::iter(crews.iter().zip(&unit_ids).zip(&homes))
        .map(|(((_, token), unit), home)| {
            let commands = [
                format!(r#"{{"type":"subscribe","topic":"unit:{unit}"}}"#),
                location_at(unix_ms(), home.0, home.1),
            ];
            let server = &server;
            async move { server.session(token, &commands).await }
        })
        .buffered(100)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    eprintln!("p6: {} sessions open", sockets.len());

    // Offers received: request id → arrival instant.
    let arrivals: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
    let t0 = Instant::now() + Duration::from_secs(1);
    let end = t0 + (step + GAP) * rates.len() as u32 + GAP;
    let mut crew_tasks = Vec::new();
    for (i, (socket, home)) in sockets.into_iter().zip(homes.iter().copied()).enumerate() {
        let arrivals = arrivals.clone();
        let offset = PING_PERIOD.mul_f64(i as f64 / units as f64);
        crew_tasks.push(tokio::spawn(crew(socket, home, arrivals, t0 + offset, end)));
    }

    let client = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;
    let endpoint = format!(
        "http://127.0.0.1:{}/api/v1/emergency/ambulance-requests",
        server.port
    );
    let mut steps = Vec::new();
    let mut sends: Vec<(usize, Instant, i64)> = Vec::new();
    for (k, rate) in rates.iter().enumerate() {
        let start = t0 + (step + GAP) * k as u32;
        let stop = start + step;
        let period = Duration::from_secs_f64(1.0 / *rate as f64);
        let mut tick = tokio::time::interval_at(start, period);
        tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let mut posts = Vec::new();
        loop {
            let at = tick.tick().await;
            if at >= stop {
                break;
            }
            let pickup = rng.point(CENTRE, SPREAD_DEG);
            let body = json!({"pickup": {"lat": pickup.0, "lng": pickup.1}, "category": 4});
            let request = client.post(&endpoint).bearer_auth(&dispatcher).json(&body);
            posts.push(tokio::spawn(async move {
                let sent = Instant::now();
                let reply = request.send().await?;
                anyhow::ensure!(reply.status().as_u16() == 201, "POST answered {}", reply.status());
                let created: Value = reply.json().await?;
                let answered = sent.elapsed();
                let id = created["id"].as_i64().ok_or_else(|| anyhow::anyhow!("no id"))?;
                Ok::<_, anyhow::Error>((sent, id, answered))
            }));
        }
        let mut this = Step {
            rate: *rate,
            ..Step::default()
        };
        for post in posts {
            match post.await? {
                Ok((sent, id, answered)) => {
                    this.sent += 1;
                    this.answered_us
                        .push(u32::try_from(answered.as_micros()).unwrap_or(u32::MAX));
                    sends.push((k, sent, id));
                }
                Err(error) => eprintln!("p6: a request failed: {error:#}"),
            }
        }
        steps.push(this);
        eprintln!("p6: step {rate}/s sent");
    }
    tokio::time::sleep_until(end).await;
    for task in crew_tasks {
        task.abort();
    }
    attach(&mut steps, sends, &arrivals)?;
    drop(server);
    let baseline = baseline(url, redis_url, &homes, rates, step).await?;
    Ok((steps, baseline))
}

/// Matches each sent request (step, send instant, id) with its arrival and records the latency.
fn attach(
    steps: &mut [Step],
    sends: Vec<(usize, Instant, i64)>,
    arrivals: &Mutex<HashMap<i64, Instant>>,
) -> anyhow::Result<()> {
    let arrivals = arrivals.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    for (k, sent, id) in sends {
        if let (Some(arrived), Some(step)) = (arrivals.get(&id), steps.get_mut(k)) {
            step.delivered += 1;
            step.latencies_us
                .push(u32::try_from(arrived.saturating_duration_since(sent).as_micros()).unwrap_or(u32::MAX));
        }
    }
    Ok(())
}

/// One crew: pings every [`PING_PERIOD`] from `first` until `end`, and notes each offer's arrival.
async fn crew(
    mut socket: RawSocket,
    home: (f64, f64),
    arrivals: Arc<Mutex<HashMap<i64, Instant>>>,
    first: Instant,
    end: Instant,
) -> anyhow::Result<()> {
    let mut tick = tokio::time::interval_at(first, PING_PERIOD);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let over = tokio::time::sleep_until(end);
    tokio::pin!(over);
    loop {
        tokio::select! {
            () = &mut over => return Ok(()),
            _ = tick.tick() => socket.send_text(&location_at(unix_ms(), home.0, home.1)).await?,
            incoming = socket.next_text() => match incoming? {
                Incoming::Text(text) if text.starts_with(br#"{"type":"offer""#) => {
                    let now = Instant::now();
                    let frame: Value = serde_json::from_slice(text)?;
                    if let Some(id) = frame["event"]["request"]["id"].as_i64()
                        && let Ok(mut arrivals) = arrivals.lock()
                    {
                        arrivals.entry(id).or_insert(now);
                    }
                }
                Incoming::Text(_) => {}
                Incoming::Closed => anyhow::bail!("the server closed a crew's session"),
            },
        }
    }
}

/// The hand-composed flow: GEOSEARCH the nearest free unit, INSERT the request, PUBLISH the offer on the
/// unit's channel; a subscriber times the arrival. Location pings go to GEOADD at the same background
/// rate. Units taken are removed from the geo set so each request gets a distinct unit, as ours do.
async fn baseline(
    url: &str,
    redis_url: &str,
    homes: &[(f64, f64)],
    rates: &[u64],
    step: Duration,
) -> anyhow::Result<Vec<Step>> {
    let key = format!("bench:p6:{}", std::process::id());
    let channel = format!("{key}:offers");
    let client = redis::Client::open(redis_url)?;
    let mut redis_conn = client.get_connection_manager().await?;
    let mut pipe = redis::pipe();
    for (i, (lat, lng)) in homes.iter().enumerate() {
        pipe.cmd("GEOADD").arg(&key).arg(*lng).arg(*lat).arg(i);
    }
    pipe.query_async::<()>(&mut redis_conn).await?;
    let mut pg = AsyncPgConnection::establish(url).await?;
    pg.batch_execute(
        "CREATE TABLE IF NOT EXISTS baseline_requests (id BIGSERIAL PRIMARY KEY, lat DOUBLE PRECISION NOT \
         NULL, lng DOUBLE PRECISION NOT NULL, unit BIGINT, created_at TIMESTAMP NOT NULL DEFAULT \
         CURRENT_TIMESTAMP)",
    )
    .await?;
    drop(pg);
    let manager =
        diesel_async::pooled_connection::AsyncDieselConnectionManager::<AsyncPgConnection>::new(url);
    let pool = diesel_async::pooled_connection::deadpool::Pool::builder(manager)
        .max_size(16)
        .build()?;

    let arrivals: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(&channel).await?;
    let listener = {
        let arrivals = arrivals.clone();
        tokio::spawn(async move {
            let mut messages = pubsub.on_message();
            while let Some(message) = messages.next().await {
                let now = Instant::now();
                let payload: String = message.get_payload()?;
                if let Some(id) = payload.split(':').nth(1).and_then(|id| id.parse::<i64>().ok())
                    && let Ok(mut arrivals) = arrivals.lock()
                {
                    arrivals.insert(id, now);
                }
            }
            Ok::<_, anyhow::Error>(())
        })
    };
    let t0 = Instant::now() + Duration::from_millis(500);
    let end = t0 + (step + GAP) * rates.len() as u32;
    // Background pings: every unit GEOADDs every PING_PERIOD, spread evenly.
    let pinger = {
        let mut conn = redis_conn.clone();
        let key = key.clone();
        let homes = homes.to_vec();
        tokio::spawn(async move {
            let period = PING_PERIOD.div_f64(homes.len() as f64);
            let mut tick = tokio::time::interval_at(t0, period.max(Duration::from_micros(50)));
            tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
            let mut i = 0usize;
            loop {
                if tick.tick().await >= end {
                    break;
                }
                let (lat, lng) = homes[i % homes.len()];
                let _: Result<(), _> = redis::cmd("GEOADD")
                    .arg(&key)
                    .arg(lng)
                    .arg(lat)
                    .arg(i % homes.len())
                    .query_async(&mut conn)
                    .await;
                i += 1;
            }
        })
    };
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut steps = Vec::new();
    let mut sends = Vec::new();
    for (k, rate) in rates.iter().enumerate() {
        let start = t0 + (step + GAP) * k as u32;
        let stop = start + step;
        let mut tick = tokio::time::interval_at(start, Duration::from_secs_f64(1.0 / *rate as f64));
        tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let mut flows = Vec::new();
        loop {
            if tick.tick().await >= stop {
                break;
            }
            let pickup = rng.point(CENTRE, SPREAD_DEG);
            let (mut conn, pool, key, channel) =
                (redis_conn.clone(), pool.clone(), key.clone(), channel.clone());
            flows.push(tokio::spawn(async move {
                let sent = Instant::now();
                let nearest: Vec<String> = redis::cmd("GEOSEARCH")
                    .arg(&key)
                    .arg("FROMLONLAT")
                    .arg(pickup.1)
                    .arg(pickup.0)
                    .arg("BYRADIUS")
                    .arg(15)
                    .arg("km")
                    .arg("ASC")
                    .arg("COUNT")
                    .arg(1)
                    .query_async(&mut conn)
                    .await?;
                let unit: i64 = nearest
                    .into_iter()
                    .next()
                    .and_then(|u| u.parse().ok())
                    .unwrap_or(-1);
                let _: i64 = redis::cmd("ZREM")
                    .arg(&key)
                    .arg(unit)
                    .query_async(&mut conn)
                    .await?;
                let mut pg = pool.get().await?;
                let id: i64 = diesel::sql_query(format!(
                    "INSERT INTO baseline_requests (lat, lng, unit) VALUES ({}, {}, {unit}) RETURNING id",
                    pickup.0, pickup.1
                ))
                .get_result::<Returned>(&mut *pg)
                .await?
                .id;
                drop(pg);
                let _: i64 = redis::cmd("PUBLISH")
                    .arg(&channel)
                    .arg(format!("{unit}:{id}"))
                    .query_async(&mut conn)
                    .await?;
                Ok::<_, anyhow::Error>((sent, id))
            }));
        }
        let mut this = Step {
            rate: *rate,
            ..Step::default()
        };
        for flow in flows {
            match flow.await? {
                Ok((sent, id)) => {
                    this.sent += 1;
                    sends.push((k, sent, id));
                }
                Err(error) => eprintln!("p6 baseline: a flow failed: {error:#}"),
            }
        }
        steps.push(this);
    }
    tokio::time::sleep(GAP).await;
    pinger.abort();
    listener.abort();
    let _: Result<(), _> = redis::cmd("DEL").arg(&key).query_async(&mut redis_conn).await;
    attach(&mut steps, sends, &arrivals)?;
    Ok(steps)
}

#[derive(diesel::QueryableByName)]
struct Returned {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
}

fn report(units: usize, step: Duration, ours: &[Step], baseline: &[Step]) -> anyhow::Result<()> {
    let top = ours.last().map_or(f64::NAN, Step::p99);
    let top_baseline = baseline.last().map_or(f64::NAN, Step::p99);
    let ratio = top_baseline / top;
    let machine = support::machine().replace(
        "SQLite, in-process event bus (no REDIS_URL)",
        "PostgreSQL + Redis",
    );
    let json = json!({
        "benchmark": "P6 emergency dispatch: request posted → offer on the crew's websocket",
        "machine": machine,
        "units": units,
        "background_pings_per_s": r2(units as f64 / PING_PERIOD.as_secs_f64()),
        "step_secs": step.as_secs(),
        "onemedi": ours.iter().map(Step::summary).collect::<Vec<_>>(),
        "baseline_geosearch_insert_publish": baseline.iter().map(Step::summary).collect::<Vec<_>>(),
        "goal": {"p99_ms_at_top_rate": P99_GOAL_MS, "baseline_p99_ratio": BASELINE_RATIO_GOAL},
        "achieved": {"p99_ms_at_top_rate": r2(top), "baseline_p99_ratio": r2(ratio)},
    });
    let mut md = format!(
        "# P6: emergency dispatch end to end\n\nRequest posted over REST → offer frame on the nearest crew's \
         websocket, {units} crewed ambulances each pinging every {} s ({:.0} pings/s), {} s per step. Server: \
         release build, PostgreSQL + Redis, one node. Baseline: Redis GEOSEARCH + PostgreSQL INSERT + Redis \
         PUBLISH → subscriber, same machine, same rates, same background GEOADD rate. The 201 column is ours \
         posted → `201 Created` received, the REST half of the flow.\n\n\
         | rate/s | ONE MEDI sent | delivered | p50 ms | p99 ms | 201 p50 / p99 ms | baseline p50 ms | baseline p99 ms |\n\
         |---|---|---|---|---|---|---|---|\n",
        PING_PERIOD.as_secs(),
        units as f64 / PING_PERIOD.as_secs_f64(),
        step.as_secs()
    );
    for (a, b) in ours.iter().zip(baseline) {
        let (sa, sb) = (a.summary(), b.summary());
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} / {} | {} | {} |\n",
            a.rate,
            a.sent,
            a.delivered,
            sa["p50_ms"],
            sa["p99_ms"],
            sa["created_201_p50_ms"],
            sa["created_201_p99_ms"],
            sb["p50_ms"],
            sb["p99_ms"]
        ));
    }
    md.push_str(&format!(
        "\nGoal: p99 ≤ {P99_GOAL_MS} ms at the top rate — achieved {:.2} ms; baseline p99 / ours = {:.2} (goal ≥ \
         {BASELINE_RATIO_GOAL}).\n\nRun: `cargo bench --bench emergency_p6_dispatch`. Machine: {}.\n",
        top,
        ratio,
        machine
    ));
    let dir = support::write_results("emergency-p6-dispatch", &json, &md)?;
    println!("{md}");
    eprintln!("p6: results in {}", dir.display());
    Ok(())
}
