//! Hospitals' beds, blood banks' stock, blood requests: compatible reservations that never oversell,
//! donor alerts only to eligible compatible donors, pledges, cancellation and who may see what.

use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use onemedi::{db::schema, domain::Role, on_conn};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, spawn_app},
    ws_client::Client,
};

/// The centre of the test city.
const LAT: f64 = 12.9716;
const LNG: f64 = 77.5946;

async fn insert_hospital(app: &TestApp, name: &str, partner: Option<i64>, lat: f64, lng: f64) -> i64 {
    use schema::hospitals as h;
    let slug = format!("h-{}", uuid::Uuid::new_v4().simple());
    let mut conn = app.app.db.write().await.unwrap();
    on_conn!(&mut conn, c => diesel::insert_into(h::table)
        .values((
            h::name.eq(name),
            h::slug.eq(&slug),
            h::address.eq("1 Test Road"),
            h::city.eq("Bengaluru"),
            h::pincode.eq("560001"),
            h::lat.eq(lat),
            h::lng.eq(lng),
            h::beds_general_total.eq(100),
            h::beds_general_available.eq(10),
            h::beds_icu_total.eq(20),
            h::beds_icu_available.eq(2),
            h::beds_emergency_total.eq(10),
            h::beds_emergency_available.eq(1),
            h::partner_user_id.eq(partner),
        ))
        .returning(h::id)
        .get_result::<i64>(c)
        .await)
    .unwrap()
}

async fn insert_bank(app: &TestApp, name: &str, partner: Option<i64>, lat: f64, lng: f64) -> i64 {
    use schema::blood_banks as b;
    let mut conn = app.app.db.write().await.unwrap();
    on_conn!(&mut conn, c => diesel::insert_into(b::table)
        .values((
            b::name.eq(name),
            b::partner_user_id.eq(partner),
            b::address.eq("2 Test Road"),
            b::lat.eq(lat),
            b::lng.eq(lng),
        ))
        .returning(b::id)
        .get_result::<i64>(c)
        .await)
    .unwrap()
}

async fn insert_stock(app: &TestApp, bank: i64, group: &str, component: &str, units: i32) -> i64 {
    use schema::blood_stock as s;
    let mut conn = app.app.db.write().await.unwrap();
    on_conn!(&mut conn, c => diesel::insert_into(s::table)
        .values((
            s::blood_bank_id.eq(bank),
            s::blood_group.eq(group),
            s::component.eq(component),
            s::units_available.eq(units),
        ))
        .returning(s::id)
        .get_result::<i64>(c)
        .await)
    .unwrap()
}

/// (units_available, units_reserved) of a stock line.
async fn stock(app: &TestApp, id: i64) -> (i32, i32) {
    use schema::blood_stock as s;
    let mut conn = app.app.db.read().await.unwrap();
    on_conn!(&mut conn, c => s::table
        .find(id)
        .select((s::units_available, s::units_reserved))
        .first::<(i32, i32)>(c)
        .await)
    .unwrap()
}

async fn count_requests(app: &TestApp) -> i64 {
    let mut conn = app.app.db.read().await.unwrap();
    on_conn!(&mut conn, c => schema::blood_requests::table.count().get_result::<i64>(c).await).unwrap()
}

/// Users with a `blood_request_nearby` notification, sorted.
async fn notified_users(app: &TestApp) -> Vec<i64> {
    use schema::notifications as n;
    let mut conn = app.app.db.read().await.unwrap();
    on_conn!(&mut conn, c => n::table
        .filter(n::kind.eq("blood_request_nearby"))
        .order(n::user_id.asc())
        .select(n::user_id)
        .load::<i64>(c)
        .await)
    .unwrap()
}

/// A registered customer with a donor profile; returns (token, id).
async fn donor(
    app: &TestApp,
    group: &str,
    donated_days_ago: Option<i64>,
    available: bool,
    at: (f64, f64),
) -> (String, i64) {
    let email = format!("donor-{}@example.in", uuid::Uuid::new_v4().simple());
    let (token, id) = app.register_customer(&email).await;
    let last = donated_days_ago
        .map(|days| (chrono::Utc::now().date_naive() - chrono::TimeDelta::days(days)).to_string());
    let saved = app
        .put(
            "/api/v1/users/donor-profile",
            &json!({"blood_group": group, "last_donation_date": last, "lat": at.0, "lng": at.1, "available": available}),
            Some(&token),
        )
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    (token, id)
}

fn request_body(group: &str, component: &str, units: i64) -> Value {
    json!({
        "blood_group": group,
        "component": component,
        "units": units,
        "location": {"lat": LAT, "lng": LNG},
        "urgency": "critical",
        "patient_name": "Ravi Kumar",
        "contact_phone": "+919800000001",
    })
}

async fn create_request(app: &TestApp, token: &str, body: &Value) -> Value {
    let reply = app
        .post("/api/v1/emergency/blood-requests", body, Some(token))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body
}

