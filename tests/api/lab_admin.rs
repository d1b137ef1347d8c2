//! Staff management of the lab catalog: tests and packages whose sample type, stability and fasting
//! follow their contents, withdrawal, refusals that change nothing, the role matrix and the audit log.

use onemedi::{db::demo, domain::Role};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

async fn seeded() -> (TestApp, String) {
    let app = spawn_app().await;
    let mut conn = app.app.db.write().await.unwrap();
    assert!(demo::seed(&mut conn).await.unwrap());
    drop(conn);
    let (staff, _) = app.user_with_role(Role::Staff).await;
    (app, staff)
}

/// The id of the demo test with this code.
async fn test_id(app: &TestApp, code: &str) -> i64 {
    let found = app
        .get(&format!("/api/v1/lab-tests?q={code}&per_page=50"), None)
        .await;
    found.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["code"] == code)
        .unwrap_or_else(|| panic!("no {code}: {}", found.body))["id"]
        .as_i64()
        .unwrap()
}

async fn category(app: &TestApp, staff: &str, name: &str) -> i64 {
    let made = app
        .post(
            "/api/v1/admin/lab-categories",
            &json!({"name": name, "sort_order": 5}),
            Some(staff),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    made.body["id"].as_i64().unwrap()
}

fn single(category: i64, code: &str, sample: &str, stability: i64, fasting: i64) -> Value {
    json!({
        "category_id": category, "code": code, "name": format!("Test {code}"), "sample_type": sample,
        "stability_hours": stability, "fasting_hours": fasting, "price_paise": 20000, "mrp_paise": 30000,
    })
}

#[actix_web::test]
async fn staff_add_a_test_that_customers_then_find_at_its_current_price() {
    let (app, staff) = seeded().await;
    let hormones = category(&app, &staff, "Hormones").await;
    let made = app
        .post(
            "/api/v1/admin/lab-tests",
            &single(hormones, "prl", "blood", 8, 0),
            Some(&staff),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    assert_eq!(made.body["code"], "PRL", "codes are stored upper-case");
    assert_eq!(made.body["is_package"], false);
    let id = made.body["id"].as_i64().unwrap();

    let found = app.get("/api/v1/lab-tests?category=hormones", None).await;
    assert_eq!(found.body["total"], 1, "{}", found.body);
    assert_eq!(found.body["items"][0]["id"], id);
    let categories = app.get("/api/v1/lab-tests/categories", None).await;
    assert!(
        categories
            .body
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["slug"] == "hormones"),
        "{}",
        categories.body
    );

    let repriced = app
        .put(
            &format!("/api/v1/admin/lab-tests/{id}"),
            &json!({"price_paise": 17500, "featured": true}),
            Some(&staff),
        )
        .await;
    assert_eq!(repriced.status, StatusCode::OK, "{}", repriced.body);
    let public = app.get(&format!("/api/v1/lab-tests/{id}"), None).await;
    assert_eq!(public.body["price_paise"], 17500);
    assert_eq!(public.body["featured"], true);

    let audit = app
        .get(
            "/api/v1/admin/audit-log?subject_type=lab_test",
            Some(&{
                let (admin, _) = app.user_with_role(Role::Admin).await;
                admin
            }),
        )
        .await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["lab_test.update", "lab_test.create"]);
}

