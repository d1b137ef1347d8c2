//! Forged, expired and misaddressed tokens are refused.

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::spawn_app;

const SECRET: &[u8] = b"test-secret-0123456789abcdef0123456789abcdef";

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn claims(sub: i64) -> serde_json::Value {
    json!({"sub": sub.to_string(), "role": "admin", "iss": "onemedi", "aud": "onemedi-api", "iat": now(), "exp": now() + 600})
}

fn sign(claims: &serde_json::Value, key: &[u8], alg: Algorithm) -> String {
    encode(&Header::new(alg), claims, &EncodingKey::from_secret(key)).unwrap()
}

#[actix_web::test]
async fn a_correctly_signed_token_is_accepted_as_a_baseline() {
    let app = spawn_app().await;
    let (_, id) = app.register_customer("base@example.in").await;
    let reply = app
        .get(
            "/api/v1/auth/me",
            Some(&sign(&claims(id), SECRET, Algorithm::HS256)),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    // The role claim says admin, but the database says customer: the database wins.
    assert_eq!(reply.body["role"], "customer");
    let admin = app
        .get(
            "/api/v1/admin/users",
            Some(&sign(&claims(id), SECRET, Algorithm::HS256)),
        )
        .await;
    assert_eq!(admin.status, StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn forged_expired_and_misaddressed_tokens_are_refused() {
    let app = spawn_app().await;
    let (_, id) = app.register_customer("victim@example.in").await;
    let b64 = |v: &serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());

    let mut expired = claims(id);
    expired["exp"] = json!(now() - 3600);
    let mut no_exp = claims(id);
    no_exp.as_object_mut().unwrap().remove("exp");
    let mut wrong_aud = claims(id);
    wrong_aud["aud"] = json!("another-service");
    let mut wrong_iss = claims(id);
    wrong_iss["iss"] = json!("someone-else");
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims(id))
    );
    let valid = sign(&claims(id), SECRET, Algorithm::HS256);
    let tampered_payload = {
        let mut parts: Vec<&str> = valid.split('.').collect();
        let escalated = b64(
            &json!({"sub": (id + 1).to_string(), "role": "admin", "iss": "onemedi",
                                     "aud": "onemedi-api", "iat": now(), "exp": now() + 600}),
        );
        parts[1] = &escalated;
        parts.join(".")
    };

    let cases = [
        (
            "wrong key",
            sign(
                &claims(id),
                b"another-secret-another-secret-another",
                Algorithm::HS256,
            ),
        ),
        (
            "HS512 with the right key",
            sign(&claims(id), SECRET, Algorithm::HS512),
        ),
        ("alg none", alg_none),
        ("expired", sign(&expired, SECRET, Algorithm::HS256)),
        ("no exp", sign(&no_exp, SECRET, Algorithm::HS256)),
        ("wrong audience", sign(&wrong_aud, SECRET, Algorithm::HS256)),
        ("wrong issuer", sign(&wrong_iss, SECRET, Algorithm::HS256)),
        ("tampered payload", tampered_payload),
        ("garbage", "not.a.token".to_owned()),
    ];
    for (name, token) in cases {
        let reply = app.get("/api/v1/auth/me", Some(&token)).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{name} was accepted");
        assert_eq!(reply.code(), "unauthorized", "{name}");
    }
    let missing = app.get("/api/v1/auth/me", None).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
}