#[actix_web::test]
async fn hospitals_are_listed_nearest_first_with_beds_and_distance_within_the_radius() {
    let app = spawn_app().await;
    let far = insert_hospital(&app, "Far", None, 13.05, 77.65).await;
    let near = insert_hospital(&app, "Near", None, 12.975, 77.60).await;
    let outside = insert_hospital(&app, "Outside", None, 13.5, 78.5).await;

    let reply = app
        .get(&format!("/api/v1/hospitals?near={LAT},{LNG}&radius_km=20"), None)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let ids: Vec<i64> = reply.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [near, far]);
    assert_eq!(reply.body["total"], 2);
    let first = &reply.body["items"][0];
    let d = first["distance_m"].as_i64().unwrap();
    assert!((500..1000).contains(&d), "{d}");
    assert_eq!(first["beds"]["icu"], json!({"total": 20, "available": 2}));

    let all = app.get("/api/v1/hospitals?per_page=2&page=2", None).await;
    assert_eq!(all.body["total"], 3);
    assert_eq!(all.body["items"].as_array().unwrap().len(), 1);
    assert!(all.body["items"][0].get("distance_m").is_none());

    let one = app.get(&format!("/api/v1/hospitals/{outside}"), None).await;
    assert_eq!(one.body["name"], "Outside");
    assert_eq!(
        app.get("/api/v1/hospitals/999999", None).await.code(),
        "not_found"
    );
    for bad in ["near=91,0", "near=abc", "near=12.9,77.5&radius_km=500"] {
        let reply = app.get(&format!("/api/v1/hospitals?{bad}"), None).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(reply.code(), "validation_failed");
    }
}

#[actix_web::test]
async fn a_hospitals_partner_sets_its_beds_within_the_totals_and_nobody_else_can() {
    let app = spawn_app().await;
    let (partner, partner_id) = app.user_with_role(Role::Partner).await;
    let (other_partner, _) = app.user_with_role(Role::Partner).await;
    let (customer, _) = app.register_customer("beds-customer@example.in").await;
    let (staff, _) = app.user_with_role(Role::Staff).await;
    let (dispatcher, _) = app.user_with_role(Role::Dispatcher).await;
    let (admin, _) = app.user_with_role(Role::Admin).await;
    let id = insert_hospital(&app, "Partnered", Some(partner_id), LAT, LNG).await;
    let path = format!("/api/v1/hospitals/{id}/beds");

    let mut console = Client::open(&app, &dispatcher).await;
    assert_eq!(console.subscribe("dispatch").await["type"], "ack");

    let saved = app.put(&path, &json!({"icu_available": 5}), Some(&partner)).await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    assert_eq!(saved.body["beds"]["icu"]["available"], 5);
    assert_eq!(saved.body["beds"]["general"]["available"], 10, "untouched");
    let version = saved.body["version"].as_i64().unwrap();
    let event = console.next().await;
    assert_eq!(event["event"]["type"], "hospital_beds");
    assert_eq!(event["event"]["hospital_id"], id);
    assert_eq!(event["event"]["icu_available"], 5);

    for token in [&other_partner, &customer] {
        let refused = app.put(&path, &json!({"icu_available": 1}), Some(token)).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert_eq!(refused.code(), "forbidden");
    }
    let above = app.put(&path, &json!({"icu_available": 21}), Some(&staff)).await;
    assert_eq!(above.status, StatusCode::BAD_REQUEST);
    assert!(
        above.body["error"]["details"]["icu_available"].is_string(),
        "{}",
        above.body
    );
    let negative = app
        .put(&path, &json!({"general_available": -1}), Some(&staff))
        .await;
    assert_eq!(negative.code(), "validation_failed");
    let stale = app
        .put(
            &path,
            &json!({"icu_available": 3, "version": version - 1}),
            Some(&staff),
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);
    assert_eq!(stale.code(), "conflict");
    let current = app
        .put(
            &path,
            &json!({"emergency_available": 0, "version": version}),
            Some(&staff),
        )
        .await;
    assert_eq!(current.status, StatusCode::OK, "{}", current.body);
    assert_eq!(
        current.body["beds"]["icu"]["available"], 5,
        "refused updates wrote nothing"
    );

    let audit = app
        .get("/api/v1/admin/audit-log?subject_type=hospital", Some(&admin))
        .await;
    assert_eq!(audit.body["total"], 2, "{}", audit.body);
    assert_eq!(audit.body["items"][0]["action"], "hospital.beds_updated");
}

