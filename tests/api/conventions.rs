//! Conventions every route shares: error bodies, body limits, idempotency keys, rate limits.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{into_reply, spawn_app, spawn_app_with};

/// Rate-limit windows are fixed wall-clock minutes: a test that counts requests against one waits out
/// the last seconds of a minute first, so that its requests all fall in one window.
pub async fn start_of_a_rate_limit_window() {
    let into_minute = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        % 60_000;
    if into_minute > 50_000 {
        tokio::time::sleep(std::time::Duration::from_millis(
            (60_000 - into_minute) as u64 + 50,
        ))
        .await;
    }
}

#[actix_web::test]
async fn every_answer_is_never_sniffed_nor_framed_json_pages_and_the_api_docs_alike() {
    let app = spawn_app().await;
    for path in [
        "/api/v1/medicines",
        "/api/v1/no-such-route",
        "/health",
        "/docs/",
        "/",
    ] {
        let reply = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        let headers = reply.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
    }
}

#[actix_web::test]
async fn malformed_json_is_a_400_and_never_a_500() {
    let app = spawn_app().await;
    let cases: [(&str, &str); 4] = [
        ("{\"name\": ", "malformed_json"),
        ("[1, 2, 3]", "validation_failed"),
        (
            "{\"name\": 7, \"email\": \"a@b.in\", \"password\": \"long enough\"}",
            "validation_failed",
        ),
        ("", "malformed_json"),
    ];
    for (body, code) in cases {
        let response = app
            .client
            .post(app.url("/api/v1/auth/register"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let reply = into_reply(response).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body:?}: {}", reply.body);
        assert_eq!(reply.code(), code, "{body:?}");
    }
}

#[actix_web::test]
async fn a_body_of_the_wrong_type_is_415() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "text/plain")
        .body("hi")
        .send()
        .await
        .unwrap();
    let reply = into_reply(response).await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(reply.code(), "unsupported_media_type");
}

#[actix_web::test]
async fn an_oversized_body_is_refused_with_413() {
    let app = spawn_app_with(|s| s.server.body_limit_bytes = 1024).await;
    let body = json!({"name": "x".repeat(4096), "email": "big@example.in", "password": "long enough"});
    let reply = app.post("/api/v1/auth/register", &body, None).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.code(), "payload_too_large");
    // The same limit holds when the idempotency layer buffers the body.
    let response = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .header("idempotency-key", "big-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[actix_web::test]
async fn unknown_routes_and_methods_answer_json_errors() {
    let app = spawn_app().await;
    let missing = app.get("/api/v1/no-such-thing", None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.code(), "not_found");
    let wrong_method = app.call(Method::PATCH, "/api/v1/auth/login", None, None).await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong_method.code(), "method_not_allowed");
    let bad_id = app.delete("/api/v1/users/addresses/not-a-number", None).await;
    assert!(bad_id.status.is_client_error());
}

async fn register_with_key(app: &crate::helpers::TestApp, key: &str, email: &str) -> crate::helpers::Reply {
    let response = app
        .client
        .post(app.url("/api/v1/auth/register"))
        .header("idempotency-key", key)
        .json(&json!({"name": "Retry", "email": email, "password": "long enough"}))
        .send()
        .await
        .unwrap();
    into_reply(response).await
}

#[actix_web::test]
async fn a_retried_request_with_the_same_key_replays_the_first_answer() {
    let app = spawn_app().await;
    let first = register_with_key(&app, "signup-7f3a", "retry@example.in").await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(first.headers["idempotency-replayed"], "false");
    let second = register_with_key(&app, "signup-7f3a", "retry@example.in").await;
    assert_eq!(second.status, StatusCode::CREATED, "a replay, not email_taken");
    assert_eq!(second.headers["idempotency-replayed"], "true");
    assert_eq!(second.body, first.body);
    let mut conn = app.app.db.read().await.unwrap();
    assert_eq!(onemedi::db::users::count(&mut conn).await.unwrap(), 1);
}

