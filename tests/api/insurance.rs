//! Insurance: the plan catalog, purchases paid through the payments flow (checkout verification and
//! webhooks), one policy issued however often either is replayed, and privacy of purchases and policies.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use onemedi::{
    db::{self, doctors::local_today, schema},
    integrations::razorpay,
    on_conn,
};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::helpers::{Reply, TestApp, into_reply, spawn_app};

/// Inserts two active plans and an inactive one: (individual id, family id, inactive id).
async fn insert_plans(app: &TestApp) -> (i64, i64, i64) {
    use schema::insurance_plans as ip;
    let mut conn = app.app.db.write().await.unwrap();
    let mut insert =
        async |slug: &str, plan_type: &str, premium: i64, tenure: i32, members: i32, active: bool| {
            on_conn!(&mut conn, c => diesel::insert_into(ip::table)
            .values((
                ip::name.eq(format!("Plan {slug}")),
                ip::slug.eq(slug),
                ip::insurer.eq("Suraksha General"),
                ip::plan_type.eq(plan_type),
                ip::cover_paise.eq(50_000_000_i64),
                ip::premium_paise.eq(premium),
                ip::tenure_months.eq(tenure),
                ip::initial_waiting_days.eq(30),
                ip::pre_existing_waiting_days.eq(730),
                ip::min_entry_age.eq(18),
                ip::max_entry_age.eq(65),
                ip::max_members.eq(members),
                ip::features.eq(r#"["Cashless at network hospitals"]"#),
                ip::is_active.eq(active),
            ))
            .returning(ip::id)
            .get_result::<i64>(c)
            .await)
            .unwrap()
        };
    (
        insert("shield", "individual", 799_900, 12, 1, true).await,
        insert("family", "family_floater", 1_749_900, 24, 4, true).await,
        insert("old", "individual", 99_900, 12, 1, false).await,
    )
}

fn adult(name: &str, age: i32) -> Value {
    json!({"name": name, "relation": "self", "age": age, "gender": "female"})
}

async fn buy(app: &TestApp, token: &str, plan: i64, members: Value) -> Reply {
    app.post(
        "/api/v1/insurance/purchases",
        &json!({"plan_id": plan, "members": members}),
        Some(token),
    )
    .await
}

/// A pending purchase of `plan` by a new customer: (token, purchase id, razorpay order id).
async fn pending_purchase(app: &TestApp, plan: i64) -> (String, i64, String) {
    let (token, _) = app
        .register_customer(&format!("ins-{}@example.in", uuid::Uuid::new_v4().simple()))
        .await;
    let bought = buy(app, &token, plan, json!([adult("Asha Rao", 34)])).await;
    assert_eq!(bought.status, StatusCode::CREATED, "{}", bought.body);
    assert_eq!(bought.body["status"], "pending_payment");
    assert!(bought.body["policy_number"].is_null());
    let purchase = bought.body["id"].as_i64().unwrap();
    let order = app
        .post(
            "/api/v1/payments/create-order",
            &json!({"insurance_purchase_id": purchase}),
            Some(&token),
        )
        .await;
    assert_eq!(order.status, StatusCode::OK, "{}", order.body);
    assert_eq!(order.body["purpose"], "insurance");
    assert_eq!(order.body["amount_paise"], bought.body["premium_paise"]);
    assert!(order.body.get("order_id").is_none());
    (
        token,
        purchase,
        order.body["razorpay_order_id"].as_str().unwrap().to_owned(),
    )
}

pub async fn simulate(app: &TestApp, token: &str, provider_order: &str) -> Value {
    let reply = app
        .post(
            "/api/v1/payments/simulate",
            &json!({"razorpay_order_id": provider_order}),
            Some(token),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

/// How many policy-issued rows the purchase's timeline has.
async fn issues(app: &TestApp, purchase: i64) -> i64 {
    use schema::entity_transitions as et;
    let mut conn = app.app.db.read().await.unwrap();
    on_conn!(&mut conn, c => et::table
        .filter(
            et::entity_type
                .eq("insurance_purchase")
                .and(et::entity_id.eq(purchase))
                .and(et::event.eq("policy_issued")),
        )
        .count()
        .get_result::<i64>(c)
        .await)
    .unwrap()
}

pub async fn post_webhook(app: &TestApp, body: &str, event_id: &str) -> Reply {
    let secret = app.app.payments.webhook_secret().expose_secret().to_owned();
    let signature = hex::encode(razorpay::hmac_sha256(secret.as_bytes(), body.as_bytes()));
    let response = app
        .client
        .post(app.url("/api/v1/payments/webhook"))
        .header("content-type", "application/json")
        .header("x-razorpay-signature", signature)
        .header("x-razorpay-event-id", event_id)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    into_reply(response).await
}

pub fn captured(provider_order: &str, payment_id: &str, amount: i64) -> String {
    json!({
        "entity": "event", "event": "payment.captured", "contains": ["payment"],
        "payload": {"payment": {"entity": {"id": payment_id, "entity": "payment", "amount": amount,
            "currency": "INR", "status": "captured", "order_id": provider_order, "method": "card"}}},
    })
    .to_string()
}

#[actix_web::test]
async fn plans_list_with_their_terms_by_type_and_page() {
    let app = spawn_app().await;
    let (shield, family, old) = insert_plans(&app).await;
    let all = app.get("/api/v1/insurance/plans", None).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert_eq!(all.body["total"], 2);
    let first = &all.body["items"][0];
    assert_eq!(first["id"], shield);
    assert_eq!(first["premium_paise"], 799_900);
    assert_eq!(first["initial_waiting_days"], 30);
    assert_eq!(first["tenure_months"], 12);
    assert_eq!(first["features"][0], "Cashless at network hospitals");
    let families = app
        .get("/api/v1/insurance/plans?plan_type=family_floater", None)
        .await;
    assert_eq!(families.body["total"], 1);
    assert_eq!(families.body["items"][0]["id"], family);
    assert_eq!(
        app.get(&format!("/api/v1/insurance/plans/{family}"), None)
            .await
            .body["max_members"],
        4
    );
    assert_eq!(
        app.get(&format!("/api/v1/insurance/plans/{old}"), None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let bad = app.get("/api/v1/insurance/plans?plan_type=car", None).await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::BAD_REQUEST, "validation_failed")
    );
}

#[actix_web::test]
async fn a_paid_purchase_becomes_one_policy_for_the_plan_term_however_often_payment_is_replayed() {
    let app = spawn_app().await;
    let (_, family, _) = insert_plans(&app).await;
    let (token, _) = app.register_customer("family-buyer@example.in").await;
    let members = json!([adult("Asha Rao", 34),
        {"name": "Vikram Rao", "relation": "spouse", "age": 36},
        {"name": "Mira Rao", "relation": "child", "age": 4}]);
    let bought = buy(&app, &token, family, members).await;
    assert_eq!(bought.status, StatusCode::CREATED, "{}", bought.body);
    assert_eq!(bought.body["members"].as_array().unwrap().len(), 3);
    let purchase = bought.body["id"].as_i64().unwrap();
    let body = json!({"insurance_purchase_id": purchase});
    let order = app
        .post("/api/v1/payments/create-order", &body, Some(&token))
        .await;
    let again = app
        .post("/api/v1/payments/create-order", &body, Some(&token))
        .await;
    assert_eq!(
        order.body["razorpay_order_id"], again.body["razorpay_order_id"],
        "one provider order"
    );
    assert_eq!(order.body["amount_paise"], 1_749_900);
    let provider_order = order.body["razorpay_order_id"].as_str().unwrap();
    let unpaid = app
        .get(&format!("/api/v1/insurance/policies/{purchase}"), Some(&token))
        .await;
    assert_eq!(
        unpaid.status,
        StatusCode::NOT_FOUND,
        "an unpaid purchase is not a policy"
    );

    let checkout = simulate(&app, &token, provider_order).await;
    let replies = futures_util::future::join_all(
        (0..4).map(|_| app.post("/api/v1/payments/verify", &checkout, Some(&token))),
    )
    .await;
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(reply.body["insurance_purchase_id"], purchase);
        assert_eq!(reply.body["purchase_status"], "active");
        assert!(reply.body.get("order_id").is_none());
    }
    let number = replies[0].body["policy_number"].as_str().unwrap().to_owned();
    assert!(replies.iter().all(|r| r.body["policy_number"] == number.as_str()));
    // The provider's webhook for the same payment, delivered twice, changes nothing more.
    let payment_id = checkout["razorpay_payment_id"].as_str().unwrap();
    let event = captured(provider_order, payment_id, 1_749_900);
    for _ in 0..2 {
        let reply = post_webhook(&app, &event, "evt_InsCaptured01").await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    assert_eq!(issues(&app, purchase).await, 1, "the policy is issued once");

    let policy = app
        .get(&format!("/api/v1/insurance/policies/{purchase}"), Some(&token))
        .await;
    assert_eq!(policy.status, StatusCode::OK, "{}", policy.body);
    assert_eq!(policy.body["policy_number"], number.as_str());
    let starts = local_today(db::now()) + chrono::TimeDelta::days(1);
    let ends = starts
        .checked_add_months(chrono::Months::new(24))
        .unwrap()
        .pred_opt()
        .unwrap();
    assert_eq!(policy.body["starts_on"], starts.to_string());
    assert_eq!(
        policy.body["ends_on"],
        ends.to_string(),
        "the plan's 24-month term"
    );
    assert_eq!(
        policy.body["illness_covered_from"],
        (starts + chrono::TimeDelta::days(30)).to_string()
    );
    let listed = app.get("/api/v1/insurance/policies", Some(&token)).await;
    assert_eq!(listed.body["total"], 1);
    assert_eq!(listed.body["items"][0]["id"], purchase);

    let paid_again = app
        .post("/api/v1/payments/create-order", &body, Some(&token))
        .await;
    assert_eq!(
        (paid_again.status, paid_again.code()),
        (StatusCode::CONFLICT, "already_paid")
    );
}

#[actix_web::test]
async fn a_webhook_alone_issues_the_policy_once_and_a_later_verify_agrees() {
    let app = spawn_app().await;
    let (shield, _, _) = insert_plans(&app).await;
    let (token, purchase, provider_order) = pending_purchase(&app, shield).await;
    let checkout = simulate(&app, &token, &provider_order).await;
    let payment_id = checkout["razorpay_payment_id"].as_str().unwrap();
    let wrong_amount = post_webhook(
        &app,
        &captured(&provider_order, "pay_Other0000001", 100),
        "evt_Wrong01",
    )
    .await;
    assert_eq!(wrong_amount.status, StatusCode::OK);
    let still_pending = app
        .get(&format!("/api/v1/insurance/purchases/{purchase}"), Some(&token))
        .await;
    assert_eq!(
        still_pending.body["status"], "pending_payment",
        "a wrong amount issues nothing"
    );

    let (token2, purchase2, provider_order2) = pending_purchase(&app, shield).await;
    let checkout2 = simulate(&app, &token2, &provider_order2).await;
    let payment2 = checkout2["razorpay_payment_id"].as_str().unwrap();
    let event = captured(&provider_order2, payment2, 799_900);
    let replies = futures_util::future::join_all([
        post_webhook(&app, &event, "evt_Race01"),
        post_webhook(&app, &event, "evt_Race02"),
        post_webhook(&app, &event, "evt_Race01"),
    ])
    .await;
    assert!(replies.iter().all(|r| r.status == StatusCode::OK));
    assert_eq!(issues(&app, purchase2).await, 1);
    let verified = app
        .post("/api/v1/payments/verify", &checkout2, Some(&token2))
        .await;
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.body);
    assert_eq!(verified.body["purchase_status"], "active");
    assert_eq!(issues(&app, purchase2).await, 1);
    // The first purchase's flagged payment cannot be completed by its checkout either.
    let flagged = app.post("/api/v1/payments/verify", &checkout, Some(&token)).await;
    assert_eq!(flagged.code(), "payment_not_applicable", "{}", flagged.body);
    assert!(payment_id.starts_with("pay_"));
    assert_eq!(issues(&app, purchase).await, 0);
}

#[actix_web::test]
async fn another_customer_can_neither_pay_for_nor_see_someone_elses_purchase_or_policy() {
    let app = spawn_app().await;
    let (shield, _, _) = insert_plans(&app).await;
    let (token, purchase, provider_order) = pending_purchase(&app, shield).await;
    let (stranger, _) = app.register_customer("stranger@example.in").await;

    let pay = app
        .post(
            "/api/v1/payments/create-order",
            &json!({"insurance_purchase_id": purchase}),
            Some(&stranger),
        )
        .await;
    assert_eq!((pay.status, pay.code()), (StatusCode::NOT_FOUND, "not_found"));
    let stand_in = app
        .post(
            "/api/v1/payments/simulate",
            &json!({"razorpay_order_id": provider_order}),
            Some(&stranger),
        )
        .await;
    assert_eq!(stand_in.status, StatusCode::NOT_FOUND);
    // The owner's own signed checkout, replayed by someone else, is refused and applies nothing.
    let checkout = simulate(&app, &token, &provider_order).await;
    let stolen = app
        .post("/api/v1/payments/verify", &checkout, Some(&stranger))
        .await;
    assert_eq!(stolen.status, StatusCode::NOT_FOUND, "{}", stolen.body);
    assert_eq!(issues(&app, purchase).await, 0);
    // A forged signature is refused for the owner too.
    let mut forged = checkout.clone();
    forged["razorpay_signature"] = json!("0".repeat(64));
    let refused = app.post("/api/v1/payments/verify", &forged, Some(&token)).await;
    assert_eq!(
        (refused.status, refused.code()),
        (StatusCode::BAD_REQUEST, "signature_invalid")
    );

    let paid = app.post("/api/v1/payments/verify", &checkout, Some(&token)).await;
    assert_eq!(paid.status, StatusCode::OK, "{}", paid.body);
    for path in [
        format!("/api/v1/insurance/purchases/{purchase}"),
        format!("/api/v1/insurance/policies/{purchase}"),
    ] {
        let seen = app.get(&path, Some(&stranger)).await;
        assert_eq!(
            (seen.status, seen.code()),
            (StatusCode::NOT_FOUND, "not_found"),
            "{path}"
        );
        assert_eq!(
            app.get(&path, Some(&token)).await.status,
            StatusCode::OK,
            "{path}"
        );
    }
    assert_eq!(
        app.get("/api/v1/insurance/policies", Some(&stranger)).await.body["total"],
        0
    );
    assert_eq!(
        app.get("/api/v1/insurance/policies", None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[actix_web::test]
async fn purchases_outside_the_plan_rules_are_refused_and_write_nothing() {
    let app = spawn_app().await;
    let (shield, family, old) = insert_plans(&app).await;
    let (token, _) = app.register_customer("rules@example.in").await;
    let cases = [
        (shield, json!([]), "members"),
        (
            shield,
            json!([adult("A", 30), {"name": "B", "relation": "spouse", "age": 30}]),
            "members",
        ),
        (shield, json!([adult("A", 70)]), "members[0].age"),
        (shield, json!([adult("A", 12)]), "members[0].age"),
        (
            shield,
            json!([{"name": "A", "relation": "cousin", "age": 30}]),
            "members[0].relation",
        ),
        (
            shield,
            json!([{"name": " ", "relation": "self", "age": 30}]),
            "members[0].name",
        ),
        (family, json!([adult("A", 30), adult("B", 31)]), "members"),
        (
            family,
            json!([adult("A", 30), {"name": "C", "relation": "child", "age": 30}]),
            "members[1].age",
        ),
        (old, json!([adult("A", 30)]), "plan_id"),
        (999_999, json!([adult("A", 30)]), "plan_id"),
    ];
    for (plan, members, field) in cases {
        let reply = buy(&app, &token, plan, members.clone()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{members}: {}", reply.body);
        assert_eq!(reply.code(), "validation_failed");
        assert!(
            reply.body["error"]["details"][field].is_string(),
            "{field}: {}",
            reply.body
        );
    }
    let both = app
        .post(
            "/api/v1/payments/create-order",
            &json!({"order_id": 1, "insurance_purchase_id": 1}),
            Some(&token),
        )
        .await;
    assert_eq!(
        (both.status, both.code()),
        (StatusCode::BAD_REQUEST, "validation_failed")
    );
    let neither = app
        .post("/api/v1/payments/create-order", &json!({}), Some(&token))
        .await;
    assert_eq!(neither.status, StatusCode::BAD_REQUEST);
    use schema::insurance_purchases as pu;
    let mut conn = app.app.db.read().await.unwrap();
    let stored = on_conn!(&mut conn, c => pu::table.count().get_result::<i64>(c).await).unwrap();
    assert_eq!(stored, 0);
}
