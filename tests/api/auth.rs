//! Registration, password login and OTP login.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{otp_code, spawn_app, spawn_app_with};

#[actix_web::test]
async fn registering_makes_a_customer_even_when_the_body_asks_for_admin() {
    let app = spawn_app().await;
    let reply = app
        .post(
            "/api/v1/auth/register",
            &json!({"name": "Asha", "email": "Asha@Example.in", "phone": "98765 43210",
                    "password": "correct horse", "role": "admin"}),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["user"]["role"], "customer");
    assert_eq!(reply.body["user"]["email"], "asha@example.in");
    assert_eq!(reply.body["user"]["phone"], "+919876543210");
    let token = reply.body["token"].as_str().unwrap();
    let me = app.get("/api/v1/auth/me", Some(token)).await;
    assert_eq!(me.body["role"], "customer");
    let admin_only = app.get("/api/v1/admin/users", Some(token)).await;
    assert_eq!(admin_only.status, StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn a_second_account_with_the_same_email_is_refused() {
    let app = spawn_app().await;
    app.register_customer("ravi@example.in").await;
    let reply = app
        .post(
            "/api/v1/auth/register",
            &json!({"name": "Other Ravi", "email": "RAVI@example.in", "password": "another secret"}),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert_eq!(reply.code(), "email_taken");
}

#[actix_web::test]
async fn a_second_account_with_the_same_phone_is_refused() {
    let app = spawn_app().await;
    let body = |email: &str| json!({"name": "N", "email": email, "phone": "+919000000001", "password": "long enough"});
    assert_eq!(
        app.post("/api/v1/auth/register", &body("a@example.in"), None)
            .await
            .status,
        StatusCode::CREATED
    );
    let reply = app
        .post("/api/v1/auth/register", &body("b@example.in"), None)
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert_eq!(reply.code(), "phone_taken");
}

#[actix_web::test]
async fn registration_names_every_invalid_field_and_creates_nothing() {
    let app = spawn_app().await;
    let reply = app
        .post(
            "/api/v1/auth/register",
            &json!({"name": " ", "email": "nope", "phone": "12", "password": "short"}),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.code(), "validation_failed");
    for field in ["name", "email", "phone", "password"] {
        assert!(
            reply.body["error"]["details"][field].is_string(),
            "{field} missing in {}",
            reply.body
        );
    }
    let mut conn = app.app.db.read().await.unwrap();
    assert_eq!(onemedi::db::users::count(&mut conn).await.unwrap(), 0);
}

#[actix_web::test]
async fn login_with_the_right_password_opens_a_session() {
    let app = spawn_app().await;
    app.register_customer("meera@example.in").await;
    let reply = app
        .post(
            "/api/v1/auth/login",
            &json!({"email": "meera@example.in", "password": "correct horse battery"}),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let token = reply.body["token"].as_str().unwrap();
    assert_eq!(reply.body["expires_in"], 7 * 24 * 3600);
    let me = app.get("/api/v1/auth/me", Some(token)).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["email"], "meera@example.in");
    assert!(me.body.get("password_hash").is_none());
}

#[actix_web::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_answer() {
    let app = spawn_app().await;
    app.register_customer("kiran@example.in").await;
    let wrong = app
        .post(
            "/api/v1/auth/login",
            &json!({"email": "kiran@example.in", "password": "not it at all"}),
            None,
        )
        .await;
    let unknown = app
        .post(
            "/api/v1/auth/login",
            &json!({"email": "ghost@example.in", "password": "not it at all"}),
            None,
        )
        .await;
    for reply in [&wrong, &unknown] {
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.code(), "invalid_credentials");
    }
    assert_eq!(wrong.body, unknown.body);
}

#[actix_web::test]
async fn an_otp_logs_in_a_new_phone_as_a_customer_and_works_only_once() {
    let app = spawn_app().await;
    let sent = app
        .post("/api/v1/auth/otp/request", &json!({"phone": "9123456780"}), None)
        .await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.body);
    assert_eq!(sent.body["phone"], "+919123456780");
    let code = otp_code(&app.last_sms_to("+919123456780").expect("an SMS in the outbox"));

    let verified = app
        .post(
            "/api/v1/auth/otp/verify",
            &json!({"phone": "+91 91234 56780", "code": code}),
            None,
        )
        .await;
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.body);
    assert_eq!(verified.body["user"]["role"], "customer");
    assert_eq!(verified.body["user"]["phone"], "+919123456780");
    let token = verified.body["token"].as_str().unwrap();
    assert_eq!(
        app.get("/api/v1/auth/me", Some(token)).await.status,
        StatusCode::OK
    );

    let replayed = app
        .post(
            "/api/v1/auth/otp/verify",
            &json!({"phone": "9123456780", "code": code}),
            None,
        )
        .await;
    assert_eq!(replayed.status, StatusCode::UNAUTHORIZED);
    assert_eq!(replayed.code(), "otp_invalid");
}

#[actix_web::test]
async fn an_otp_for_a_registered_phone_signs_in_that_account() {
    let app = spawn_app().await;
    let reply = app
        .post(
            "/api/v1/auth/register",
            &json!({"name": "Asha", "email": "asha@example.in", "phone": "+919999900000", "password": "long enough"}),
            None,
        )
        .await;
    let id = reply.body["user"]["id"].clone();
    let code = app.request_otp("+919999900000").await;
    let verified = app
        .post(
            "/api/v1/auth/otp/verify",
            &json!({"phone": "+919999900000", "code": code}),
            None,
        )
        .await;
    assert_eq!(verified.body["user"]["id"], id);
}