#[actix_web::test]
async fn blood_banks_show_their_stock_and_only_their_partner_or_staff_set_it() {
    let app = spawn_app().await;
    let (partner, partner_id) = app.user_with_role(Role::Partner).await;
    let (other_partner, _) = app.user_with_role(Role::Partner).await;
    let (staff, _) = app.user_with_role(Role::Staff).await;
    let near = insert_bank(&app, "Near bank", Some(partner_id), 12.975, 77.60).await;
    let far = insert_bank(&app, "Far bank", None, 13.05, 77.65).await;
    insert_stock(&app, near, "O-", "red_cells", 0).await;
    insert_stock(&app, far, "O-", "red_cells", 4).await;
    insert_stock(&app, far, "A+", "plasma", 7).await;

    let listed = app
        .get(
            &format!("/api/v1/blood-banks?near={LAT},{LNG}&radius_km=20"),
            None,
        )
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(listed.body["items"][0]["id"], near);
    assert_eq!(listed.body["items"][1]["stock"].as_array().unwrap().len(), 2);

    let o_neg = app
        .get("/api/v1/blood-banks?blood_group=O-&component=red_cells", None)
        .await;
    assert_eq!(
        o_neg.body["total"], 1,
        "only banks with units of it: {}",
        o_neg.body
    );
    assert_eq!(o_neg.body["items"][0]["id"], far);
    assert_eq!(o_neg.body["items"][0]["stock"][0]["units_available"], 4);
    let bad = app.get("/api/v1/blood-banks?blood_group=C%2B", None).await;
    assert_eq!(bad.code(), "validation_failed");

    let path = format!("/api/v1/blood-banks/{near}/stock");
    let set = app
        .put(
            &path,
            &json!({"blood_group": "O-", "component": "red_cells", "units_available": 6}),
            Some(&partner),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.body["units_available"], 6);
    let created = app
        .put(
            &path,
            &json!({"blood_group": "B+", "component": "platelets", "units_available": 2}),
            Some(&staff),
        )
        .await;
    assert_eq!(
        created.status,
        StatusCode::OK,
        "a missing line is created: {}",
        created.body
    );
    let refused = app
        .put(
            &path,
            &json!({"blood_group": "O-", "component": "red_cells", "units_available": 1}),
            Some(&other_partner),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let invalid = app
        .put(
            &path,
            &json!({"blood_group": "Z", "component": "red_cells", "units_available": -2}),
            Some(&partner),
        )
        .await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
    assert!(invalid.body["error"]["details"]["blood_group"].is_string());
    assert!(invalid.body["error"]["details"]["units_available"].is_string());
    let after = app.get("/api/v1/blood-banks?blood_group=O-", None).await;
    assert_eq!(after.body["total"], 2, "{}", after.body);
}

#[actix_web::test]
async fn a_request_reserves_compatible_stock_exact_group_first_then_nearest() {
    let app = spawn_app().await;
    let (token, _) = app.register_customer("reserve@example.in").await;
    let near = insert_bank(&app, "Near bank", None, 12.975, 77.60).await;
    let far = insert_bank(&app, "Far bank", None, 13.05, 77.65).await;
    let near_a_pos = insert_stock(&app, near, "A+", "red_cells", 1).await;
    let far_a_pos = insert_stock(&app, far, "A+", "red_cells", 2).await;
    let near_a_neg = insert_stock(&app, near, "A-", "red_cells", 5).await;
    let near_b_pos = insert_stock(&app, near, "B+", "red_cells", 9).await;
    let near_a_plasma = insert_stock(&app, near, "A+", "plasma", 9).await;

    let created = create_request(&app, &token, &request_body("A+", "red_cells", 4)).await;
    assert_eq!(created["status"], "reserved", "{created}");
    assert_eq!(created["progress"]["reserved"], 4);
    assert_eq!(created["donors_notified"], 0);
    let held: Vec<(i64, String, i64)> = created["reservations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["blood_bank_id"].as_i64().unwrap(),
                r["blood_group"].as_str().unwrap().to_owned(),
                r["units"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        held,
        [
            (near, "A+".to_owned(), 1),
            (far, "A+".to_owned(), 2),
            (near, "A-".to_owned(), 1)
        ]
    );
    assert_eq!(stock(&app, near_a_pos).await, (0, 1));
    assert_eq!(stock(&app, far_a_pos).await, (0, 2));
    assert_eq!(stock(&app, near_a_neg).await, (4, 1));
    assert_eq!(
        stock(&app, near_b_pos).await,
        (9, 0),
        "B+ cells never go to an A+ patient"
    );
    assert_eq!(stock(&app, near_a_plasma).await, (9, 0), "another component");
    let too_few = create_request(&app, &token, &request_body("AB+", "whole_blood", 1)).await;
    assert_eq!(
        too_few["status"], "open",
        "whole blood is ABO-identical: none in stock"
    );

    // Plasma is the other way round: an O- patient may receive A+ plasma.
    let plasma = create_request(&app, &token, &request_body("O-", "plasma", 2)).await;
    assert_eq!(plasma["reservations"][0]["blood_group"], "A+");
    assert_eq!(plasma["status"], "reserved");
    assert_eq!(stock(&app, near_a_plasma).await, (7, 2));
    let id = created["id"].as_i64().unwrap();
    let shown = app
        .get(&format!("/api/v1/emergency/blood-requests/{id}"), Some(&token))
        .await;
    assert_eq!(shown.body["reservations"][1]["bank_name"], "Far bank");
    assert_eq!(shown.body["progress"]["percent"], 100);
}

#[actix_web::test]
async fn concurrent_requests_never_reserve_more_units_than_the_stock_holds() {
    let app = spawn_app().await;
    let bank = insert_bank(&app, "Small bank", None, 12.975, 77.60).await;
    let line = insert_stock(&app, bank, "O-", "red_cells", 5).await;
    let mut tokens = Vec::new();
    for n in 0..10 {
        tokens.push(app.register_customer(&format!("race{n}@example.in")).await.0);
    }
    let calls = tokens.iter().enumerate().map(|(n, token)| {
        let body = request_body("O-", "red_cells", 1 + (n as i64 % 2));
        let app = &app;
        async move {
            app.post("/api/v1/emergency/blood-requests", &body, Some(token))
                .await
        }
    });
    let replies = futures_util::future::join_all(calls).await;
    let mut reserved = 0;
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        reserved += reply.body["progress"]["reserved"].as_i64().unwrap();
    }
    assert_eq!(reserved, 5, "every unit reserved once, none twice");
    assert_eq!(stock(&app, line).await, (0, 5));
    let mut conn = app.app.db.read().await.unwrap();
    let rows: i64 = on_conn!(&mut conn, c => schema::blood_reservations::table
        .select(diesel::dsl::sum(schema::blood_reservations::reserved_units))
        .first::<Option<i64>>(c)
        .await)
    .unwrap()
    .unwrap_or(0);
    assert_eq!(rows, 5);
    drop(conn);

    // Cancellations racing new requests: units move between held and available, never lost or doubled.
    let ids: Vec<i64> = replies.iter().map(|r| r.body["id"].as_i64().unwrap()).collect();
    let cancels = ids.iter().zip(&tokens).take(5).map(|(id, token)| {
        let app = &app;
        async move {
            app.post(
                &format!("/api/v1/emergency/blood-requests/{id}/cancel"),
                &json!({}),
                Some(token),
            )
            .await
        }
    });
    let creates = tokens.iter().take(5).map(|token| {
        let app = &app;
        let body = request_body("O-", "red_cells", 2);
        async move {
            app.post("/api/v1/emergency/blood-requests", &body, Some(token))
                .await
        }
    });
    let (cancelled, created) = futures_util::future::join(
        futures_util::future::join_all(cancels),
        futures_util::future::join_all(creates),
    )
    .await;
    assert!(cancelled.iter().all(|r| r.status == StatusCode::OK));
    assert!(created.iter().all(|r| r.status == StatusCode::CREATED));
    let (available, reserved) = stock(&app, line).await;
    assert_eq!(available + reserved, 5, "({available}, {reserved})");
    let mut conn = app.app.db.read().await.unwrap();
    let held: i64 = on_conn!(&mut conn, c => schema::blood_reservations::table
        .filter(schema::blood_reservations::status.eq("held"))
        .select(diesel::dsl::sum(schema::blood_reservations::reserved_units))
        .first::<Option<i64>>(c)
        .await)
    .unwrap()
    .unwrap_or(0);
    assert_eq!(held, i64::from(reserved));
    let live: i64 = on_conn!(&mut conn, c => schema::blood_requests::table
        .filter(schema::blood_requests::status.ne("cancelled"))
        .select(diesel::dsl::sum(schema::blood_requests::units_reserved))
        .first::<Option<i64>>(c)
        .await)
    .unwrap()
    .unwrap_or(0);
    assert_eq!(live, i64::from(reserved));
}

#[actix_web::test]
async fn donors_racing_for_the_last_missing_unit_pledge_it_once() {
    let app = spawn_app().await;
    let (owner, _) = app.register_customer("last-unit@example.in").await;
    let created = create_request(&app, &owner, &request_body("AB+", "red_cells", 1)).await;
    let path = format!("/api/v1/emergency/blood-requests/{}/pledges", created["id"]);
    let mut donors = Vec::new();
    for group in ["O-", "O+", "A+", "B-", "AB+", "AB-"] {
        donors.push(donor(&app, group, None, true, (12.98, 77.60)).await.0);
    }
    let pledges = donors.iter().map(|token| {
        let (app, path) = (&app, &path);
        async move { app.post(path, &json!({}), Some(token)).await }
    });
    let replies = futures_util::future::join_all(pledges).await;
    let won = replies.iter().filter(|r| r.status == StatusCode::CREATED).count();
    assert_eq!(
        won,
        1,
        "{:?}",
        replies.iter().map(|r| r.body.clone()).collect::<Vec<_>>()
    );
    for reply in replies.iter().filter(|r| r.status != StatusCode::CREATED) {
        assert_eq!(reply.code(), "request_closed", "{}", reply.body);
    }
    let shown = app
        .get(
            &format!("/api/v1/emergency/blood-requests/{}", created["id"]),
            Some(&owner),
        )
        .await;
    assert_eq!(shown.body["progress"]["pledged"], 1);
    assert_eq!(shown.body["pledges"], 1);
    assert_eq!(shown.body["status"], "fulfilled");
}

#[actix_web::test]
async fn only_eligible_compatible_donors_nearby_are_alerted() {
    let app = spawn_app().await;
    let (requester, _) = app.register_customer("needs-blood@example.in").await;
    let here = (12.98, 77.60);
    let (eligible_token, eligible) = donor(&app, "O-", None, true, here).await;
    let (_, rested) = donor(&app, "O+", Some(100), true, (12.96, 77.58)).await;
    let (recent_token, _recent) = donor(&app, "O+", Some(30), true, here).await;
    let (_, _incompatible) = donor(&app, "A+", None, true, here).await;
    let (_, _unavailable) = donor(&app, "O+", None, false, here).await;
    let (_, _far_away) = donor(&app, "O+", None, true, (13.9, 78.9)).await;

    let mut eligible_ws = Client::open(&app, &eligible_token).await;
    assert_eq!(
        eligible_ws.subscribe(&format!("user:{eligible}")).await["type"],
        "ack"
    );
    let mut recent_ws = Client::open(&app, &recent_token).await;
    assert_eq!(
        recent_ws.subscribe(&format!("user:{_recent}")).await["type"],
        "ack"
    );

    let created = create_request(&app, &requester, &request_body("O+", "red_cells", 2)).await;
    assert_eq!(created["status"], "open");
    assert_eq!(created["donors_notified"], 2, "{created}");
    let mut expected = vec![eligible, rested];
    expected.sort_unstable();
    assert_eq!(notified_users(&app).await, expected);

    let alert = eligible_ws.next().await;
    assert_eq!(alert["event"]["type"], "blood_request_nearby");
    assert_eq!(alert["event"]["request_id"], created["id"]);
    assert_eq!(alert["event"]["blood_group"], "O+");
    assert!(recent_ws.quiet_for(Duration::from_millis(300)).await);
}

#[actix_web::test]
async fn donors_pledge_once_when_eligible_and_compatible_and_the_requester_sees_it_live() {
    let app = spawn_app().await;
    let (requester, _) = app.register_customer("pledge-requester@example.in").await;
    let here = (12.98, 77.60);
    let (first, _) = donor(&app, "O-", None, true, here).await;
    let (second, _) = donor(&app, "O+", Some(120), true, here).await;
    let (late, _) = donor(&app, "O+", None, true, here).await;
    let (recent, _) = donor(&app, "O+", Some(30), true, here).await;
    let (incompatible, _) = donor(&app, "AB+", None, true, here).await;
    let (unavailable, _) = donor(&app, "O-", None, false, here).await;
    let (no_profile, _) = app.register_customer("no-profile@example.in").await;

    let created = create_request(&app, &requester, &request_body("O+", "red_cells", 2)).await;
    let id = created["id"].as_i64().unwrap();
    let topic = format!("blood_request:{id}");
    let mut watcher = Client::open(&app, &requester).await;
    assert_eq!(watcher.subscribe(&topic).await["type"], "ack");
    let mut stranger = Client::open(&app, &late).await;
    assert_eq!(stranger.subscribe(&topic).await["code"], "forbidden");

    let path = format!("/api/v1/emergency/blood-requests/{id}/pledges");
    let pledged = app.post(&path, &json!({}), Some(&first)).await;
    assert_eq!(pledged.status, StatusCode::CREATED, "{}", pledged.body);
    assert_eq!(pledged.body["status"], "partially_reserved");
    let event = watcher.next().await;
    assert_eq!(event["topic"], topic);
    assert_eq!(event["event"]["type"], "blood_request_progress");
    assert_eq!(event["event"]["change"], "pledged");
    assert_eq!(event["event"]["units_pledged"], 1);
    let mut donor_ws = Client::open(&app, &first).await;
    assert_eq!(
        donor_ws.subscribe(&topic).await["type"],
        "ack",
        "a pledged donor may follow"
    );

    let again = app.post(&path, &json!({}), Some(&first)).await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::CONFLICT, "already_pledged")
    );
    for (token, code) in [
        (&recent, "donor_not_eligible"),
        (&unavailable, "donor_not_eligible"),
        (&no_profile, "donor_not_eligible"),
        (&incompatible, "incompatible_donor"),
    ] {
        let refused = app.post(&path, &json!({}), Some(token)).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{code}");
        assert_eq!(refused.code(), code);
    }
    let too_many = app.post(&path, &json!({"units": 3}), Some(&second)).await;
    assert_eq!(too_many.code(), "validation_failed");
    let not_a_number = app.post(&path, &json!({"units": "two"}), Some(&second)).await;
    assert_eq!(not_a_number.status, StatusCode::BAD_REQUEST);

    let completing = app.post(&path, &json!({"units": 2}), Some(&second)).await;
    assert_eq!(completing.status, StatusCode::CREATED, "{}", completing.body);
    assert_eq!(completing.body["status"], "fulfilled");
    assert_eq!(
        completing.body["progress"]["pledged"], 2,
        "capped at the missing unit"
    );
    let closed = app.post(&path, &json!({}), Some(&late)).await;
    assert_eq!(
        (closed.status, closed.code()),
        (StatusCode::CONFLICT, "request_closed")
    );

    let shown = app
        .get(
            &format!("/api/v1/emergency/blood-requests/{id}"),
            Some(&requester),
        )
        .await;
    assert_eq!(shown.body["status"], "fulfilled");
    assert_eq!(shown.body["pledges"], 2);
    assert_eq!(shown.body["progress"]["percent"], 100);
    let missing = app
        .post(
            "/api/v1/emergency/blood-requests/999999/pledges",
            &json!({}),
            Some(&late),
        )
        .await;
    assert_eq!(missing.code(), "not_found");
}

