//! Role administration and the audit trail.

use onemedi::domain::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::spawn_app;

#[actix_web::test]
async fn non_admins_are_refused_on_admin_routes_and_strangers_are_unauthorised() {
    let app = spawn_app().await;
    let (_, target) = app.register_customer("target@example.in").await;
    for role in [
        Role::Customer,
        Role::Staff,
        Role::Dispatcher,
        Role::Doctor,
        Role::Rider,
    ] {
        let (token, _) = app.user_with_role(role).await;
        let list = app.get("/api/v1/admin/users", Some(&token)).await;
        assert_eq!(list.status, StatusCode::FORBIDDEN, "{role}");
        assert_eq!(list.code(), "forbidden");
        let change = app
            .put(
                &format!("/api/v1/admin/users/{target}/role"),
                &json!({"role": "admin"}),
                Some(&token),
            )
            .await;
        assert_eq!(change.status, StatusCode::FORBIDDEN, "{role}");
    }
    let anonymous = app.get("/api/v1/admin/users", None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn an_admin_changes_a_role_it_takes_effect_at_once_and_is_audited() {
    let app = spawn_app().await;
    let (admin, admin_id) = app.user_with_role(Role::Admin).await;
    let (customer, id) = app.register_customer("promoted@example.in").await;

    let changed = app
        .put(
            &format!("/api/v1/admin/users/{id}/role"),
            &json!({"role": "dispatcher"}),
            Some(&admin),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(changed.body["role"], "dispatcher");
    // The old token now carries the new role, because roles are read from the database.
    assert_eq!(
        app.get("/api/v1/auth/me", Some(&customer)).await.body["role"],
        "dispatcher"
    );

    let audit = app
        .get("/api/v1/admin/audit-log?subject_type=user", Some(&admin))
        .await;
    assert_eq!(audit.status, StatusCode::OK);
    let entry = &audit.body["items"][0];
    assert_eq!(entry["action"], "user.role_changed");
    assert_eq!(entry["actor_user_id"], admin_id);
    assert_eq!(entry["subject_id"], id.to_string());
    let details: serde_json::Value = serde_json::from_str(entry["details"].as_str().unwrap()).unwrap();
    assert_eq!(details, json!({"from": "customer", "to": "dispatcher"}));
    assert!(entry["request_id"].is_string());
}

#[actix_web::test]
async fn an_unknown_role_or_user_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let (admin, _) = app.user_with_role(Role::Admin).await;
    let (_, id) = app.register_customer("stays@example.in").await;
    let bad = app
        .put(
            &format!("/api/v1/admin/users/{id}/role"),
            &json!({"role": "superuser"}),
            Some(&admin),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let missing = app
        .put(
            "/api/v1/admin/users/999999/role",
            &json!({"role": "staff"}),
            Some(&admin),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let users = app.get("/api/v1/admin/users?role=customer", Some(&admin)).await;
    assert_eq!(users.body["total"], 1);
    let audit = app.get("/api/v1/admin/audit-log", Some(&admin)).await;
    assert_eq!(audit.body["total"], 0);
}

#[actix_web::test]
async fn an_admin_cannot_demote_themselves() {
    let app = spawn_app().await;
    let (admin, admin_id) = app.user_with_role(Role::Admin).await;
    let reply = app
        .put(
            &format!("/api/v1/admin/users/{admin_id}/role"),
            &json!({"role": "customer"}),
            Some(&admin),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.get("/api/v1/auth/me", Some(&admin)).await.body["role"],
        "admin"
    );
}

#[actix_web::test]
async fn bodies_that_fail_while_authentication_is_querying_never_break_a_connection() {
    // A bad body fails extraction while the token's user is still being read: that read is cancelled
    // mid-query. Every later request must still find healthy connections.
    let app = spawn_app().await;
    let (admin, _) = app.user_with_role(Role::Admin).await;
    let (_, id) = app.register_customer("rounds@example.in").await;
    for round in 0..60 {
        let bad = app
            .put(
                &format!("/api/v1/admin/users/{id}/role"),
                &json!({"role": "emperor"}),
                Some(&admin),
            )
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "round {round}");
        let role = if round % 2 == 0 { "staff" } else { "customer" };
        let good = app
            .put(
                &format!("/api/v1/admin/users/{id}/role"),
                &json!({"role": role}),
                Some(&admin),
            )
            .await;
        assert_eq!(good.status, StatusCode::OK, "round {round}: {}", good.body);
    }
    let audit = app.get("/api/v1/admin/audit-log", Some(&admin)).await;
    assert_eq!(audit.body["total"], 60);
}