#[actix_web::test]
async fn a_package_takes_the_shortest_stability_and_longest_fasting_of_its_tests_and_follows_their_changes() {
    let (app, staff) = seeded().await;
    let (cbc, fbs, urine) = (
        test_id(&app, "CBC").await,
        test_id(&app, "FBS").await,
        test_id(&app, "URINE-RE").await,
    );
    let body = json!({
        "category_id": category(&app, &staff, "Wellness").await, "code": "PKG-BASIC",
        "name": "Basic screen", "price_paise": 39900, "mrp_paise": 60000, "turnaround_hours": 30,
        "includes": [cbc, fbs],
    });
    let made = app.post("/api/v1/admin/lab-tests", &body, Some(&staff)).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let package = made.body["id"].as_i64().unwrap();
    assert_eq!(made.body["is_package"], true);
    assert_eq!(made.body["sample_type"], "blood");
    assert_eq!(made.body["stability_hours"], 24);
    assert_eq!(made.body["fasting_hours"], 10);
    assert_eq!(made.body["turnaround_hours"], 30);
    assert_eq!(made.body["includes"].as_array().unwrap().len(), 2);

    let with_urine = app
        .put(
            &format!("/api/v1/admin/lab-tests/{package}"),
            &json!({"includes": [cbc, fbs, urine]}),
            Some(&staff),
        )
        .await;
    assert_eq!(with_urine.status, StatusCode::OK, "{}", with_urine.body);
    assert_eq!(with_urine.body["sample_type"], "mixed");
    assert_eq!(with_urine.body["stability_hours"], 2);

    // A member's change reaches every package holding it: the demo's diabetes package holds FBS too.
    let fbs_change = app
        .put(
            &format!("/api/v1/admin/lab-tests/{fbs}"),
            &json!({"fasting_hours": 14}),
            Some(&staff),
        )
        .await;
    assert_eq!(fbs_change.status, StatusCode::OK, "{}", fbs_change.body);
    let diabetes = test_id(&app, "PKG-DIABETES").await;
    for id in [package, diabetes] {
        let seen = app.get(&format!("/api/v1/lab-tests/{id}"), None).await;
        assert_eq!(seen.body["fasting_hours"], 14, "{}", seen.body);
    }

    // Withdrawing the urine test leaves the package blood-only again, and it is no longer listed in it.
    let withdrawn = app
        .delete(&format!("/api/v1/admin/lab-tests/{urine}"), Some(&staff))
        .await;
    assert_eq!(withdrawn.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&format!("/api/v1/lab-tests/{urine}"), None).await.status,
        StatusCode::NOT_FOUND
    );
    let seen = app.get(&format!("/api/v1/lab-tests/{package}"), None).await;
    assert_eq!(seen.body["sample_type"], "blood");
    assert_eq!(seen.body["stability_hours"], 24);
    assert_eq!(seen.body["includes"].as_array().unwrap().len(), 2);
    let withdrawn_list = app
        .get("/api/v1/admin/lab-tests?active=false", Some(&staff))
        .await;
    assert_eq!(withdrawn_list.body["total"], 1, "{}", withdrawn_list.body);
    assert_eq!(withdrawn_list.body["items"][0]["code"], "URINE-RE");
    assert_eq!(withdrawn_list.body["items"][0]["is_active"], false);

    let restored = app
        .put(
            &format!("/api/v1/admin/lab-tests/{urine}"),
            &json!({"is_active": true}),
            Some(&staff),
        )
        .await;
    assert_eq!(restored.status, StatusCode::OK, "{}", restored.body);
    let seen = app.get(&format!("/api/v1/lab-tests/{package}"), None).await;
    assert_eq!(seen.body["sample_type"], "mixed");
}

