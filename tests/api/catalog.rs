//! The medicine catalog: search, filters, sorting, pagination, the cache, and catalog administration.

use onemedi::domain::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    helpers::spawn_app,
    shop::{add_to_cart, brand, category, customer, medicine, order_body, shop, stock},
};

fn names(body: &Value) -> Vec<String> {
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_owned())
        .collect()
}

#[actix_web::test]
async fn search_filters_sorts_and_pages_the_catalog() {
    let app = spawn_app().await;
    let (staff, pain) = shop(&app).await;
    let heart = category(&app, &staff, "Heart Care").await;
    let cipla = brand(&app, &staff, "Cipla").await;
    let sun = brand(&app, &staff, "Sun Pharma").await;
    medicine(
        &app,
        &staff,
        pain,
        json!({"name": "Crocin Advance", "salt_composition": "Paracetamol 500 mg",
        "brand_id": cipla, "price_paise": 3000, "mrp_paise": 3000}),
    )
    .await;
    medicine(
        &app,
        &staff,
        pain,
        json!({"name": "Dolo 650", "salt_composition": "Paracetamol 650 mg",
        "brand_id": sun, "price_paise": 3200, "mrp_paise": 3400, "stock": 0}),
    )
    .await;
    medicine(
        &app,
        &staff,
        pain,
        json!({"name": "Brufen 400", "salt_composition": "Ibuprofen 400 mg",
        "brand_id": cipla, "price_paise": 2500, "mrp_paise": 2600}),
    )
    .await;
    medicine(
        &app,
        &staff,
        heart,
        json!({"name": "Telma 40", "salt_composition": "Telmisartan 40 mg",
        "brand_id": sun, "price_paise": 15000, "mrp_paise": 16000, "prescription_required": true}),
    )
    .await;
    medicine(
        &app,
        &staff,
        heart,
        json!({"name": "100% Pure_Test", "salt_composition": "Glucose",
        "price_paise": 900, "mrp_paise": 900}),
    )
    .await;

    let search = async |query: &str| {
        let reply = app.get(&format!("/api/v1/medicines?{query}"), None).await;
        assert_eq!(reply.status, StatusCode::OK, "{query}: {}", reply.body);
        reply.body
    };
    assert_eq!(
        names(&search("q=PARACETAMOL").await),
        ["Crocin Advance", "Dolo 650"],
        "by salt, any case"
    );
    assert_eq!(names(&search("q=dolo").await), ["Dolo 650"], "by name");
    assert_eq!(
        names(&search("q=sun%20pharma").await),
        ["Dolo 650", "Telma 40"],
        "by brand name"
    );
    assert_eq!(
        names(&search("q=%25").await),
        ["100% Pure_Test"],
        "a % is a literal, not a wildcard"
    );
    assert_eq!(
        names(&search("q=_").await),
        ["100% Pure_Test"],
        "an _ is a literal"
    );
    assert_eq!(
        names(&search("category=heart-care").await),
        ["100% Pure_Test", "Telma 40"]
    );
    assert_eq!(
        names(&search(&format!("category={heart}")).await),
        ["100% Pure_Test", "Telma 40"]
    );
    assert_eq!(
        names(&search(&format!("brand={cipla}")).await),
        ["Brufen 400", "Crocin Advance"]
    );
    assert_eq!(
        names(&search("brand=sun-pharma&prescription_required=true").await),
        ["Telma 40"]
    );
    assert_eq!(
        names(&search("min_price=2500&max_price=3000").await),
        ["Brufen 400", "Crocin Advance"]
    );
    assert_eq!(names(&search("in_stock=false").await), ["Dolo 650"]);
    assert_eq!(search("in_stock=true").await["total"], 4);
    assert_eq!(
        names(&search("sort=price_asc").await),
        [
            "100% Pure_Test",
            "Brufen 400",
            "Crocin Advance",
            "Dolo 650",
            "Telma 40"
        ]
    );
    assert_eq!(
        names(&search("sort=price_desc&per_page=2").await),
        ["Telma 40", "Dolo 650"]
    );
    assert_eq!(names(&search("sort=newest&per_page=1").await), ["100% Pure_Test"]);
    let page = search("sort=name&per_page=2&page=2").await;
    assert_eq!(names(&page), ["Crocin Advance", "Dolo 650"]);
    assert_eq!(
        (page["total"].as_i64(), page["page"].as_i64()),
        (Some(5), Some(2))
    );
    assert!(names(&search("q=nothing-like-this").await).is_empty());

    let categories = app.get("/api/v1/medicines/categories", None).await;
    assert_eq!(categories.body.as_array().unwrap().len(), 2);
    let brands = app.get("/api/v1/medicines/brands", None).await;
    assert_eq!(brands.body[0]["slug"], "cipla");
}

