//! `Idempotency-Key` leases: a request whose client hung up still finishes and is replayed; a request
//! whose node was killed with SIGKILL is run afresh by a retry once its lease lapses (and answered 409
//! with `Retry-After` until then); uploads larger than a JSON body keep working with a key.
//!
//! The request held open is `POST /payments/create-order`, which calls Razorpay's Orders API: a
//! loopback stand-in answers it only when the test opens its gate.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use actix_web::{App, HttpResponse, HttpServer, web};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use onemedi::{db::schema, on_conn};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::{
    helpers::{TestApp, spawn_app_with},
    payments::razorpay_order,
    prescriptions::pdf_bytes,
};

/// A Razorpay Orders API stand-in whose answers wait for the gate: `calls` counts the orders asked
/// for, and `gate.add_permits(n)` lets `n` of them be answered.
struct GatedRazorpay {
    base: String,
    calls: Arc<AtomicUsize>,
    gate: Arc<Semaphore>,
}

impl GatedRazorpay {
    fn calls(&self) -> usize {
        AtomicUsize::load(&self.calls, Ordering::SeqCst)
    }
}

fn gated_razorpay() -> GatedRazorpay {
    let calls = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(0));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (seen, held) = (calls.clone(), gate.clone());
    let server = HttpServer::new(move || {
        let (seen, held) = (seen.clone(), held.clone());
        App::new().route(
            "/v1/orders",
            web::post().to(move |body: web::Json<Value>| {
                let (seen, held) = (seen.clone(), held.clone());
                async move {
                    let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
                    held.acquire().await.unwrap().forget();
                    HttpResponse::Ok().json(json!({
                        "id": format!("order_Gated{n:010}"), "entity": "order",
                        "amount": body["amount"], "amount_paid": 0, "amount_due": body["amount"],
                        "currency": "INR", "receipt": body["receipt"], "status": "created",
                        "attempts": 0, "created_at": 1_767_000_000,
                    }))
                }
            }),
        )
    })
    .workers(2)
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);
    GatedRazorpay {
        base: format!("http://127.0.0.1:{port}"),
        calls,
        gate,
    }
}

const LEASE_SECS: u64 = 3;

async fn app_with_gate(fake: &GatedRazorpay) -> TestApp {
    let base = fake.base.clone();
    spawn_app_with(move |s| {
        s.payments.key_id = "rzp_test_GATE".to_owned();
        s.payments.key_secret = SecretString::from("gate-secret".to_owned());
        s.payments.webhook_secret = SecretString::from("gate-hook".to_owned());
        s.payments.api_base_url = base;
        s.idempotency.lease_secs = LEASE_SECS;
    })
    .await
}

async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `POST /payments/create-order` for `order_id` with `key`, to the node at `base`.
async fn create_order(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    order_id: i64,
    key: &str,
) -> reqwest::Response {
    client
        .post(format!("{base}/api/v1/payments/create-order"))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(&json!({"order_id": order_id}))
        .send()
        .await
        .unwrap()
}

async fn payments_of(app: &TestApp, order_id: i64) -> Vec<String> {
    use schema::payments as p;
    let mut conn = app.app.db.read().await.unwrap();
    on_conn!(&mut conn, c => p::table
        .filter(p::purpose.eq("order").and(p::reference_id.eq(order_id)))
        .select(p::provider_order_id)
        .load::<String>(c)
        .await)
    .unwrap()
}

