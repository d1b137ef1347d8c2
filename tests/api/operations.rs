//! Health, readiness, metrics, request ids and the API documentation.

use reqwest::StatusCode;

use crate::helpers::{redis_url, spawn_app, spawn_app_with};

#[actix_web::test]
async fn the_database_pool_opens_its_warm_connections_at_startup_and_never_more_than_its_size() {
    let app = spawn_app_with(|s| s.database.warm_connections = 6).await;
    // SQLite also has its one writer, which startup may have opened.
    let open = app.app.db.open_connections();
    assert!((6..=7).contains(&open), "{open} connections open");

    let capped = spawn_app_with(|s| {
        s.database.max_connections = 3;
        s.database.warm_connections = 50;
    })
    .await;
    let open = capped.app.db.open_connections();
    assert!((3..=4).contains(&open), "{open} connections open");
}

#[actix_web::test]
async fn health_reports_the_database_and_redis() {
    let app = spawn_app().await;
    let reply = app.get("/health", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["status"], "ok");
    assert_eq!(reply.body["database"], "ok");
    let expected_redis = if redis_url().is_some() { "ok" } else { "disabled" };
    assert_eq!(reply.body["redis"], expected_redis);
    let expected_backend = if crate::helpers::postgres_url().is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    assert_eq!(reply.body["backend"], expected_backend);
    assert_eq!(app.get("/ready", None).await.status, StatusCode::OK);
}

#[actix_web::test]
async fn every_response_carries_a_request_id_and_is_counted_in_metrics() {
    let app = spawn_app().await;
    let reply = app.get("/api/v1/auth/me", None).await;
    let id = reply.headers["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36, "a uuid: {id}");
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "onemedi_http_requests_total{method=\"GET\",route=\"/api/v1/auth/me\",status=\"401\"} 1"
        ),
        "{metrics}"
    );
    assert!(metrics.contains(
        "onemedi_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/auth/me\",le=\"+Inf\"} 1"
    ));
}