#[actix_web::test]
async fn bad_search_parameters_are_refused_with_details() {
    let app = spawn_app().await;
    for query in [
        "per_page=500",
        "page=0",
        "min_price=-1",
        "min_price=500&max_price=100",
        "sort=cheapest",
        "in_stock=maybe",
    ] {
        let reply = app.get(&format!("/api/v1/medicines?{query}"), None).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}: {}", reply.body);
        assert_eq!(reply.code(), "validation_failed");
    }
    let long = "a".repeat(101);
    let reply = app.get(&format!("/api/v1/medicines?q={long}"), None).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.body["error"]["details"]["q"].is_string());
    assert_eq!(
        app.get("/api/v1/medicines/abc", None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/v1/medicines/999999", None).await.status,
        StatusCode::NOT_FOUND
    );
}

#[actix_web::test]
async fn a_price_or_stock_change_is_visible_at_once_despite_the_cache() {
    let app = spawn_app().await;
    let (staff, pain) = shop(&app).await;
    let created = medicine(&app, &staff, pain, json!({"featured": true})).await;
    let id = created["id"].as_i64().unwrap();
    let path = format!("/api/v1/medicines/{id}");

    let first = app.get(&path, None).await;
    assert_eq!(first.headers["x-cache"], "miss");
    let second = app.get(&path, None).await;
    assert_eq!(second.headers["x-cache"], "hit");
    assert_eq!(second.body["price_paise"], 3000);
    let listed = app.get("/api/v1/medicines?q=paracetamol", None).await;
    assert_eq!(listed.body["items"][0]["price_paise"], 3000);
    app.get("/api/v1/medicines/featured", None).await;

    let reply = app
        .put(
            &format!("/api/v1/admin/medicines/{id}"),
            &json!({"price_paise": 2800, "stock": 7, "version": created["version"]}),
            Some(&staff),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);

    let after = app.get(&path, None).await;
    assert_eq!(after.headers["x-cache"], "miss");
    assert_eq!(
        (after.body["price_paise"].as_i64(), after.body["stock"].as_i64()),
        (Some(2800), Some(7))
    );
    let listed = app.get("/api/v1/medicines?q=paracetamol", None).await;
    assert_eq!(listed.body["items"][0]["price_paise"], 2800);
    let featured = app.get("/api/v1/medicines/featured", None).await;
    assert_eq!(featured.body[0]["price_paise"], 2800);
}

