//! P2: location ingest over websockets. Crews each hold one session, follow their own `unit:{id}` topic
//! and send `location` frames at a stepped total rate; the echo of each `unit_location` event bounds the
//! receipt→fleet-index latency (the index is fed by the same bus delivery, before the hub fan-out).
//! Peer in the same run: Redis GEOADD with as many clients (`redis-benchmark`).
//!
//! `cargo bench --bench realtime_p2_location_ingest -- [--sessions 1000] [--steps 1000,5000,…]
//! [--step-secs 5] [--redis redis://127.0.0.1:6379]` (with `--redis` the server relays every event through
//! Redis, as a node of a cluster does; results then go to `realtime-p2-location-ingest-redis.*`)

mod support;

use std::{collections::VecDeque, process::Command, sync::Arc, time::Duration};

use futures_util::{StreamExt, stream};
use onemedi::domain::Role;
use serde_json::json;
use support::{
    Options, Server, location_frame, quantile_ms, r2,
    raw::{Incoming, RawSocket},
    unix_ms, write_location_frame,
};
use tokio::time::{Instant, MissedTickBehavior};

/// Pause between steps so one step's backlog does not land in the next.
const GAP: Duration = Duration::from_secs(1);
/// How long after the last step echoes are still awaited.
const DRAIN: Duration = Duration::from_secs(3);
/// Latency goal (p99, ms) and throughput goal (updates/s).
const P99_GOAL_MS: f64 = 20.0;
const RATE_GOAL: f64 = 50_000.0;
const REDIS_KEY: &str = "bench:fleet";

/// One echoed update: the step its frame was sent in, send→echo latency, echo time since start.
struct Sample {
    step: usize,
    latency_us: u32,
    received_us: u64,
}

struct Plan {
    sessions: usize,
    steps: Vec<u64>,
    step: Duration,
    t0: Instant,
    /// With `--redis URL`, the server relays every event through Redis pub/sub, as a node of a cluster.
    redis: Option<String>,
}

impl Plan {
    fn start_of(&self, k: usize) -> Instant {
        self.t0 + (self.step + GAP) * k as u32
    }

    fn end(&self) -> Instant {
        self.start_of(self.steps.len())
    }
}

fn main() -> anyhow::Result<()> {
    let options = Options::from_env();
    let sessions = options.number("sessions", 1000)? as usize;
    let steps = options.list("steps", &[1_000, 5_000, 10_000, 20_000, 50_000, 100_000])?;
    let step_secs = options.number("step-secs", 5)?;
    let redis = Some(options.word("redis", "")).filter(|url| !url.is_empty());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run(sessions, steps, Duration::from_secs(step_secs), redis))
}