#[actix_web::test]
async fn the_openapi_document_covers_every_route() {
    let app = spawn_app().await;
    let doc = app.get("/api-docs/openapi.json", None).await;
    assert_eq!(doc.status, StatusCode::OK);
    let paths = doc.body["paths"].as_object().unwrap();
    let expected = [
        ("/api/v1/auth/register", "post"),
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/me", "get"),
        ("/api/v1/auth/otp/request", "post"),
        ("/api/v1/auth/otp/verify", "post"),
        ("/api/v1/users/profile", "get"),
        ("/api/v1/users/profile", "put"),
        ("/api/v1/users/addresses", "get"),
        ("/api/v1/users/addresses", "post"),
        ("/api/v1/users/addresses/{id}", "put"),
        ("/api/v1/users/addresses/{id}", "delete"),
        ("/api/v1/admin/users", "get"),
        ("/api/v1/admin/users/{id}/role", "put"),
        ("/api/v1/admin/audit-log", "get"),
        ("/api/v1/admin/analytics", "get"),
        ("/api/v1/admin/orders", "get"),
        ("/api/v1/medicines", "get"),
        ("/api/v1/medicines/featured", "get"),
        ("/api/v1/medicines/categories", "get"),
        ("/api/v1/medicines/brands", "get"),
        ("/api/v1/medicines/{id}", "get"),
        ("/api/v1/admin/medicines", "post"),
        ("/api/v1/admin/medicines/{id}", "put"),
        ("/api/v1/admin/medicines/{id}", "delete"),
        ("/api/v1/admin/medicine-categories", "post"),
        ("/api/v1/admin/medicine-categories/{id}", "put"),
        ("/api/v1/admin/brands", "post"),
        ("/api/v1/admin/brands/{id}", "put"),
        ("/api/v1/cart", "get"),
        ("/api/v1/cart/items", "post"),
        ("/api/v1/cart/items/{id}", "put"),
        ("/api/v1/cart/items/{id}", "delete"),
        ("/api/v1/cart/coupon/preview", "post"),
        ("/api/v1/orders", "post"),
        ("/api/v1/orders", "get"),
        ("/api/v1/orders/{id}", "get"),
        ("/api/v1/orders/{id}/cancel", "post"),
        ("/api/v1/orders/{id}/status", "put"),
        ("/api/v1/orders/{id}/invoice.pdf", "get"),
        ("/api/v1/orders/{id}/deliver", "post"),
        ("/api/v1/orders/{id}/share", "post"),
        ("/api/v1/track/{token}", "get"),
        ("/api/v1/lab-tests", "get"),
        ("/api/v1/admin/lab-tests", "get"),
        ("/api/v1/admin/lab-tests", "post"),
        ("/api/v1/admin/lab-tests/{id}", "put"),
        ("/api/v1/admin/lab-tests/{id}", "delete"),
        ("/api/v1/admin/lab-categories", "post"),
        ("/api/v1/admin/lab-categories/{id}", "put"),
        ("/api/v1/lab-tests/categories", "get"),
        ("/api/v1/lab-tests/packages", "get"),
        ("/api/v1/lab-tests/{id}", "get"),
        ("/api/v1/lab-tests/book", "post"),
        ("/api/v1/lab-collections", "get"),
        ("/api/v1/lab-collections/route", "get"),
        ("/api/v1/lab-collections/{id}", "get"),
        ("/api/v1/lab-collections/{id}/cancel", "post"),
        ("/api/v1/lab-collections/{id}/status", "put"),
        ("/api/v1/lab-collections/{id}/report", "post"),
        ("/api/v1/lab-collections/{id}/report", "get"),
        ("/api/v1/admin/coupons", "post"),
        ("/api/v1/admin/coupons", "get"),
        ("/api/v1/admin/coupons/{id}", "put"),
        ("/api/v1/users/prescriptions", "post"),
        ("/api/v1/users/prescriptions", "get"),
        ("/api/v1/users/prescriptions/{id}/file", "get"),
        ("/api/v1/admin/prescriptions", "get"),
        ("/api/v1/admin/prescriptions/{id}/review", "put"),
        ("/api/v1/payments/create-order", "post"),
        ("/api/v1/payments/verify", "post"),
        ("/api/v1/payments/webhook", "post"),
        ("/api/v1/payments/simulate", "post"),
        ("/api/v1/emergency/units", "post"),
        ("/api/v1/emergency/units", "get"),
        ("/api/v1/emergency/my-unit", "get"),
        ("/api/v1/emergency/units/{id}", "get"),
        ("/api/v1/emergency/units/{id}/status", "put"),
        ("/api/v1/emergency/ambulance-requests", "post"),
        ("/api/v1/emergency/ambulance-requests", "get"),
        ("/api/v1/emergency/ambulance-requests/{id}", "get"),
        ("/api/v1/emergency/ambulance-requests/{id}/cancel", "post"),
        ("/api/v1/emergency/ambulance-requests/{id}/assign", "post"),
        ("/api/v1/emergency/ambulance-requests/{id}/notes", "post"),
        (
            "/api/v1/emergency/ambulance-requests/{id}/recommended-units",
            "get",
        ),
        ("/api/v1/emergency/units/{id}/status-override", "post"),
        ("/api/v1/emergency/ambulance-requests/{id}/accept", "post"),
        ("/api/v1/emergency/ambulance-requests/{id}/decline", "post"),
        ("/api/v1/emergency/board", "get"),
        ("/api/v1/emergency/stats", "get"),
        ("/api/v1/doctors", "get"),
        ("/api/v1/doctors/{id}", "get"),
        ("/api/v1/doctors/me/schedule", "put"),
        ("/api/v1/doctors/me/day", "get"),
        ("/api/v1/doctors/slots/{id}/hold", "post"),
        ("/api/v1/doctors/appointments", "post"),
        ("/api/v1/doctors/appointments", "get"),
        ("/api/v1/doctors/appointments/{id}", "get"),
        ("/api/v1/doctors/appointments/{id}/cancel", "post"),
        ("/api/v1/hospitals", "get"),
        ("/api/v1/hospitals/{id}", "get"),
        ("/api/v1/hospitals/{id}/beds", "put"),
        ("/api/v1/blood-banks", "get"),
        ("/api/v1/blood-banks/{id}/stock", "put"),
        ("/api/v1/users/donor-profile", "get"),
        ("/api/v1/users/donor-profile", "put"),
        ("/api/v1/emergency/blood-requests", "post"),
        ("/api/v1/emergency/blood-requests", "get"),
        ("/api/v1/emergency/blood-requests/{id}", "get"),
        ("/api/v1/emergency/blood-requests/{id}/pledges", "post"),
        ("/api/v1/emergency/blood-requests/{id}/cancel", "post"),
        ("/api/v1/map/cells", "get"),
        ("/api/v1/map/config", "get"),
        ("/api/v1/banners", "get"),
        ("/api/v1/admin/banners", "get"),
        ("/api/v1/admin/banners", "post"),
        ("/api/v1/admin/banners/{id}", "put"),
        ("/api/v1/offers", "get"),
        ("/api/v1/admin/offers", "get"),
        ("/api/v1/admin/offers", "post"),
        ("/api/v1/admin/offers/{id}", "put"),
        ("/api/v1/admin/campaigns", "post"),
        ("/api/v1/admin/campaigns", "get"),
        ("/api/v1/admin/campaigns/{id}/send", "post"),
        ("/api/v1/notifications", "get"),
        ("/api/v1/notifications/read-all", "post"),
        ("/api/v1/notifications/{id}/read", "post"),
        ("/api/v1/services", "get"),
        ("/api/v1/services/{id}", "get"),
        ("/api/v1/services/partner-profile", "get"),
        ("/api/v1/services/partner-profile", "put"),
        ("/api/v1/services/bookings", "post"),
        ("/api/v1/services/bookings", "get"),
        ("/api/v1/services/bookings/{id}", "get"),
        ("/api/v1/services/bookings/{id}/cancel", "post"),
        ("/api/v1/services/bookings/{id}/status", "put"),
        ("/api/v1/insurance/plans", "get"),
        ("/api/v1/insurance/plans/{id}", "get"),
        ("/api/v1/insurance/purchases", "post"),
        ("/api/v1/insurance/purchases/{id}", "get"),
        ("/api/v1/insurance/policies", "get"),
        ("/api/v1/insurance/policies/{id}", "get"),
        ("/health", "get"),
        ("/ready", "get"),
        ("/metrics", "get"),
    ];
    for (path, method) in expected {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing from the OpenAPI"
        );
    }
    let operations: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(
        operations,
        expected.len(),
        "a route is documented but not listed here, or the reverse"
    );
    assert!(doc.body["components"]["securitySchemes"]["bearer"].is_object());
}

#[actix_web::test]
async fn the_docs_ui_is_served_from_the_binary() {
    let app = spawn_app().await;
    let redirect = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(redirect.status(), StatusCode::FOUND);
    let page = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(
        !html.contains("https://"),
        "the docs page must not load anything from the internet"
    );
    let bundle = app
        .client
        .get(app.url("/docs/swagger-ui-bundle.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(bundle.status(), StatusCode::OK);
}