#[actix_web::test]
async fn a_request_is_seen_only_by_its_requester_and_dispatch_staff() {
    let app = spawn_app().await;
    let (owner, _) = app.register_customer("owner@example.in").await;
    let (other, _) = app.register_customer("other@example.in").await;
    let (dispatcher, _) = app.user_with_role(Role::Dispatcher).await;
    let (staff, _) = app.user_with_role(Role::Staff).await;
    let (partner, _) = app.user_with_role(Role::Partner).await;
    let mine = create_request(&app, &owner, &request_body("B+", "platelets", 1)).await;
    create_request(&app, &other, &request_body("AB-", "plasma", 1)).await;
    let path = format!("/api/v1/emergency/blood-requests/{}", mine["id"]);

    assert_eq!(app.get(&path, Some(&owner)).await.status, StatusCode::OK);
    assert_eq!(app.get(&path, Some(&dispatcher)).await.status, StatusCode::OK);
    for token in [&other, &partner] {
        let hidden = app.get(&path, Some(token)).await;
        assert_eq!(
            (hidden.status, hidden.code()),
            (StatusCode::NOT_FOUND, "not_found")
        );
        let cancel = app.post(&format!("{path}/cancel"), &json!({}), Some(token)).await;
        assert_eq!(cancel.code(), "not_found");
    }
    assert_eq!(app.get(&path, None).await.status, StatusCode::UNAUTHORIZED);
    let own = app.get("/api/v1/emergency/blood-requests", Some(&owner)).await;
    assert_eq!(own.body["total"], 1);
    assert_eq!(own.body["items"][0]["id"], mine["id"]);
    let all = app.get("/api/v1/emergency/blood-requests", Some(&staff)).await;
    assert_eq!(all.body["total"], 2);
}