async fn run(sessions: usize, steps: Vec<u64>, step: Duration, redis: Option<String>) -> anyhow::Result<()> {
    let server = Server::start_on(None, redis.as_deref()).await?;
    let crews = server.users("bench-p2-crew", Role::Rider, sessions).await?;
    let units = server.crew_units(&crews).await?;
    eprintln!("p2: {} crews inserted; opening sessions", units.len());
    // Each session is read from the moment it opens (its warm-up echo, then the server's heartbeat pings)
    // until all are open: opening a thousand can outlast the server's client timeout.
    let (all_open, opened) = tokio::sync::watch::channel(false);
    let idle: Vec<tokio::task::JoinHandle<anyhow::Result<RawSocket>>> =
        stream::iter(crews.iter().zip(&units))
            .map(|((_, token), unit)| {
                let commands = [format!(r#"{{"type":"subscribe","topic":"unit:{unit}"}}"#)];
                let server = &server;
                let opened = opened.clone();
                async move {
                    // The first ping is sent after the subscription's ack, without a `ref`: its echo is
                    // the warm-up, and an echo can arrive before the ack of the command that caused it.
                    let mut socket = server.session(token, &commands).await?;
                    socket.send_text(&location_frame(unix_ms(), 0.0)).await?;
                    let socket = warmed_up(socket).await?;
                    Ok::<_, anyhow::Error>(tokio::spawn(keep_alive(socket, opened)))
                }
            })
            .buffered(100)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<anyhow::Result<_>>()?;
    all_open.send(true)?;
    let mut sockets = Vec::with_capacity(idle.len());
    for session in idle {
        sockets.push(session.await??);
    }
    eprintln!(
        "p2: {} sessions open; stepping {steps:?} updates/s",
        sockets.len()
    );
    let plan = Arc::new(Plan {
        sessions,
        steps: steps.clone(),
        step,
        t0: Instant::now() + Duration::from_millis(500),
        redis,
    });
    let mut tasks = Vec::new();
    for (index, socket) in sockets.into_iter().enumerate() {
        tasks.push(tokio::spawn(crew(index, socket, plan.clone())));
    }
    let mut sent = vec![0u64; steps.len()];
    let mut samples = Vec::new();
    let mut failed_sessions = 0;
    for task in tasks {
        match task.await? {
            Ok((counts, received)) => {
                for (total, n) in sent.iter_mut().zip(counts) {
                    *total += n;
                }
                samples.extend(received);
            }
            Err(error) => {
                failed_sessions += 1;
                eprintln!("p2: a session failed: {error:#}");
            }
        }
    }
    drop(server);
    let redis = redis_geoadd(sessions)?;
    report(&plan, &sent, &samples, failed_sessions, redis)
}

/// Waits for the warm-up location's echo on the unit topic, so it is not taken for a measured one.
async fn warmed_up(mut socket: RawSocket) -> anyhow::Result<RawSocket> {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), socket.next_text()).await?? {
            Incoming::Text(text) if is_location(text) => return Ok(socket),
            Incoming::Text(_) => {}
            Incoming::Closed => anyhow::bail!("closed during warm-up"),
        }
    }
}

/// Reads an open session (answering the server's heartbeat pings) until every session is open.
async fn keep_alive(
    mut socket: RawSocket,
    mut opened: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<RawSocket> {
    loop {
        tokio::select! {
            _ = opened.wait_for(|all| *all) => return Ok(socket),
            incoming = socket.next_text() => if let Incoming::Closed = incoming? {
                anyhow::bail!("closed before the steps");
            },
        }
    }
}

/// Whether a server frame is a `unit_location` event.
fn is_location(text: &[u8]) -> bool {
    const NEEDLE: &[u8] = b"unit_location";
    text.windows(NEEDLE.len()).any(|w| w == NEEDLE)
}

/// One crew: sends its share of each step's rate, spread evenly, and times each echo. Sending and
/// reading share the task: echoes come back in order, so the oldest unanswered send is the echo's.
async fn crew(
    index: usize,
    mut socket: RawSocket,
    plan: Arc<Plan>,
) -> anyhow::Result<(Vec<u64>, Vec<Sample>)> {
    let mut pending: VecDeque<(Instant, usize)> = VecDeque::new();
    let mut samples = Vec::new();
    let mut echoed = |pending: &mut VecDeque<(Instant, usize)>| {
        let now = Instant::now();
        if let Some((at, step)) = pending.pop_front() {
            samples.push(Sample {
                step,
                latency_us: u32::try_from((now - at).as_micros()).unwrap_or(u32::MAX),
                received_us: (now - plan.t0).as_micros() as u64,
            });
        }
    };
    let mut sent = vec![0u64; plan.steps.len()];
    let mut frame = String::with_capacity(160);
    let offset = index as f64 / plan.sessions as f64;
    for (k, rate) in plan.steps.iter().enumerate() {
        let period = Duration::from_secs_f64(plan.sessions as f64 / *rate as f64);
        let start = plan.start_of(k);
        let end = start + plan.step;
        let mut tick = tokio::time::interval_at(start + period.mul_f64(offset), period);
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                at = tick.tick() => {
                    if at >= end {
                        break;
                    }
                    let jitter = (sent[k] % 100) as f64 * 1e-5;
                    write_location_frame(&mut frame, unix_ms(), jitter);
                    pending.push_back((Instant::now(), k));
                    socket.send_text(&frame).await?;
                    sent[k] += 1;
                }
                incoming = socket.next_text() => match incoming? {
                    Incoming::Text(text) if is_location(text) => echoed(&mut pending),
                    Incoming::Text(_) => {}
                    Incoming::Closed => anyhow::bail!("the server closed the session"),
                },
            }
        }
    }
    let drained = tokio::time::sleep_until(plan.end() + DRAIN);
    tokio::pin!(drained);
    loop {
        tokio::select! {
            () = &mut drained => break,
            incoming = socket.next_text() => match incoming? {
                Incoming::Text(text) if is_location(text) => echoed(&mut pending),
                Incoming::Text(_) => {}
                Incoming::Closed => break,
            },
        }
    }
    let _ = socket.close().await;
    Ok((sent, samples))
}

