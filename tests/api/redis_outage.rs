//! Redis down, on both backends: a private `redis-server` process is hung (SIGSTOP) or killed under a
//! running node. Requests stay fast, health says what is down, rate limits fall back to per-node
//! counters, and everything shared resumes by itself when Redis is back. The catalog cache's shared
//! generation never goes backwards, even when Redis restarts empty between a price change and a read.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use reqwest::StatusCode;
use serde_json::json;

use crate::{
    helpers::{TestApp, spawn_app_with, spawn_second_node},
    shop::{medicine, shop},
    ws_client::eventually,
};

/// Far above anything a healthy request takes here, far below the ~9 s a request waited on a dead Redis
/// before the circuit breaker: a request slower than this waited on Redis.
const STALL: Duration = Duration::from_secs(2);

/// A `redis-server` of this test's own on a free port, so it can be stopped and killed.
struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Starts one, or — outside CI, where `redis-server` may be missing — says so and returns `None`.
    async fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Self { port, child: None };
        if !redis.spawn() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "redis-server is required in CI (scripts/services.sh installs it)"
            );
            eprintln!("skipped: redis-server is not installed");
            return None;
        }
        redis.wait_until_up().await;
        Some(redis)
    }

    fn spawn(&mut self) -> bool {
        let spawned = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--port",
            ])
            .arg(self.port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match spawned {
            Ok(child) => {
                self.child = Some(child);
                true
            }
            Err(_) => false,
        }
    }

    async fn wait_until_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("redis-server runs").id();
        let sent = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    /// Hangs it: connections stay open, nothing is answered.
    fn hang(&self) {
        self.signal("-STOP");
    }

    fn resume(&self) {
        self.signal("-CONT");
    }

    /// kill -9, and waits for the process to be gone.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A fresh, empty server on the same port (a restart without persistence).
    async fn restart(&mut self) {
        self.kill();
        assert!(self.spawn());
        self.wait_until_up().await;
    }

    /// Runs one command on it directly.
    async fn query(&self, args: &[&str]) -> redis::Value {
        let client = redis::Client::open(self.url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let mut command = redis::cmd(args[0]);
        for arg in &args[1..] {
            command.arg(*arg);
        }
        command.query_async(&mut conn).await.unwrap()
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // A stopped process must be continued to die cleanly.
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
        }
        self.kill();
    }
}

async fn app_on(redis: &PrivateRedis) -> TestApp {
    let url = redis.url();
    let app = spawn_app_with(move |s| {
        s.redis.url = secrecy::SecretString::from(url);
        s.redis.command_timeout_ms = 50;
        s.rate_limit.auth_per_minute = 3;
    })
    .await;
    // On a loaded machine a command may overrun 50 ms and open the circuit for a moment.
    eventually(async || app.get("/health", None).await.body["redis"] == "ok").await;
    app
}

/// A medicine in the catalog: its public path.
async fn medicine_path(app: &TestApp) -> String {
    let (staff, pain) = shop(app).await;
    let id = medicine(app, &staff, pain, json!({})).await["id"]
        .as_i64()
        .unwrap();
    format!("/api/v1/medicines/{id}")
}

/// GET `path`; returns the reply's status, body and how long it took.
async fn timed_get(app: &TestApp, path: &str) -> (StatusCode, serde_json::Value, Duration) {
    let started = Instant::now();
    let reply = app.get(path, None).await;
    (reply.status, reply.body, started.elapsed())
}

async fn failed_login(app: &TestApp) -> StatusCode {
    app.post(
        "/api/v1/auth/login",
        &json!({"email": "nobody@example.in", "password": "not the password"}),
        None,
    )
    .await
    .status
}