#[actix_web::test]
async fn a_request_whose_client_hung_up_finishes_and_its_retry_replays_the_answer() {
    let fake = gated_razorpay();
    let app = app_with_gate(&fake).await;
    let (who, order_id, _) = razorpay_order(&app).await;

    let (client, base, token) = (app.client.clone(), app.address.clone(), who.token.clone());
    let hung_up = actix_web::rt::spawn(async move {
        create_order(&client, &base, &token, order_id, "pay-once").await;
    });
    until("the request reached Razorpay", async || fake.calls() == 1).await;
    hung_up.abort();

    // Longer than a lease: the running request renews it, so a retry is told to wait, not run again.
    tokio::time::sleep(Duration::from_secs(LEASE_SECS + 1)).await;
    let waiting = create_order(&app.client, &app.address, &who.token, order_id, "pay-once").await;
    assert_eq!(waiting.status(), StatusCode::CONFLICT);
    let retry_after: u64 = waiting.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=LEASE_SECS + 1).contains(&retry_after), "{retry_after}");
    assert_eq!(
        waiting.json::<Value>().await.unwrap()["error"]["code"],
        "idempotency_in_flight"
    );

    // Razorpay answers; the abandoned request stores its answer, which the retry gets.
    fake.gate.add_permits(1);
    let mut replay = None;
    until("the abandoned request stored its answer", async || {
        let reply = create_order(&app.client, &app.address, &who.token, order_id, "pay-once").await;
        if reply.status() == StatusCode::CONFLICT {
            return false;
        }
        replay = Some(reply);
        true
    })
    .await;
    let replay = replay.unwrap();
    assert_eq!(replay.status(), StatusCode::OK);
    assert_eq!(replay.headers()["idempotency-replayed"], "true");
    let body: Value = replay.json().await.unwrap();
    assert_eq!(fake.calls(), 1, "Razorpay was asked once");
    assert_eq!(
        payments_of(&app, order_id).await,
        vec![body["razorpay_order_id"].as_str().unwrap()]
    );
}

/// A `serve` process on `app`'s database, JWT secret and Redis (as a second node behind a load
/// balancer), with its own data dir; killed with SIGKILL when dropped.
struct Node {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_beside(app: &TestApp, fake: &GatedRazorpay) -> Node {
    let settings = &app.app.settings;
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_onemedi"));
    command
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("ONEMEDI_CONFIG_DIR", dir.path().join("no-config"))
        .env(
            "DATABASE_URL",
            settings.database.effective_url(&settings.server.data_dir),
        )
        .env(
            "ONEMEDI__AUTH__JWT_SECRET",
            settings.auth.jwt_secret.expose_secret(),
        )
        .env("ONEMEDI__REDIS__KEY_PREFIX", &settings.redis.key_prefix)
        .env("ONEMEDI__PAYMENTS__KEY_ID", &settings.payments.key_id)
        .env(
            "ONEMEDI__PAYMENTS__KEY_SECRET",
            settings.payments.key_secret.expose_secret(),
        )
        .env(
            "ONEMEDI__PAYMENTS__WEBHOOK_SECRET",
            settings.payments.webhook_secret.expose_secret(),
        )
        .env("ONEMEDI__PAYMENTS__API_BASE_URL", &fake.base)
        .env("ONEMEDI__IDEMPOTENCY__LEASE_SECS", LEASE_SECS.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    match settings.redis.url() {
        Some(url) => command.env("REDIS_URL", url),
        None => command.env_remove("REDIS_URL"),
    };
    let mut child = command.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut port = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.split("http://127.0.0.1:").nth(1) {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            port = digits.parse::<u16>().ok();
            break;
        }
    }
    Node {
        child,
        base: format!("http://127.0.0.1:{}", port.expect("the node listens")),
        _dir: dir,
    }
}

#[actix_web::test]
async fn a_retry_after_its_node_was_killed_runs_afresh_once_the_lease_lapses_and_never_twice() {
    let fake = gated_razorpay();
    let app = app_with_gate(&fake).await;
    let (who, order_id, _) = razorpay_order(&app).await;
    let doomed = serve_beside(&app, &fake);

    // The first attempt goes to the doomed node and waits there on Razorpay.
    let (client, base, token) = (app.client.clone(), doomed.base.clone(), who.token.clone());
    let first = actix_web::rt::spawn(async move {
        let _ = client
            .post(format!("{base}/api/v1/payments/create-order"))
            .bearer_auth(&token)
            .header("idempotency-key", "pay-after-crash")
            .json(&json!({"order_id": order_id}))
            .send()
            .await;
    });
    until("the first attempt reached Razorpay", async || fake.calls() == 1).await;
    let busy = create_order(&app.client, &app.address, &who.token, order_id, "pay-after-crash").await;
    assert_eq!(
        busy.status(),
        StatusCode::CONFLICT,
        "the other node is still running it"
    );
    assert!(busy.headers().contains_key("retry-after"));

    let mut doomed = doomed;
    doomed.child.kill().unwrap();
    doomed.child.wait().unwrap();
    let killed = Instant::now();
    first.abort();
    fake.gate.add_permits(8);

    // Retries are told to wait while the dead node's lease lasts, then one runs the request afresh.
    let mut conflicts = 0;
    let mut answer = None;
    until("a retry ran afresh", async || {
        let reply = create_order(&app.client, &app.address, &who.token, order_id, "pay-after-crash").await;
        if reply.status() == StatusCode::CONFLICT {
            conflicts += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
            return false;
        }
        answer = Some(reply);
        true
    })
    .await;
    let recovered_after = killed.elapsed();
    let answer = answer.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.headers()["idempotency-replayed"], "false", "it ran afresh");
    let body: Value = answer.json().await.unwrap();
    let provider_order = body["razorpay_order_id"].as_str().unwrap().to_owned();
    assert!(
        recovered_after < Duration::from_secs(LEASE_SECS * 4),
        "a lapsed lease, not the stored answer's lifetime: {recovered_after:?}"
    );
    println!(
        "retry after SIGKILL of the node: {conflicts} × 409 while the lease lasted, run afresh after {recovered_after:?}"
    );