#[actix_web::test]
async fn the_same_key_with_a_different_body_is_422() {
    let app = spawn_app().await;
    register_with_key(&app, "k-1", "one@example.in").await;
    let reply = register_with_key(&app, "k-1", "two@example.in").await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reply.code(), "idempotency_key_reused");
    let mut conn = app.app.db.read().await.unwrap();
    assert_eq!(onemedi::db::users::count(&mut conn).await.unwrap(), 1);
}

#[actix_web::test]
async fn concurrent_retries_with_one_key_create_one_account() {
    let app = spawn_app().await;
    let attempts = (0..8).map(|_| register_with_key(&app, "burst-1", "burst@example.in"));
    let replies = futures_util::future::join_all(attempts).await;
    let mut created = 0;
    for reply in &replies {
        match reply.status {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => assert_eq!(reply.code(), "idempotency_in_flight"),
            other => panic!("unexpected {other}: {}", reply.body),
        }
    }
    assert!(created >= 1);
    let mut conn = app.app.db.read().await.unwrap();
    assert_eq!(onemedi::db::users::count(&mut conn).await.unwrap(), 1);
}

#[actix_web::test]
async fn keys_are_scoped_per_user() {
    let app = spawn_app().await;
    let (asha, _) = app.register_customer("asha@example.in").await;
    let (ravi, _) = app.register_customer("ravi@example.in").await;
    let add = |token: String| {
        let app = &app;
        async move {
            let response = app
                .client
                .post(app.url("/api/v1/users/addresses"))
                .bearer_auth(token)
                .header("idempotency-key", "same-key")
                .json(
                    &json!({"label": "Home", "line1": "1 Road", "city": "Bengaluru", "state": "KA",
                              "pincode": "560001", "lat": 12.9, "lng": 77.6}),
                )
                .send()
                .await
                .unwrap();
            into_reply(response).await
        }
    };
    let a = add(asha.clone()).await;
    let b = add(ravi.clone()).await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(b.status, StatusCode::CREATED);
    assert_ne!(a.body["id"], b.body["id"]);
}