#[actix_web::test]
async fn cancelling_releases_the_held_stock_exactly_once() {
    let app = spawn_app().await;
    let (owner, _) = app.register_customer("cancel@example.in").await;
    let (dispatcher, _) = app.user_with_role(Role::Dispatcher).await;
    let bank = insert_bank(&app, "Bank", None, 12.975, 77.60).await;
    let line = insert_stock(&app, bank, "O+", "whole_blood", 3).await;
    let created = create_request(&app, &owner, &request_body("O+", "whole_blood", 2)).await;
    assert_eq!(stock(&app, line).await, (1, 2));
    let id = created["id"].as_i64().unwrap();
    let mut watcher = Client::open(&app, &owner).await;
    assert_eq!(
        watcher.subscribe(&format!("blood_request:{id}")).await["type"],
        "ack"
    );

    let path = format!("/api/v1/emergency/blood-requests/{id}/cancel");
    let cancelled = app.post(&path, &json!({}), Some(&owner)).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert_eq!(cancelled.body["status"], "cancelled");
    assert_eq!(cancelled.body["reservations"][0]["status"], "released");
    assert_eq!(stock(&app, line).await, (3, 0));
    assert_eq!(watcher.next().await["event"]["change"], "cancelled");

    let again = app.post(&path, &json!({}), Some(&dispatcher)).await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::CONFLICT, "request_closed")
    );
    assert_eq!(stock(&app, line).await, (3, 0), "released once");

    // A dispatcher may cancel someone else's request.
    let other = create_request(&app, &owner, &request_body("O+", "whole_blood", 1)).await;
    let by_dispatch = app
        .post(
            &format!("/api/v1/emergency/blood-requests/{}/cancel", other["id"]),
            &json!({}),
            Some(&dispatcher),
        )
        .await;
    assert_eq!(by_dispatch.status, StatusCode::OK);
    assert_eq!(stock(&app, line).await, (3, 0));
}