#[actix_web::test]
async fn bad_catalog_writes_are_refused_by_field_and_change_nothing() {
    let (app, staff) = seeded().await;
    let cbc = test_id(&app, "CBC").await;
    let package = test_id(&app, "PKG-DIABETES").await;
    let before = app
        .get("/api/v1/admin/lab-tests?per_page=100", Some(&staff))
        .await;
    let fever = app.get("/api/v1/lab-tests/categories", None).await.body[0]["id"]
        .as_i64()
        .unwrap();

    let cases = [
        (single(fever, "X", "blood", 8, 0), "code"),
        (single(fever, "NEW-1", "plasma", 8, 0), "sample_type"),
        (single(fever, "NEW-1", "blood", 0, 0), "stability_hours"),
        (single(fever, "NEW-1", "blood", 8, 30), "fasting_hours"),
        (single(999_999, "NEW-1", "blood", 8, 0), "category_id"),
        (
            json!({"category_id": fever, "code": "NEW-1", "name": "No sample", "price_paise": 1, "mrp_paise": 1}),
            "sample_type",
        ),
        (
            json!({"category_id": fever, "code": "NEW-1", "name": "Cheap", "sample_type": "blood",
                "stability_hours": 4, "price_paise": 500, "mrp_paise": 400}),
            "mrp_paise",
        ),
        (
            json!({"category_id": fever, "code": "PKG-X", "name": "One", "price_paise": 1, "mrp_paise": 1,
                "includes": [cbc]}),
            "includes",
        ),
        (
            json!({"category_id": fever, "code": "PKG-X", "name": "Twice", "price_paise": 1, "mrp_paise": 1,
                "includes": [cbc, cbc]}),
            "includes",
        ),
        (
            json!({"category_id": fever, "code": "PKG-X", "name": "Nested", "price_paise": 1, "mrp_paise": 1,
                "includes": [cbc, package]}),
            "includes",
        ),
        (
            json!({"category_id": fever, "code": "PKG-X", "name": "Hand set", "price_paise": 1, "mrp_paise": 1,
                "stability_hours": 48, "includes": [cbc, test_id(&app, "FBS").await]}),
            "stability_hours",
        ),
    ];
    for (body, field) in cases {
        let reply = app.post("/api/v1/admin/lab-tests", &body, Some(&staff)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}: {}", reply.body);
        assert!(
            reply.body["error"]["details"][field].is_string(),
            "{field}: {}",
            reply.body
        );
    }
    let taken = app
        .post(
            "/api/v1/admin/lab-tests",
            &single(fever, "cbc", "blood", 8, 0),
            Some(&staff),
        )
        .await;
    assert_eq!((taken.status, taken.code()), (StatusCode::CONFLICT, "conflict"));

    for (body, field) in [
        (json!({"includes": [package, cbc]}), "includes"),
        (json!({"price_paise": 10_000_000}), "mrp_paise"),
        (json!({"sample_type": "urine"}), "sample_type"),
    ] {
        let reply = app
            .put(&format!("/api/v1/admin/lab-tests/{package}"), &body, Some(&staff))
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}: {}", reply.body);
        assert!(
            reply.body["error"]["details"][field].is_string(),
            "{}",
            reply.body
        );
    }
    let contents_of_a_test = app
        .put(
            &format!("/api/v1/admin/lab-tests/{cbc}"),
            &json!({"includes": [package, cbc]}),
            Some(&staff),
        )
        .await;
    assert_eq!(contents_of_a_test.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.put(
            "/api/v1/admin/lab-tests/999999",
            &json!({"featured": true}),
            Some(&staff)
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );

    let after = app
        .get("/api/v1/admin/lab-tests?per_page=100", Some(&staff))
        .await;
    assert_eq!(before.body, after.body, "nothing changed");
}

#[actix_web::test]
async fn only_staff_and_admins_manage_the_lab_catalog() {
    let (app, _) = seeded().await;
    let cbc = test_id(&app, "CBC").await;
    for role in [
        Role::Customer,
        Role::Doctor,
        Role::Partner,
        Role::Phlebotomist,
        Role::Dispatcher,
    ] {
        let (token, _) = app.user_with_role(role).await;
        let replies = [
            app.get("/api/v1/admin/lab-tests", Some(&token)).await,
            app.post(
                "/api/v1/admin/lab-tests",
                &single(1, "NEW-1", "blood", 8, 0),
                Some(&token),
            )
            .await,
            app.put(
                &format!("/api/v1/admin/lab-tests/{cbc}"),
                &json!({"featured": true}),
                Some(&token),
            )
            .await,
            app.delete(&format!("/api/v1/admin/lab-tests/{cbc}"), Some(&token))
                .await,
            app.post(
                "/api/v1/admin/lab-categories",
                &json!({"name": "X"}),
                Some(&token),
            )
            .await,
        ];
        for reply in replies {
            assert_eq!(reply.status, StatusCode::FORBIDDEN, "{role:?}: {}", reply.body);
        }
    }
    assert_eq!(
        app.get("/api/v1/admin/lab-tests", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let (admin, _) = app.user_with_role(Role::Admin).await;
    assert_eq!(
        app.get("/api/v1/admin/lab-tests", Some(&admin)).await.status,
        StatusCode::OK
    );
}