    // From now on the key replays that one answer, and the order has exactly one provider order.
    let again = create_order(&app.client, &app.address, &who.token, order_id, "pay-after-crash").await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.headers()["idempotency-replayed"], "true");
    assert_eq!(
        again.json::<Value>().await.unwrap()["razorpay_order_id"],
        provider_order
    );
    assert_eq!(payments_of(&app, order_id).await, vec![provider_order]);
}

#[actix_web::test]
async fn an_upload_larger_than_a_json_body_works_with_a_key_and_an_oversized_one_is_a_json_413() {
    let app = spawn_app_with(|s| s.server.body_limit_bytes = 64 * 1024).await;
    let who = crate::shop::customer(&app).await;
    // One form, sent byte for byte twice (a client library would pick a new boundary per send).
    let form = |file: Vec<u8>| {
        let mut body =
            b"--rx-boundary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"rx.pdf\"\r\n\
Content-Type: application/pdf\r\n\r\n"
                .to_vec();
        body.extend_from_slice(&file);
        body.extend_from_slice(
            b"\r\n--rx-boundary\r\nContent-Disposition: form-data; name=\"patient_name\"\r\n\r\nAsha Rao\r\n--rx-boundary--\r\n",
        );
        body
    };
    let upload = |key: &'static str, body: Vec<u8>| {
        app.client
            .post(app.url("/api/v1/users/prescriptions"))
            .bearer_auth(&who.token)
            .header("idempotency-key", key)
            .header("content-type", "multipart/form-data; boundary=rx-boundary")
            .body(body)
            .send()
    };
    let pdf = form(pdf_bytes(200 * 1024));
    let first = upload("rx-200k", pdf.clone()).await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let created: Value = first.json().await.unwrap();
    let again = upload("rx-200k", pdf).await.unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotency-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap()["id"], created["id"]);

    let huge = upload("rx-huge", form(pdf_bytes(11 * 1024 * 1024)))
        .await
        .unwrap();
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        huge.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "a JSON error, not plain text"
    );
    assert_eq!(
        huge.json::<Value>().await.unwrap()["error"]["code"],
        "payload_too_large"
    );
}