#[actix_web::test]
async fn wrong_otp_guesses_run_out_and_then_even_the_right_code_fails() {
    let app = spawn_app_with(|s| s.auth.otp_max_attempts = 3).await;
    let code = app.request_otp("+919800000001").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..3 {
        let reply = app
            .post(
                "/api/v1/auth/otp/verify",
                &json!({"phone": "+919800000001", "code": wrong}),
                None,
            )
            .await;
        assert_eq!(reply.code(), "otp_invalid");
    }
    let reply = app
        .post(
            "/api/v1/auth/otp/verify",
            &json!({"phone": "+919800000001", "code": code}),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.code(), "rate_limited");
}

#[actix_web::test]
async fn an_expired_otp_is_refused() {
    let app = spawn_app_with(|s| s.auth.otp_ttl_secs = 0).await;
    let code = app.request_otp("+919800000002").await;
    let reply = app
        .post(
            "/api/v1/auth/otp/verify",
            &json!({"phone": "+919800000002", "code": code}),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.code(), "otp_invalid");
}

#[actix_web::test]
async fn a_phone_may_request_only_a_few_codes_per_window() {
    let app = spawn_app_with(|s| s.auth.otp_max_requests = 2).await;
    for _ in 0..2 {
        let reply = app
            .post(
                "/api/v1/auth/otp/request",
                &json!({"phone": "+919800000003"}),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::ACCEPTED);
    }
    let reply = app
        .post(
            "/api/v1/auth/otp/request",
            &json!({"phone": "+919800000003"}),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.code(), "rate_limited");
    let retry_after: u64 = reply.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after > 0 && retry_after <= 900);
}

#[actix_web::test]
async fn concurrent_code_requests_on_two_nodes_issue_no_more_than_the_limit() {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use onemedi::{db::schema::otp_codes, on_conn};

    let a = spawn_app_with(|s| s.auth.otp_max_requests = 3).await;
    let b = crate::helpers::spawn_second_node(&a).await;
    let phone = "+919800000031";
    let replies = futures_util::future::join_all((0..8).map(|i| {
        let node = if i % 2 == 0 { &a } else { &b };
        async move {
            node.post("/api/v1/auth/otp/request", &json!({"phone": phone}), None)
                .await
        }
    }))
    .await;
    let sent = replies
        .iter()
        .filter(|r| r.status == StatusCode::ACCEPTED)
        .count();
    let refused = replies
        .iter()
        .filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS && r.code() == "rate_limited")
        .count();
    assert_eq!(
        (sent, refused),
        (3, 5),
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let mut conn = a.app.db.read().await.unwrap();
    let stored: i64 = on_conn!(&mut conn, c => otp_codes::table
        .filter(otp_codes::phone.eq(phone))
        .count()
        .get_result(c)
        .await)
    .unwrap();
    assert_eq!(stored, 3, "one stored code per code sent");
}

#[actix_web::test]
async fn only_the_newest_otp_works() {
    let app = spawn_app().await;
    let first = app.request_otp("+919800000004").await;
    std::thread::sleep(std::time::Duration::from_millis(5));
    let second = app.request_otp("+919800000004").await;
    if first != second {
        let stale = app
            .post(
                "/api/v1/auth/otp/verify",
                &json!({"phone": "+919800000004", "code": first}),
                None,
            )
            .await;
        assert_eq!(stale.code(), "otp_invalid");
    }
    let fresh = app
        .post(
            "/api/v1/auth/otp/verify",
            &json!({"phone": "+919800000004", "code": second}),
            None,
        )
        .await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.body);
}

#[actix_web::test]
async fn a_burst_of_logins_is_bounded_and_the_overflow_is_told_to_retry_not_failed() {
    let app = spawn_app_with(|s| s.rate_limit.enabled = false).await;
    app.register_customer("burst@example.in").await;
    let bodies: Vec<_> = (0..60)
        .map(|i| json!({"email": format!("burst-{i}@example.in"), "password": "not it at all"}))
        .collect();
    let attempts = bodies
        .iter()
        .map(|body| app.post("/api/v1/auth/login", body, None));
    let replies = futures_util::future::join_all(attempts).await;
    let mut turned_away = 0;
    for reply in &replies {
        match reply.status {
            StatusCode::UNAUTHORIZED => assert_eq!(reply.code(), "invalid_credentials"),
            StatusCode::SERVICE_UNAVAILABLE => {
                turned_away += 1;
                assert_eq!(reply.code(), "service_unavailable", "{}", reply.body);
                assert_eq!(reply.headers["retry-after"], "1");
            }
            other => panic!("{other}: {}", reply.body),
        }
    }
    // At most one hash per core runs and a few per core wait: sixty at once cannot all be in line.
    assert!(
        turned_away > 0,
        "every one of 60 concurrent logins was hashed at once"
    );
    let reply = app
        .post(
            "/api/v1/auth/login",
            &json!({"email": "burst@example.in", "password": "correct horse battery"}),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}
