//! The pages served by the binary (headers, caching, the route list), the basemap cells behind the
//! console's map, a crew's own unit for the field view, and the page origin on the websocket.

use onemedi::domain::Role;
use reqwest::{StatusCode, header};
use serde_json::json;

use crate::{
    helpers::{TestApp, spawn_app},
    ws_client::Client,
};

#[actix_web::test]
async fn every_page_is_html_from_the_binary_with_a_strict_policy_and_revalidates_by_etag() {
    let app = spawn_app().await;
    for path in [
        "/admin",
        "/",
        "/login",
        "/console",
        "/field",
        "/track/42",
        "/track/ambulance/7",
    ] {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let headers = res.headers().clone();
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(
            csp.starts_with("default-src 'none'; script-src 'self'; style-src 'self'"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"));
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        let html = res.text().await.unwrap();
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "{path} loads nothing from elsewhere"
        );
        assert!(!html.contains("{{v}}"), "asset versions are filled in");
        assert!(
            !html.contains("<script>") && !html.contains(" style="),
            "no inline code or style"
        );
        let etag = headers[header::ETAG].to_str().unwrap().to_owned();
        let again = app
            .client
            .get(app.url(path))
            .header(header::IF_NONE_MATCH, &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert!(again.headers().contains_key(header::CONTENT_SECURITY_POLICY));
    }
}

#[actix_web::test]
async fn assets_have_their_types_and_only_the_current_version_is_cached_for_long() {
    let app = spawn_app().await;
    let html = app
        .client
        .get(app.url("/console"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let start = html.find("/assets/console.js?v=").unwrap();
    let url = &html[start..start + html[start..].find('"').unwrap()];
    let res = app.client.get(app.url(url)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()[header::CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(
        res.headers()[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert!(res.text().await.unwrap().contains("/api/v1/emergency/board"));
    for (name, kind) in [
        ("app.css", "text/css; charset=utf-8"),
        ("icon.svg", "image/svg+xml"),
        ("app.js", "text/javascript; charset=utf-8"),
    ] {
        let res = app
            .client
            .get(app.url(&format!("/assets/{name}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{name}");
        assert_eq!(res.headers()[header::CONTENT_TYPE], kind);
        // Without the current version the URL may be stale tomorrow: revalidate.
        assert_eq!(res.headers()[header::CACHE_CONTROL], "no-cache");
    }
    let missing = app.get("/assets/nope.js", None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.code(), "not_found");
    let traversal = app.get("/assets/..%2Fmod.rs", None).await;
    assert_eq!(traversal.status, StatusCode::NOT_FOUND);
    // Pages answer GET only; the API's JSON 404 still answers unknown paths.
    assert_eq!(app.get("/consoles", None).await.code(), "not_found");
}

#[actix_web::test]
async fn the_basemap_is_a_disk_of_h3_cells_around_the_point_and_bad_queries_are_refused() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(app.url("/api/v1/map/cells?near=12.97,77.59&radius_km=5&resolution=7"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CACHE_CONTROL], "public, max-age=86400");
    let map: serde_json::Value = res.json().await.unwrap();
    let rings = map["rings"].as_u64().unwrap();
    let cells = map["cells"].as_array().unwrap();
    assert_eq!(
        cells.len() as u64,
        3 * rings * (rings + 1) + 1,
        "a full disk of {rings} rings"
    );
    let center = h3o::LatLng::new(12.97, 77.59)
        .unwrap()
        .to_cell(h3o::Resolution::Seven);
    assert_eq!(map["center_cell"], center.to_string());
    let outline = cells.iter().find(|c| c["cell"] == center.to_string()).unwrap();
    let corners = outline["boundary"].as_array().unwrap();
    assert_eq!(corners.len(), 6);
    for corner in corners {
        let (lat, lng) = (corner[0].as_f64().unwrap(), corner[1].as_f64().unwrap());
        assert!(
            (lat - 12.97).abs() < 0.03 && (lng - 77.59).abs() < 0.03,
            "{lat},{lng}"
        );
    }
    // Every cell is distinct and at resolution 7.
    let mut ids: Vec<&str> = cells.iter().map(|c| c["cell"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), cells.len());
    assert!(
        ids.iter()
            .all(|id| id.parse::<h3o::CellIndex>().unwrap().resolution() == h3o::Resolution::Seven)
    );

    for (query, field) in [
        ("", "near"),
        ("near=91,77", "near"),
        ("near=12.9,77.5&radius_km=0", "radius_km"),
        ("near=12.9,77.5&radius_km=41", "radius_km"),
        ("near=12.9,77.5&resolution=12", "resolution"),
        ("near=12.9,77.5&radius_km=40&resolution=9", "radius_km"),
    ] {
        let refused = app.get(&format!("/api/v1/map/cells?{query}"), None).await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            refused.body
        );
        assert_eq!(refused.code(), "validation_failed");
        assert!(
            refused.body["error"]["details"][field].is_string(),
            "{query}: {}",
            refused.body
        );
    }
}

async fn crewed_unit(app: &TestApp) -> (String, i64) {
    let (dispatcher, _) = app.user_with_role(Role::Dispatcher).await;
    let (crew, user) = app.user_with_role(Role::Paramedic).await;
    let created = app
        .post(
            "/api/v1/emergency/units",
            &json!({"call_sign": "PAGE-1", "kind": "bls", "home": {"lat": 12.95, "lng": 77.6},
                    "crew": [{"user_id": user, "lead": true}]}),
            Some(&dispatcher),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    (crew, created.body["id"].as_i64().unwrap())
}

#[actix_web::test]
async fn a_crew_member_reads_their_own_unit_and_anyone_else_gets_404() {
    let app = spawn_app().await;
    let (crew, unit) = crewed_unit(&app).await;
    let mine = app.get("/api/v1/emergency/my-unit", Some(&crew)).await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
    assert_eq!(mine.body["id"], unit);
    assert_eq!(mine.body["call_sign"], "PAGE-1");
    assert_eq!(mine.body["status"], "off_duty");
    let (customer, _) = app.register_customer("no-unit@example.in").await;
    let none = app.get("/api/v1/emergency/my-unit", Some(&customer)).await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
    assert_eq!(none.code(), "not_found");
    assert_eq!(
        app.get("/api/v1/emergency/my-unit", None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[actix_web::test]
async fn the_servers_own_pages_may_open_websockets_on_any_port_but_other_sites_may_not() {
    let app = spawn_app().await;
    let (token, _) = app.register_customer("ws-pages@example.in").await;
    // The test server's port is not in the configured origins; its own pages still connect.
    let own = app.address.clone();
    assert!(
        Client::open_with(&app, Some(&token), Some(&own)).await.is_ok(),
        "{own}"
    );
    let other_port = format!("{own}1");
    assert_eq!(
        Client::open_with(&app, Some(&token), Some(&other_port))
            .await
            .err(),
        Some(StatusCode::FORBIDDEN)
    );
    assert_eq!(
        Client::open_with(&app, Some(&token), Some("http://evil.example"))
            .await
            .err(),
        Some(StatusCode::FORBIDDEN)
    );
}

#[actix_web::test]
async fn the_tracking_page_answers_order_ids_ambulance_requests_and_share_tokens_and_nothing_deeper() {
    let app = spawn_app().await;
    let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJvcmRlcjoxIn0.c2lnbmF0dXJl";
    for path in [
        "/track/42".to_owned(),
        "/track/ambulance/7".to_owned(),
        format!("/track/{token}"),
    ] {
        let res = app.client.get(app.url(&path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert!(res.headers().contains_key(header::CONTENT_SECURITY_POLICY));
        let html = res.text().await.unwrap();
        assert!(
            html.contains("/assets/track.js?v="),
            "{path} is the tracking page"
        );
    }
    for path in ["/track", "/track/1/2", "/track/ambulance/1/x"] {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let script = app.client.get(app.url("/assets/track.js")).send().await.unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert_eq!(
        script.headers()[header::CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
}