#[actix_web::test]
async fn a_deactivated_medicine_leaves_the_catalog() {
    let app = spawn_app().await;
    let (staff, pain) = shop(&app).await;
    let id = medicine(&app, &staff, pain, json!({})).await["id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        app.get(&format!("/api/v1/medicines/{id}"), None).await.status,
        StatusCode::OK
    );
    let reply = app
        .delete(&format!("/api/v1/admin/medicines/{id}"), Some(&staff))
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&format!("/api/v1/medicines/{id}"), None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.get("/api/v1/medicines", None).await.body["total"], 0);
    assert_eq!(
        app.delete("/api/v1/admin/medicines/999999", Some(&staff))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[actix_web::test]
async fn catalog_writes_need_staff_and_valid_fields() {
    let app = spawn_app().await;
    let (staff, pain) = shop(&app).await;
    let (customer, _) = app.user_with_role(Role::Customer).await;
    let reply = app
        .post(
            "/api/v1/admin/medicine-categories",
            &json!({"name": "Vitamins"}),
            Some(&customer),
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.post("/api/v1/admin/brands", &json!({"name": "X"}), None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    let reply = app
        .post(
            "/api/v1/admin/medicines",
            &json!({"name": " ", "salt_composition": "x", "category_id": pain, "dosage_form": "potion",
                "pack_size": "10", "price_paise": 5000, "mrp_paise": 4000, "stock": -1, "max_per_order": 0}),
            Some(&staff),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    let details = &reply.body["error"]["details"];
    for field in ["name", "dosage_form", "mrp_paise", "stock", "max_per_order"] {
        assert!(details[field].is_string(), "{field} missing in {details}");
    }
    let reply = app
        .post(
            "/api/v1/admin/medicines",
            &json!({"name": "A", "salt_composition": "x", "category_id": 999999, "dosage_form": "tablet",
                "pack_size": "10", "price_paise": 5000, "mrp_paise": 5000}),
            Some(&staff),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.body["error"]["details"]["category_id"].is_string());

    let id = medicine(&app, &staff, pain, json!({})).await["id"]
        .as_i64()
        .unwrap();
    let reply = app
        .put(
            &format!("/api/v1/admin/medicines/{id}"),
            &json!({"price_paise": 999999}),
            Some(&staff),
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "the price would exceed the MRP: {}",
        reply.body
    );
    let reply = app
        .put(
            &format!("/api/v1/admin/medicines/{id}"),
            &json!({"role": "x"}),
            Some(&staff),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);

    let reply = app
        .post(
            "/api/v1/admin/medicine-categories",
            &json!({"name": "Pain Relief"}),
            Some(&staff),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert_eq!(reply.code(), "conflict");
    let reply = app
        .put(
            &format!("/api/v1/admin/medicine-categories/{pain}"),
            &json!({"name": "Pain & Fever", "sort_order": 2}),
            Some(&staff),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["name"], "Pain & Fever");
    let brand_id = brand(&app, &staff, "Mankind").await;
    let reply = app
        .put(
            &format!("/api/v1/admin/brands/{brand_id}"),
            &json!({"name": "Mankind Pharma"}),
            Some(&staff),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let brands = app.get("/api/v1/medicines/brands", None).await;
    assert_eq!(
        brands.body[0]["name"], "Mankind Pharma",
        "the brand list was invalidated"
    );
}

#[actix_web::test]
async fn a_restock_racing_checkouts_keeps_every_sold_unit_sold() {
    let app = spawn_app().await;
    let (staff, pain) = shop(&app).await;
    let id = medicine(&app, &staff, pain, json!({"stock": 10})).await["id"]
        .as_i64()
        .unwrap();
    let mut customers = Vec::new();
    for _ in 0..10 {
        let c = customer(&app).await;
        add_to_cart(&app, &c, id, 2).await;
        customers.push(c);
    }
    let bodies: Vec<_> = customers.iter().map(|c| order_body(c, None)).collect();
    let checkouts = futures_util::future::join_all(
        customers
            .iter()
            .zip(&bodies)
            .map(|(c, body)| app.post("/api/v1/orders", body, Some(&c.token))),
    );
    let (path, restock) = (format!("/api/v1/admin/medicines/{id}"), json!({"stock_delta": 6}));
    let restock = app.put(&path, &restock, Some(&staff));
    let (orders, restocked) = tokio::join!(checkouts, restock);
    assert_eq!(restocked.status, StatusCode::OK, "{}", restocked.body);
    let won = orders.iter().filter(|r| r.status == StatusCode::CREATED).count();
    let refused: Vec<_> = orders
        .iter()
        .filter(|r| r.status != StatusCode::CREATED && r.code() != "out_of_stock")
        .map(|r| r.body.to_string())
        .collect();
    assert!(refused.is_empty(), "unexpected answers: {refused:?}");
    let sold = 2 * i32::try_from(won).unwrap();
    assert!(sold >= 10, "the first ten units were always there to sell");
    assert_eq!(stock(&app, id).await, 10 + 6 - sold);
}

#[actix_web::test]
async fn a_stock_take_at_a_stale_version_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let (staff, pain) = shop(&app).await;
    let (admin, _) = app.user_with_role(Role::Admin).await;
    let created = medicine(&app, &staff, pain, json!({"stock": 100})).await;
    let id = created["id"].as_i64().unwrap();
    let read_version = created["version"].as_i64().unwrap();
    // A checkout after staff read the row moves its version on.
    let asha = customer(&app).await;
    add_to_cart(&app, &asha, id, 1).await;
    let order = app
        .post("/api/v1/orders", &order_body(&asha, None), Some(&asha.token))
        .await;
    assert_eq!(order.status, StatusCode::CREATED, "{}", order.body);

    let path = format!("/api/v1/admin/medicines/{id}");
    let reply = app
        .put(
            &path,
            &json!({"stock": 40, "price_paise": 2500, "version": read_version}),
            Some(&staff),
        )
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::CONFLICT, "conflict"),
        "{}",
        reply.body
    );
    let details = &reply.body["error"]["details"];
    assert_eq!(details["stock"], 99);
    assert!(details["version"].as_i64().unwrap() > read_version);
    assert_eq!(stock(&app, id).await, 99);
    let now = app.get(&format!("/api/v1/medicines/{id}"), None).await;
    assert_eq!(now.body["price_paise"], 3000, "the whole change was refused");

    let reply = app
        .put(
            &path,
            &json!({"stock": 40, "version": details["version"]}),
            Some(&staff),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["stock"], 40);
    assert!(reply.body["version"].as_i64() > details["version"].as_i64());

    let audit = app
        .get("/api/v1/admin/audit-log?subject_type=medicine", Some(&admin))
        .await;
    assert_eq!(audit.body["total"], 1, "only the applied change: {}", audit.body);
    assert_eq!(audit.body["items"][0]["action"], "medicine.updated");
}

#[actix_web::test]
async fn stock_changes_need_a_version_or_stay_within_bounds() {
    let app = spawn_app().await;
    let (staff, pain) = shop(&app).await;
    let created = medicine(&app, &staff, pain, json!({"stock": 100})).await;
    let id = created["id"].as_i64().unwrap();
    let path = format!("/api/v1/admin/medicines/{id}");
    let refused = [
        (json!({"stock": 50}), "version"),
        (
            json!({"stock": 50, "stock_delta": 5, "version": created["version"]}),
            "stock_delta",
        ),
        (json!({"stock_delta": 0}), "stock_delta"),
        (json!({"stock_delta": 2_000_000}), "stock_delta"),
    ];
    for (body, field) in refused {
        let reply = app.put(&path, &body, Some(&staff)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}: {}", reply.body);
        assert_eq!(reply.code(), "validation_failed");
        assert!(
            reply.body["error"]["details"][field].is_string(),
            "{body}: {}",
            reply.body
        );
    }
    for delta in [-101, 999_901] {
        let reply = app.put(&path, &json!({"stock_delta": delta}), Some(&staff)).await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::CONFLICT, "conflict"),
            "{delta}: {}",
            reply.body
        );
        assert_eq!(reply.body["error"]["details"]["stock"], 100);
    }
    assert_eq!(stock(&app, id).await, 100);

    let reply = app.put(&path, &json!({"stock_delta": -100}), Some(&staff)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["stock"], 0);
}
