//! P3: fan-out. Measures delivered messages/s and publish→receive latency (the `ts` of each event is
//! unique and maps to its send time) in one of two shapes:
//!
//! - broadcast (`--group 0`, the default): every session is a dispatcher following `dispatch`; one crew
//!   publishes `location` frames at a stepped rate, each a `unit_location` event delivered to every
//!   session at once;
//! - groups (`--group N`): sessions are administrators, N of them following each `unit:{id}`, the shape
//!   of Centrifugo's published benchmark (channels of 10 subscribers); one crew session per unit
//!   publishes, and the stepped rate is the total of events per second over all units.
//!
//! `ulimit -n 20000; cargo bench --bench realtime_p3_fanout -- [--sessions 10000] [--group 0]
//! [--rates 1,2,5,10,20] [--step-secs 5]`

mod support;

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use futures_util::{FutureExt, StreamExt, stream};
use onemedi::domain::Role;
use serde_json::json;
use support::{
    Options, Server, location_frame, quantile_ms, r2,
    raw::{Incoming, RawSocket},
    unix_ms,
};
use tokio::time::{Instant, MissedTickBehavior};

const GAP: Duration = Duration::from_secs(1);
const DRAIN: Duration = Duration::from_secs(3);
const P99_GOAL_MS: f64 = 50.0;
const RATE_GOAL: f64 = 50_000.0;
/// Centrifugo's published figure, messages/s per CPU core, cited as the peer.
const CENTRIFUGO_PER_CORE: f64 = 12_500.0;

/// Event `ts` → (send time, step).
type Published = Arc<RwLock<HashMap<i64, (Instant, usize)>>>;

struct Sample {
    step: usize,
    latency_us: u32,
    received_us: u64,
}

fn main() -> anyhow::Result<()> {
    let options = Options::from_env();
    let sessions = options.number("sessions", 10_000)? as usize;
    let group = options.number("group", 0)? as usize;
    let default_rates: &[u64] = if group == 0 {
        &[1, 2, 5, 10, 20]
    } else {
        &[1_000, 2_500, 5_000, 10_000]
    };
    let rates = options.list("rates", default_rates)?;
    let step_secs = options.number("step-secs", 5)?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run(sessions, group, rates, Duration::from_secs(step_secs)))
}