#[actix_web::test]
async fn an_invalid_blood_request_is_refused_with_its_fields_named_and_nothing_written() {
    let app = spawn_app().await;
    let (token, _) = app.register_customer("invalid@example.in").await;
    let bank = insert_bank(&app, "Bank", None, 12.975, 77.60).await;
    let line = insert_stock(&app, bank, "O-", "red_cells", 5).await;
    let mut cases = Vec::new();
    let mut bad_group = request_body("C+", "red_cells", 1);
    bad_group["units"] = json!(2);
    cases.push((bad_group, "blood_group"));
    cases.push((request_body("O-", "blood", 1), "component"));
    cases.push((request_body("O-", "red_cells", 0), "units"));
    cases.push((request_body("O-", "red_cells", 21), "units"));
    let mut no_place = request_body("O-", "red_cells", 1);
    no_place.as_object_mut().unwrap().remove("location");
    cases.push((no_place, "location"));
    let mut unknown_hospital = request_body("O-", "red_cells", 1);
    unknown_hospital.as_object_mut().unwrap().remove("location");
    unknown_hospital["hospital_id"] = json!(424242);
    cases.push((unknown_hospital, "hospital_id"));
    let mut urgency = request_body("O-", "red_cells", 1);
    urgency["urgency"] = json!("whenever");
    cases.push((urgency, "urgency"));
    let mut phone = request_body("O-", "red_cells", 1);
    phone["contact_phone"] = json!("call me");
    cases.push((phone, "contact_phone"));

    for (body, field) in cases {
        let reply = app
            .post("/api/v1/emergency/blood-requests", &body, Some(&token))
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{field}: {}", reply.body);
        assert_eq!(reply.code(), "validation_failed");
        assert!(
            reply.body["error"]["details"][field].is_string(),
            "{field}: {}",
            reply.body
        );
    }
    let wrong_type = app
        .post(
            "/api/v1/emergency/blood-requests",
            &json!({"blood_group": 7}),
            Some(&token),
        )
        .await;
    assert_eq!(wrong_type.status, StatusCode::BAD_REQUEST);
    assert_eq!(count_requests(&app).await, 0);
    assert_eq!(stock(&app, line).await, (5, 0));

    // A request at a hospital takes the hospital's location.
    let hospital = insert_hospital(&app, "General", None, 12.975, 77.60).await;
    let mut at_hospital = request_body("O-", "red_cells", 1);
    at_hospital.as_object_mut().unwrap().remove("location");
    at_hospital["hospital_id"] = json!(hospital);
    let created = create_request(&app, &token, &at_hospital).await;
    assert_eq!(created["hospital_id"], hospital);
    assert_eq!(created["lat"], 12.975);
}