/// Redis GEOADD throughput with `clients` connections, via `redis-benchmark`; the key is deleted after.
fn redis_geoadd(clients: usize) -> anyhow::Result<Option<(f64, String)>> {
    let args = [
        "-h".to_owned(),
        "127.0.0.1".to_owned(),
        "-p".to_owned(),
        "6379".to_owned(),
        "-c".to_owned(),
        clients.to_string(),
        "-n".to_owned(),
        "500000".to_owned(),
        "-q".to_owned(),
        "GEOADD".to_owned(),
        REDIS_KEY.to_owned(),
        "77.59".to_owned(),
        "12.97".to_owned(),
        "unit".to_owned(),
    ];
    let output = match Command::new("redis-benchmark").args(&args).output() {
        Ok(output) => output,
        Err(error) => {
            eprintln!("p2: redis-benchmark not run: {error}");
            return Ok(None);
        }
    };
    let _ = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", "6379", "DEL", REDIS_KEY])
        .output();
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text
        .split(['\r', '\n'])
        .rfind(|l| l.contains("requests per second"))
        .unwrap_or_default()
        .trim()
        .to_owned();
    let rate = line
        .split(" requests per second")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse::<f64>().ok());
    Ok(rate
        .map(|r| (r, format!("redis-benchmark {}", args.join(" "))))
        .map(|(r, c)| {
            eprintln!("p2: redis {line}");
            (r, c)
        }))
}