/// Checks the node while Redis is unreachable: fast answers, health naming Redis, per-node limits.
async fn works_without_redis(app: &TestApp, medicine_path: &str) {
    let mut slowest = Duration::ZERO;
    for _ in 0..10 {
        let (status, body, took) = timed_get(app, medicine_path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        slowest = slowest.max(took);
        let (status, body, took) = timed_get(app, "/api/v1/medicines?q=para").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        slowest = slowest.max(took);
    }
    let (status, health, took) = timed_get(app, "/health").await;
    slowest = slowest.max(took);
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{health}");
    assert_eq!(health["redis"], "down", "{health}");
    assert_eq!(health["database"], "ok", "{health}");
    // Still ready for traffic: it serves without Redis.
    let (status, ready, took) = timed_get(app, "/ready").await;
    slowest = slowest.max(took);
    assert_eq!(status, StatusCode::OK, "{ready}");
    assert_eq!(ready["redis"], "down", "{ready}");
    eprintln!("slowest request with redis unreachable: {slowest:?}");
    assert!(slowest < STALL, "a request waited {slowest:?} on redis");

    // Rate limits are counted on this node meanwhile: the fourth failed login in a minute is refused.
    crate::conventions::start_of_a_rate_limit_window().await;
    let started = Instant::now();
    for _ in 0..3 {
        assert_eq!(failed_login(app).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(failed_login(app).await, StatusCode::TOO_MANY_REQUESTS);
    assert!(started.elapsed() < STALL);
}

/// Waits until health says Redis is back, then checks the limits are counted in Redis again.
async fn resumes(app: &TestApp, redis: &PrivateRedis) {
    eventually(async || app.get("/health", None).await.body["redis"] == "ok").await;
    let prefix = app.app.settings.redis.key_prefix.clone();
    // A fresh client key (another forwarded address is not trusted; a signed-in user's key is).
    let (token, user) = app.user_with_role(onemedi::domain::Role::Customer).await;
    let reply = app.get("/api/v1/auth/me", Some(&token)).await;
    assert_eq!(reply.status, StatusCode::OK);
    let counted = redis.query(&["GET", &format!("{prefix}:rl:user:{user}")]).await;
    assert_eq!(counted, redis::Value::BulkString(b"1".to_vec()), "{counted:?}");
}

#[actix_web::test]
async fn with_redis_hung_requests_stay_fast_health_names_it_and_everything_resumes_when_it_answers() {
    let Some(redis) = PrivateRedis::start().await else {
        return;
    };
    let app = app_on(&redis).await;
    let path = medicine_path(&app).await;
    eventually(async || app.get("/health", None).await.body["redis"] == "ok").await;

    redis.hang();
    works_without_redis(&app, &path).await;
    let metrics = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(metrics.contains("onemedi_redis_up 0"), "{metrics}");
    assert!(
        metrics.contains("onemedi_redis_circuit_opened_total 1"),
        "{metrics}"
    );
    redis.resume();
    resumes(&app, &redis).await;
}

#[actix_web::test]
async fn with_redis_killed_requests_stay_fast_and_a_restarted_redis_is_used_again() {
    let Some(mut redis) = PrivateRedis::start().await else {
        return;
    };
    let app = app_on(&redis).await;
    let path = medicine_path(&app).await;

    redis.kill();
    works_without_redis(&app, &path).await;
    redis.restart().await;
    resumes(&app, &redis).await;
}

#[actix_web::test]
async fn a_price_changed_while_redis_restarted_empty_is_never_served_stale_by_another_node() {
    let Some(mut redis) = PrivateRedis::start().await else {
        return;
    };
    let first = app_on(&redis).await;
    let second = spawn_second_node(&first).await;
    let (staff, pain) = shop(&first).await;
    let id = medicine(&first, &staff, pain, json!({})).await["id"]
        .as_i64()
        .unwrap();
    let path = format!("/api/v1/medicines/{id}");
    let set_price = async |price: i64| {
        let reply = first
            .put(
                &format!("/api/v1/admin/medicines/{id}"),
                &json!({"price_paise": price}),
                Some(&staff),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    };
    set_price(2_900).await;
    // The second node caches the answer.
    second.get(&path, None).await;
    let cached = second.get(&path, None).await;
    assert_eq!(cached.headers["x-cache"], "hit");
    assert_eq!(cached.body["price_paise"], 2_900);

    // Redis restarts empty, the price changes on the first node, the second node reads.
    redis.restart().await;
    eventually(async || first.get("/health", None).await.body["redis"] == "ok").await;
    set_price(2_700).await;
    eventually(async || second.get("/health", None).await.body["redis"] == "ok").await;
    for _ in 0..3 {
        let read = second.get(&path, None).await;
        assert_eq!(
            read.body["price_paise"], 2_700,
            "stale price served: {}",
            read.body
        );
    }
}

#[actix_web::test]
async fn the_shared_cache_generation_never_goes_backwards_when_redis_loses_it() {
    let Some(redis) = PrivateRedis::start().await else {
        return;
    };
    let app = app_on(&redis).await;
    let cache = &app.app.catalog_cache;
    // The shared part of the generation (a spurious overrun on a loaded machine answers `None` for a
    // moment: asked again).
    let shared = async || -> u64 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(generation) = cache.generation().await {
                return generation.split('.').nth(1).unwrap().parse().unwrap();
            }
            assert!(Instant::now() < deadline, "the generation stayed unavailable");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let before = shared().await;
    cache.invalidate().await;
    let bumped = shared().await;
    // Redis loses every key (a restart without persistence), then one write.
    redis.query(&["FLUSHALL"]).await;
    cache.invalidate().await;
    let after = shared().await;
    assert!(bumped > before, "{before} → {bumped}");
    assert!(after > bumped, "{bumped} → {after} after the key was lost");
}