#[actix_web::test]
async fn the_donor_profile_is_saved_validated_and_read_back() {
    let app = spawn_app().await;
    let (token, _) = app.register_customer("profile-donor@example.in").await;
    let path = "/api/v1/users/donor-profile";
    assert_eq!(app.get(path, Some(&token)).await.code(), "not_found");
    let future = (chrono::Utc::now().date_naive() + chrono::TimeDelta::days(3)).to_string();
    let bad = app
        .put(
            path,
            &json!({"blood_group": "Q", "last_donation_date": future, "lat": 95.0, "lng": 77.6, "available": true}),
            Some(&token),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    for field in ["blood_group", "last_donation_date", "location"] {
        assert!(
            bad.body["error"]["details"][field].is_string(),
            "{field}: {}",
            bad.body
        );
    }
    let saved = app
        .put(
            path,
            &json!({"blood_group": "AB-", "last_donation_date": "2025-01-15", "lat": 12.97, "lng": 77.6, "available": true}),
            Some(&token),
        )
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    let read = app.get(path, Some(&token)).await;
    assert_eq!(read.body["blood_group"], "AB-");
    assert_eq!(read.body["last_donation_date"], "2025-01-15");
    let updated = app
        .put(
            path,
            &json!({"blood_group": "AB-", "lat": 12.97, "lng": 77.6, "available": false}),
            Some(&token),
        )
        .await;
    assert_eq!(updated.body["available"], false);
    assert_eq!(updated.body["version"], 2);
}

#[actix_web::test]
async fn the_demo_city_reserves_stock_and_alerts_only_its_eligible_compatible_donor() {
    use onemedi::db::demo;
    let app = spawn_app().await;
    let mut conn = app.app.db.write().await.unwrap();
    assert!(demo::seed(&mut conn).await.unwrap());
    let cells: Vec<Option<i64>> = on_conn!(&mut conn, c => schema::donor_profiles::table
        .select(schema::donor_profiles::h3_cell)
        .load(c)
        .await)
    .unwrap();
    drop(conn);
    assert_eq!(cells.len(), 5);
    assert!(
        cells.iter().all(Option::is_some),
        "seeded donors get their H3 cell"
    );

    let login =
        |who: &str| json!({"email": format!("{who}@{}", demo::DEMO_DOMAIN), "password": demo::DEMO_PASSWORD});
    let customer = app.post("/api/v1/auth/login", &login("customer1"), None).await;
    let customer = customer.body["token"].as_str().unwrap().to_owned();
    let donor1 = app.post("/api/v1/auth/login", &login("donor1"), None).await;
    let donor1_id = donor1.body["user"]["id"].as_i64().unwrap();

    // More O- red cells than the city's banks hold: everything is reserved and O- donors are alerted.
    let created = create_request(&app, &customer, &request_body("O-", "red_cells", 20)).await;
    assert_eq!(created["status"], "partially_reserved", "{created}");
    assert!(created["progress"]["reserved"].as_i64().unwrap() > 0);
    assert_eq!(created["donors_notified"], 1);
    assert_eq!(notified_users(&app).await, [donor1_id]);

    let partner = app.post("/api/v1/auth/login", &login("partner"), None).await;
    let partner = partner.body["token"].as_str().unwrap().to_owned();
    let hospitals = app.get("/api/v1/hospitals?per_page=100", None).await;
    let manipal = hospitals.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["slug"] == "manipal-hospital-old-airport-road")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let beds = app
        .put(
            &format!("/api/v1/hospitals/{manipal}/beds"),
            &json!({"icu_available": 10}),
            Some(&partner),
        )
        .await;
    assert_eq!(beds.status, StatusCode::OK, "{}", beds.body);
}