fn report(
    plan: &Plan,
    sent: &[u64],
    samples: &[Sample],
    failed_sessions: usize,
    redis: Option<(f64, String)>,
) -> anyhow::Result<()> {
    let secs = plan.step.as_secs_f64();
    let mut rows = Vec::new();
    let mut table = String::new();
    let mut best: f64 = 0.0;
    let mut best_within_goal: f64 = 0.0;
    for (k, target) in plan.steps.iter().enumerate() {
        let window_start = plan.start_of(k) - plan.t0;
        let window = window_start.as_micros() as u64..(window_start + plan.step).as_micros() as u64;
        let mut latencies: Vec<u32> = samples
            .iter()
            .filter(|s| s.step == k)
            .map(|s| s.latency_us)
            .collect();
        latencies.sort_unstable();
        let in_window = samples.iter().filter(|s| window.contains(&s.received_us)).count();
        let achieved = in_window as f64 / secs;
        let offered = sent[k] as f64 / secs;
        let (p50, p99, max) = (
            quantile_ms(&latencies, 0.5),
            quantile_ms(&latencies, 0.99),
            quantile_ms(&latencies, 1.0),
        );
        let lost = sent[k].saturating_sub(latencies.len() as u64);
        best = best.max(achieved);
        if p99 <= P99_GOAL_MS {
            best_within_goal = best_within_goal.max(achieved);
        }
        eprintln!(
            "p2: target {target}/s offered {offered:.0}/s achieved {achieved:.0}/s p50 {p50:.2} ms p99 {p99:.2} ms max {max:.1} ms lost {lost}"
        );
        table.push_str(&format!(
            "| {target} | {offered:.0} | {achieved:.0} | {p50:.2} | {p99:.2} | {max:.1} | {lost} |\n"
        ));
        rows.push(json!({
            "target_updates_per_s": target, "offered_updates_per_s": r2(offered),
            "achieved_updates_per_s": r2(achieved), "echoed": latencies.len(), "sent": sent[k],
            "not_echoed": lost, "p50_ms": r2(p50), "p99_ms": r2(p99), "max_ms": r2(max),
        }));
    }
    let command = format!(
        "ulimit -n 20000; cargo bench --bench realtime_p2_location_ingest -- --sessions {} --steps {} --step-secs {}{}",
        plan.sessions,
        plan.steps
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(","),
        plan.step.as_secs(),
        plan.redis
            .as_ref()
            .map_or(String::new(), |url| format!(" --redis {url}"))
    );
    let machine = match &plan.redis {
        Some(_) => support::machine().replace(
            "in-process event bus (no REDIS_URL)",
            "every event also relayed through Redis pub/sub (REDIS_URL), as on a node of a cluster",
        ),
        None => support::machine(),
    };
    let (redis_rate, redis_command) = redis.unzip();
    let ratio = redis_rate.map(|r| r2(best_within_goal / r));
    let json = json!({
        "benchmark": "P2 location ingest over websockets",
        "command": command,
        "machine": machine,
        "sessions": plan.sessions,
        "step_secs": plan.step.as_secs(),
        "latency": "client send → echo of the unit_location event on the crew's own unit:{id} topic (bounds receipt → fleet index)",
        "steps": rows,
        "failed_sessions": failed_sessions,
        "peak_achieved_updates_per_s": r2(best),
        "peak_achieved_within_p99_goal_updates_per_s": r2(best_within_goal),
        "goal": {"updates_per_s": RATE_GOAL, "p99_ms": P99_GOAL_MS},
        "peer": {"name": "Redis GEOADD", "command": redis_command, "requests_per_s": redis_rate},
        "ratio_ours_within_goal_to_redis": ratio,
    });
    let markdown = format!(
        "# P2: location ingest over websockets\n\n{machine}.\n\nCommand: `{command}`\n\n\
         {sessions} crew sessions, each following its own `unit:{{id}}` topic and sending `location` frames; the \
         total rate rises in {secs:.0} s steps. Latency is client send → the crew receiving the resulting \
         `unit_location` event, which bounds receipt → visible in the fleet index (the index is updated in the \
         same bus delivery, before the hub fan-out). *Achieved* counts events echoed back inside the step's window. \
         The load clients speak websocket through the drivers' minimal client (`benches/support/raw.rs`), so \
         that as little of the shared CPU as possible goes to the client side.\n\n\
         | target updates/s | offered/s | achieved/s | p50 ms | p99 ms | max ms | not echoed |\n|---|---|---|---|---|---|---|\n{table}\n\
         Failed sessions: {failed_sessions}. Peak achieved: {best:.0}/s; peak with p99 ≤ {P99_GOAL_MS} ms: {best_within_goal:.0}/s.\n\n\
         Peer in the same run: `{peer_command}` → {peer_rate} GEOADD/s; ratio ours (within the p99 goal) / Redis = {ratio}.\n\n\
         Goal: ≥ {RATE_GOAL:.0} updates/s with p99 ≤ {P99_GOAL_MS} ms.\n",
        machine = machine,
        sessions = plan.sessions,
        peer_command = redis_command
            .clone()
            .unwrap_or_else(|| "redis-benchmark (not run)".into()),
        peer_rate = redis_rate.map_or("—".to_owned(), |r| format!("{r:.0}")),
        ratio = ratio.map_or("—".to_owned(), |r| format!("{r:.2}")),
    );
    let name = match plan.redis {
        Some(_) => "realtime-p2-location-ingest-redis",
        None => "realtime-p2-location-ingest",
    };
    let dir = support::write_results(name, &json, &markdown)?;
    eprintln!("p2: results in {}", dir.display());
    Ok(())
}