async fn run(sessions: usize, group: usize, rates: Vec<u64>, step: Duration) -> anyhow::Result<()> {
    let server = Server::start().await?;
    // Broadcast: one publishing crew, every session on `dispatch`. Groups: a crew per group of sessions.
    let publishers = if group == 0 { 1 } else { sessions.div_ceil(group) };
    let crews = server.users("bench-p3-crew", Role::Rider, publishers).await?;
    let units = server.crew_units(&crews).await?;
    let (role, topics): (Role, Vec<String>) = if group == 0 {
        (Role::Dispatcher, vec!["dispatch".to_owned(); sessions])
    } else {
        let topics = (0..sessions)
            .map(|i| format!("unit:{}", units[i / group]))
            .collect();
        (Role::Admin, topics)
    };
    let listeners = server.users("bench-p3-listener", role, sessions).await?;
    eprintln!("p3: opening {sessions} sessions");
    let opened: Vec<anyhow::Result<RawSocket>> = stream::iter(listeners.iter().zip(&topics))
        .map(|((_, token), topic)| {
            let subscribe = [format!(r#"{{"type":"subscribe","topic":"{topic}"}}"#)];
            let server = &server;
            async move { server.session(token, &subscribe).await }
        })
        .buffer_unordered(200)
        .collect()
        .await;
    let open_errors = opened.iter().filter(|s| s.is_err()).count();
    if let Some(Err(error)) = opened.iter().find(|s| s.is_err()) {
        eprintln!("p3: {open_errors} sessions did not open, e.g. {error:#}");
    }
    let sockets: Vec<RawSocket> = opened.into_iter().filter_map(Result::ok).collect();
    let subscribed = sockets.len();
    let mut senders: Vec<RawSocket> = stream::iter(&crews)
        .map(|(_, token)| server.session(token, &[]))
        .buffered(100)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    for sender in &mut senders {
        sender.send_text(&location_frame(unix_ms(), 0.0)).await?;
    }
    eprintln!("p3: {subscribed} sessions subscribed; stepping {rates:?} events/s");
    // Let the warm-up event reach everyone before measuring.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let t0 = Instant::now() + Duration::from_millis(500);
    let start_of = move |k: usize| t0 + (step + GAP) * k as u32;
    let end = start_of(rates.len()) + DRAIN;
    let published: Published = Arc::default();
    let mut receivers = Vec::new();
    for socket in sockets {
        receivers.push(tokio::spawn(receive(socket, published.clone(), t0, end)));
    }
    let mut sent = vec![0u64; rates.len()];
    let mut last_ts = 0;
    for (k, rate) in rates.iter().enumerate() {
        let period = Duration::from_secs_f64(1.0 / *rate as f64);
        let mut tick = tokio::time::interval_at(start_of(k), period);
        // The timer's resolution is 1 ms: faster rates catch up on the ticks each millisecond holds.
        tick.set_missed_tick_behavior(if period < Duration::from_millis(5) {
            MissedTickBehavior::Burst
        } else {
            MissedTickBehavior::Skip
        });
        loop {
            // A driver that falls behind stops at the step's end rather than catching up after it.
            if tick.tick().await >= start_of(k) + step || Instant::now() >= start_of(k) + step {
                break;
            }
            // A unique, increasing device time identifies the event on arrival.
            let ts = unix_ms().max(last_ts + 1);
            last_ts = ts;
            published
                .write()
                .map_err(|_| anyhow::anyhow!("poisoned"))?
                .insert(ts, (Instant::now(), k));
            let publisher = &mut senders[sent[k] as usize % publishers];
            publisher
                .send_text(&location_frame(ts, (sent[k] % 100) as f64 * 1e-5))
                .await?;
            sent[k] += 1;
            // Answer the server's heartbeat pings (and skip the echoes) without blocking.
            while let Some(Ok(Incoming::Text(_))) = publisher.next_text().now_or_never() {}
        }
    }
    let mut samples = Vec::new();
    let mut ended_early = 0;
    for receiver in receivers {
        let (received, early) = receiver.await?;
        samples.extend(received);
        ended_early += usize::from(early);
    }
    for mut sender in senders {
        let _ = sender.close().await;
    }
    drop(server);
    report(
        sessions,
        group,
        subscribed,
        &rates,
        step,
        &sent,
        &samples,
        ended_early,
        t0,
        start_of,
    )
}

/// Reads events until `end`; returns the timed samples and whether the session ended before `end`.
async fn receive(
    mut socket: RawSocket,
    published: Published,
    t0: Instant,
    end: Instant,
) -> (Vec<Sample>, bool) {
    let mut samples = Vec::new();
    loop {
        match tokio::time::timeout_at(end, socket.next_text()).await {
            Err(_) => break,
            Ok(Ok(Incoming::Text(text))) => {
                let now = Instant::now();
                let sent = ts_of(text).and_then(|ts| published.read().ok()?.get(&ts).copied());
                if let Some((at, step)) = sent {
                    samples.push(Sample {
                        step,
                        latency_us: u32::try_from((now - at).as_micros()).unwrap_or(u32::MAX),
                        received_us: (now - t0).as_micros() as u64,
                    });
                }
            }
            Ok(_) => return (samples, true),
        }
    }
    let _ = socket.close().await;
    (samples, false)
}

#[expect(clippy::too_many_arguments, reason = "one report of one run")]
fn report(
    sessions: usize,
    group: usize,
    subscribed: usize,
    rates: &[u64],
    step: Duration,
    sent: &[u64],
    samples: &[Sample],
    ended_early: usize,
    t0: Instant,
    start_of: impl Fn(usize) -> Instant,
) -> anyhow::Result<()> {
    let secs = step.as_secs_f64();
    // Sessions each event reaches.
    let fan_out = if group == 0 { subscribed } else { group };
    let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
    let mut rows = Vec::new();
    let mut table = String::new();
    let mut best_within_goal: f64 = 0.0;
    for (k, rate) in rates.iter().enumerate() {
        let window_start = start_of(k) - t0;
        let window = window_start.as_micros() as u64..(window_start + step).as_micros() as u64;
        let mut latencies: Vec<u32> = samples
            .iter()
            .filter(|s| s.step == k)
            .map(|s| s.latency_us)
            .collect();
        latencies.sort_unstable();
        let in_window = samples.iter().filter(|s| window.contains(&s.received_us)).count();
        let delivered = in_window as f64 / secs;
        let expected = sent[k] * fan_out as u64;
        let missing = expected.saturating_sub(latencies.len() as u64);
        let (p50, p99, max) = (
            quantile_ms(&latencies, 0.5),
            quantile_ms(&latencies, 0.99),
            quantile_ms(&latencies, 1.0),
        );
        if p99 <= P99_GOAL_MS && missing == 0 {
            best_within_goal = best_within_goal.max(delivered);
        }
        eprintln!(
            "p3: {rate} events/s → delivered {delivered:.0} msg/s p50 {p50:.2} ms p99 {p99:.2} ms max {max:.1} ms missing {missing}"
        );
        table.push_str(&format!(
            "| {rate} | {} | {delivered:.0} | {:.0} | {p50:.2} | {p99:.2} | {max:.1} | {missing} |\n",
            rate * fan_out as u64,
            delivered / cores,
        ));
        rows.push(json!({
            "events_per_s": rate, "events_sent": sent[k], "target_msgs_per_s": rate * fan_out as u64,
            "delivered_msgs_per_s": r2(delivered), "delivered_msgs_per_s_per_core": r2(delivered / cores),
            "received": latencies.len(), "missing": missing,
            "p50_ms": r2(p50), "p99_ms": r2(p99), "max_ms": r2(max),
        }));
    }
    let command = format!(
        "ulimit -n 20000; cargo bench --bench realtime_p3_fanout -- --sessions {sessions} --group {group} --rates {} --step-secs {}",
        rates.iter().map(u64::to_string).collect::<Vec<_>>().join(","),
        step.as_secs()
    );
    let ratio = r2(best_within_goal / cores / CENTRIFUGO_PER_CORE);
    let topic = if group == 0 {
        "dispatch (all sessions); events: unit_location from one crew session".to_owned()
    } else {
        format!(
            "unit:{{id}}, {group} administrator sessions per unit; events: unit_location from each unit's crew session"
        )
    };
    let shape = if group == 0 {
        format!(
            "{subscribed} dispatcher sessions (of {sessions} requested) follow `dispatch`; one crew session \
             sends `location` frames at a fixed rate per {secs:.0} s step, each delivered to every session \
             as a `unit_location` event."
        )
    } else {
        format!(
            "{subscribed} administrator sessions (of {sessions} requested), {group} per unit, follow \
             `unit:{{id}}` (the shape of Centrifugo's benchmark: channels of 10 subscribers); one crew \
             session per unit sends `location` frames, the step's rate being the total over all units, each \
             delivered to that unit's {group} sessions as a `unit_location` event."
        )
    };
    let json = json!({
        "benchmark": "P3 websocket fan-out",
        "command": command,
        "machine": support::machine(),
        "sessions_requested": sessions,
        "sessions_subscribed": subscribed,
        "sessions_ended_early": ended_early,
        "topic": topic,
        "group": group,
        "latency": "crew client send → listening client receive",
        "step_secs": step.as_secs(),
        "steps": rows,
        "peak_delivered_within_goal_msgs_per_s": r2(best_within_goal),
        "goal": {"msgs_per_s": RATE_GOAL, "msgs_per_s_per_core": 25_000, "p99_ms": P99_GOAL_MS},
        "peer": {"name": "Centrifugo (published figure)", "msgs_per_s_per_core": CENTRIFUGO_PER_CORE},
        "ratio_ours_per_core_to_centrifugo": ratio,
    });
    let markdown = format!(
        "# P3: websocket fan-out\n\n{machine}.\n\nCommand: `{command}`\n\n\
         The load clients speak websocket through the drivers' minimal client (`benches/support/raw.rs`), so \
         that as little of the shared CPU as possible goes to the client side.\n\n\
         {shape} Latency is crew send → listening session receive; *delivered* counts frames \
         received inside the step's window; *missing* = expected − received. Sessions that ended early: \
         {ended_early}.\n\n\
         | events/s | target msg/s | delivered msg/s | per core | p50 ms | p99 ms | max ms | missing |\n\
         |---|---|---|---|---|---|---|---|\n{table}\n\
         Peak delivered with p99 ≤ {P99_GOAL_MS} ms and nothing missing: {best_within_goal:.0} msg/s \
         ({per_core:.0}/core). Peer: Centrifugo's published ≈ {CENTRIFUGO_PER_CORE:.0} msg/s per CPU \
         (cited, not run here); ratio per core = {ratio:.2}.\n\n\
         Goal: ≥ 25,000 msg/s per core (≥ {RATE_GOAL:.0}/s on 2 cores), p99 ≤ {P99_GOAL_MS} ms.\n",
        machine = support::machine(),
        per_core = best_within_goal / cores,
    );
    let name = if group == 0 {
        "realtime-p3-fanout".to_owned()
    } else {
        format!("realtime-p3-fanout-group{group}")
    };
    let dir = support::write_results(&name, &json, &markdown)?;
    eprintln!("p3: results in {}", dir.display());
    Ok(())
}

/// The `"ts":` number inside an event frame, without parsing the whole frame.
pub fn ts_of(text: &[u8]) -> Option<i64> {
    const KEY: &[u8] = b"\"ts\":";
    let at = text.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let digits = text[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&text[at..at + digits]).ok()?.parse().ok()
}