#[actix_web::test]
async fn expired_requests_and_lapsed_holds_give_their_units_back_once() {
    use schema::{blood_requests as br, blood_reservations as bv};
    let app = spawn_app().await;
    let (owner, _) = app.register_customer("expiry@example.in").await;
    let (helper, _) = donor(&app, "O+", None, true, (12.98, 77.60)).await;
    let bank = insert_bank(&app, "Bank", None, 12.975, 77.60).await;
    let line = insert_stock(&app, bank, "O+", "red_cells", 5).await;
    let lapsing = create_request(&app, &owner, &request_body("O+", "red_cells", 2)).await;
    let held = create_request(&app, &owner, &request_body("O+", "red_cells", 2)).await;
    assert_eq!(stock(&app, line).await, (1, 4));
    let (lapsing, held) = (lapsing["id"].as_i64().unwrap(), held["id"].as_i64().unwrap());
    let past = onemedi::db::now() - chrono::TimeDelta::minutes(1);
    let mut conn = app.app.db.write().await.unwrap();
    on_conn!(&mut conn, c => diesel::update(br::table.find(lapsing)).set(br::expires_at.eq(past)).execute(c).await)
        .unwrap();
    on_conn!(&mut conn, c => diesel::update(bv::table.filter(bv::request_id.eq(held)))
        .set(bv::expires_at.eq(past))
        .execute(c)
        .await)
    .unwrap();
    drop(conn);
    let mut watcher = Client::open(&app, &owner).await;
    assert_eq!(
        watcher.subscribe(&format!("blood_request:{held}")).await["type"],
        "ack"
    );

    assert_eq!(onemedi::api::blood::sweep_expired(&app.app).await.unwrap(), 2);
    assert_eq!(stock(&app, line).await, (5, 0));
    let expired = app
        .get(
            &format!("/api/v1/emergency/blood-requests/{lapsing}"),
            Some(&owner),
        )
        .await;
    assert_eq!(expired.body["status"], "expired");
    assert_eq!(expired.body["reservations"][0]["status"], "expired");
    let reopened = app
        .get(&format!("/api/v1/emergency/blood-requests/{held}"), Some(&owner))
        .await;
    assert_eq!(reopened.body["status"], "open", "{}", reopened.body);
    assert_eq!(reopened.body["progress"]["reserved"], 0);
    let event = watcher.next().await;
    assert_eq!(event["event"]["change"], "hold_expired");

    assert_eq!(
        onemedi::api::blood::sweep_expired(&app.app).await.unwrap(),
        0,
        "once"
    );
    assert_eq!(stock(&app, line).await, (5, 0));
    let late = app
        .post(
            &format!("/api/v1/emergency/blood-requests/{lapsing}/pledges"),
            &json!({}),
            Some(&helper),
        )
        .await;
    assert_eq!(late.code(), "request_closed");
    let still_open = app
        .post(
            &format!("/api/v1/emergency/blood-requests/{held}/pledges"),
            &json!({}),
            Some(&helper),
        )
        .await;
    assert_eq!(still_open.status, StatusCode::CREATED, "{}", still_open.body);
}