#[actix_web::test]
async fn too_many_requests_get_429_with_retry_after() {
    let app = spawn_app_with(|s| s.rate_limit.per_minute = 5).await;
    start_of_a_rate_limit_window().await;
    let (token, _) = app.register_customer("busy@example.in").await;
    for _ in 0..5 {
        let reply = app.get("/api/v1/users/profile", Some(&token)).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    let limited = app.get("/api/v1/users/profile", Some(&token)).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.code(), "rate_limited");
    let retry_after: u64 = limited.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after));
    assert_eq!(limited.headers["x-ratelimit-remaining"], "0");
    // Another client (by IP, unauthenticated) has its own budget.
    assert_eq!(
        app.get("/api/v1/auth/me", None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[actix_web::test]
async fn login_attempts_have_a_stricter_limit() {
    let app = spawn_app_with(|s| s.rate_limit.auth_per_minute = 3).await;
    start_of_a_rate_limit_window().await;
    for _ in 0..3 {
        let reply = app
            .post(
                "/api/v1/auth/login",
                &json!({"email": "x@example.in", "password": "whatever1"}),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    let limited = app
        .post(
            "/api/v1/auth/login",
            &json!({"email": "x@example.in", "password": "whatever1"}),
            None,
        )
        .await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
}

#[actix_web::test]
async fn percent_encoded_paths_count_against_the_route_the_router_matched() {
    let app = spawn_app_with(|s| s.rate_limit.auth_per_minute = 3).await;
    start_of_a_rate_limit_window().await;
    let body = json!({"email": "x@example.in", "password": "whatever1"});
    // Three spellings of one route: all are the login route, all count against its limit of 3.
    for path in [
        "/api/v1/auth/login",
        "/%61pi/v1/auth/login",
        "/api/v1/%61uth/login",
    ] {
        let reply = app.post(path, &body, None).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{path}: {}", reply.body);
    }
    for path in ["/%61pi/v1/auth/login", "/api/v1/%61uth/l%6Fgin"] {
        let limited = app.post(path, &body, None).await;
        assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS, "{path}");
        assert_eq!(limited.code(), "rate_limited");
    }
}

#[actix_web::test]
async fn behind_a_proxy_the_client_is_the_right_most_forwarded_address() {
    let app = spawn_app_with(|s| {
        s.rate_limit.auth_per_minute = 2;
        s.server.trust_forwarded_for = true;
    })
    .await;
    start_of_a_rate_limit_window().await;
    let login = |forwarded: String| {
        app.client
            .post(app.url("/api/v1/auth/login"))
            .header("x-forwarded-for", forwarded)
            .json(&json!({"email": "x@example.in", "password": "whatever1"}))
            .send()
    };
    // The proxy appended 203.0.113.9; whatever the client put to the left of it changes nothing.
    for spoof in 0..2 {
        let reply = login(format!("10.0.0.{spoof}, 203.0.113.9")).await.unwrap();
        assert_eq!(reply.status(), StatusCode::UNAUTHORIZED);
    }
    let limited = login("10.0.0.99, 203.0.113.9".to_owned()).await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    // Another client behind the same proxy has its own count.
    let other = login("203.0.113.10".to_owned()).await.unwrap();
    assert_eq!(other.status(), StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn a_body_trickled_slower_than_the_deadline_is_a_408_and_the_connection_closes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = spawn_app_with(|s| s.server.body_read_timeout_secs = 1).await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut clients = Vec::new();
    // One read by the JSON extractor, one by the idempotency layer (which buffers keyed bodies).
    for (path, key) in [
        ("/api/v1/auth/login", ""),
        ("/api/v1/auth/register", "Idempotency-Key: slow-1\r\n"),
    ] {
        let stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        let (mut read, mut write) = stream.into_split();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
             {key}Content-Length: 200\r\n\r\n{{"
        );
        write.write_all(head.as_bytes()).await.unwrap();
        // One byte every 300 ms, for far longer than the deadline, until the server hangs up.
        let trickle = actix_web::rt::spawn(async move {
            for _ in 0..100 {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                if write.write_all(b" ").await.is_err() {
                    break;
                }
            }
        });
        let answer = tokio::time::timeout(std::time::Duration::from_secs(20), async move {
            let mut answer = Vec::new();
            let _ = read.read_to_end(&mut answer).await;
            answer
        });
        clients.push((path, answer, trickle));
    }
    for (path, answer, trickle) in clients {
        let answer = answer
            .await
            .expect("the server answers and closes the connection");
        trickle.abort();
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 408"), "{path}: {text}");
        assert!(text.contains("\"request_timeout\""), "{path}: {text}");
    }
}

#[actix_web::test]
async fn a_websocket_session_outlives_the_body_deadline() {
    let app = spawn_app_with(|s| s.server.body_read_timeout_secs = 1).await;
    let (token, id) = app.register_customer("ws-deadline@example.in").await;
    let mut session = crate::ws_client::Client::open_url(&format!("{}?token={token}", app.ws_url()))
        .await
        .unwrap();
    // The upgrade's payload is the session's frame stream: the body deadline must not end it.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(session.subscribe(&format!("user:{id}")).await["type"], "ack");
}

#[actix_web::test]
async fn extreme_dates_are_a_400_not_a_panic() {
    let app = spawn_app().await;
    let (staff, _) = app.user_with_role(onemedi::domain::Role::Staff).await;
    let (phlebotomist, _) = app.user_with_role(onemedi::domain::Role::Phlebotomist).await;
    for date in ["-262143-01-01", "+262142-12-31", "1000-01-01"] {
        for (path, token) in [
            (format!("/api/v1/doctors?available_on={date}"), None),
            (format!("/api/v1/admin/analytics?to={date}"), Some(staff.as_str())),
            (
                format!("/api/v1/admin/analytics?from={date}"),
                Some(staff.as_str()),
            ),
            (
                format!("/api/v1/lab-collections/route?date={date}"),
                Some(phlebotomist.as_str()),
            ),
        ] {
            let reply = app.get(&path, token).await;
            assert_eq!(
                (reply.status, reply.code()),
                (StatusCode::BAD_REQUEST, "validation_failed"),
                "{path}: {}",
                reply.body
            );
        }
    }
    // The server is still there.
    assert_eq!(app.get("/health", None).await.status, StatusCode::OK);
}
