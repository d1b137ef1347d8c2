//! Home care: the catalog, partner profiles, bookings given to the nearest partner with a place, capacity
//! under a race of bookings across two nodes, cancellation freeing the place, the partner's legal steps,
//! who may see and do what, and validation.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use onemedi::{
    db::{self, demo, doctors::local_today, schema},
    domain::Role,
    on_conn,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, postgres_url, spawn_app, spawn_second_node};

/// The customers' neighbourhood (central Bengaluru).
const HOME: (f64, f64) = (12.9716, 77.5946);
/// About 1 km and about 5 km from HOME.
const NEAR: (f64, f64) = (12.9800, 77.5990);
const FAR: (f64, f64) = (12.9300, 77.6200);
/// Mysuru, far outside every partner's radius.
const ELSEWHERE: (f64, f64) = (12.2958, 76.6394);

/// Inserts the catalog: (nursing id, physiotherapy id, an inactive service id).
pub(crate) async fn insert_services(app: &TestApp) -> (i64, i64, i64) {
    use schema::homecare_services as hs;
    let mut conn = app.app.db.write().await.unwrap();
    let mut insert = async |slug: &str, category: &str, price: i64, order: i32, active: bool| -> i64 {
        on_conn!(&mut conn, c => diesel::insert_into(hs::table)
            .values((
                hs::name.eq(format!("Service {slug}")),
                hs::slug.eq(slug),
                hs::category.eq(category),
                hs::description.eq("At home"),
                hs::price_paise.eq(price),
                hs::duration_minutes.eq(60),
                hs::sort_order.eq(order),
                hs::is_active.eq(active),
            ))
            .returning(hs::id)
            .get_result::<i64>(c)
            .await)
        .unwrap()
    };
    (
        insert("nursing-visit", "nursing", 79_900, 1, true).await,
        insert("physio", "physiotherapy", 89_900, 2, true).await,
        insert("retired", "nursing", 9_900, 3, false).await,
    )
}

/// A partner working 07:00–21:00 at `home` with `capacity` visits per window, offering `services`;
/// returns (token, user id).
pub(crate) async fn partner(
    app: &TestApp,
    home: (f64, f64),
    capacity: i32,
    services: &[i64],
) -> (String, i64) {
    let (token, id) = app.user_with_role(Role::Partner).await;
    let saved = app
        .put(
            "/api/v1/services/partner-profile",
            &json!({"home_lat": home.0, "home_lng": home.1, "service_radius_km": 15, "work_start": "07:00",
                    "work_end": "21:00", "capacity_per_window": capacity, "service_ids": services}),
            Some(&token),
        )
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    assert_eq!(saved.body["capacity_per_window"], capacity);
    (token, id)
}

/// A customer with one address at `at`; returns (token, user id, address id).
pub(crate) async fn customer_at(app: &TestApp, at: (f64, f64)) -> (String, i64, i64) {
    let (token, id) = app
        .register_customer(&format!("care-{}@example.in", uuid::Uuid::new_v4().simple()))
        .await;
    let address = app
        .post(
            "/api/v1/users/addresses",
            &json!({"label": "Home", "line1": "4 Cubbon Road", "city": "Bengaluru", "state": "KA",
                    "pincode": "560001", "lat": at.0, "lng": at.1}),
            Some(&token),
        )
        .await;
    assert_eq!(address.status, StatusCode::CREATED, "{}", address.body);
    (token, id, address.body["id"].as_i64().unwrap())
}

fn tomorrow() -> String {
    (local_today(db::now()) + chrono::TimeDelta::days(1)).to_string()
}

pub(crate) fn booking(service: i64, address: i64, window: &str) -> Value {
    json!({"service_id": service, "address_id": address, "date": tomorrow(), "window": window,
           "notes": "Ring the bell twice"})
}

/// Live (capacity-holding) bookings per partner user in one window, and the stored counters.
async fn window_state(app: &TestApp, window: &str) -> (Vec<(Option<i64>, i64)>, Vec<(i64, i32)>) {
    use schema::{care_partner_window_loads as loads, care_partners as cp, service_bookings as sb};
    let mut conn = app.app.db.read().await.unwrap();
    let live = on_conn!(&mut conn, c => sb::table
        .filter(sb::slot_window.eq(window).and(sb::status.ne("cancelled")))
        .group_by(sb::partner_user_id)
        .select((sb::partner_user_id, diesel::dsl::count_star()))
        .order(sb::partner_user_id.asc())
        .load::<(Option<i64>, i64)>(c)
        .await)
    .unwrap();
    let counters = on_conn!(&mut conn, c => loads::table
        .inner_join(cp::table)
        .filter(loads::slot_window.eq(window))
        .select((cp::user_id, loads::booked))
        .order(cp::user_id.asc())
        .load::<(i64, i32)>(c)
        .await)
    .unwrap();
    (live, counters)
}

#[actix_web::test]
async fn the_catalog_lists_active_services_by_category_and_pages() {
    let app = spawn_app().await;
    let (nursing, physio, retired) = insert_services(&app).await;
    let all = app.get("/api/v1/services", None).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert_eq!(all.body["total"], 2, "the inactive service is not listed");
    assert_eq!(all.body["items"][0]["id"], nursing);
    assert_eq!(all.body["items"][0]["price_paise"], 79_900);
    assert_eq!(all.body["items"][0]["duration_minutes"], 60);
    let physio_only = app.get("/api/v1/services?category=physiotherapy", None).await;
    assert_eq!(physio_only.body["total"], 1);
    assert_eq!(physio_only.body["items"][0]["id"], physio);
    let second_page = app.get("/api/v1/services?per_page=1&page=2", None).await;
    assert_eq!(second_page.body["items"][0]["id"], physio);
    assert_eq!(
        app.get(&format!("/api/v1/services/{physio}"), None).await.body["category"],
        "physiotherapy"
    );
    let gone = app.get(&format!("/api/v1/services/{retired}"), None).await;
    assert_eq!((gone.status, gone.code()), (StatusCode::NOT_FOUND, "not_found"));
    let bad = app.get("/api/v1/services?category=astrology", None).await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::BAD_REQUEST, "validation_failed")
    );
    let too_big = app.get("/api/v1/services?per_page=1000", None).await;
    assert_eq!(too_big.status, StatusCode::BAD_REQUEST);
}

#[actix_web::test]
async fn a_race_of_bookings_across_two_nodes_never_gives_a_partner_more_than_their_capacity() {
    const CUSTOMERS: usize = 24;
    let first = spawn_app().await;
    let second = match postgres_url() {
        Some(_) => Some(spawn_second_node(&first).await),
        None => None,
    };
    let nodes: Vec<&TestApp> = std::iter::once(&first).chain(second.as_ref()).collect();
    let (nursing, _, _) = insert_services(&first).await;
    let (_, near) = partner(&first, NEAR, 2, &[nursing]).await;
    let (_, far) = partner(&first, FAR, 1, &[nursing]).await;
    let customers = futures_util::future::join_all((0..CUSTOMERS).map(|_| customer_at(&first, HOME))).await;

    let window = "09:00-11:00";
    let attempts = customers.iter().enumerate().map(|(i, (token, _, address))| {
        let node = nodes[i % nodes.len()];
        async move {
            node.post(
                "/api/v1/services/bookings",
                &booking(nursing, *address, window),
                Some(token),
            )
            .await
        }
    });
    let replies = futures_util::future::join_all(attempts).await;
    let mut given: Vec<i64> = Vec::new();
    for reply in &replies {
        match reply.status {
            StatusCode::CREATED => {
                assert_eq!(reply.body["status"], "confirmed");
                given.push(reply.body["partner_user_id"].as_i64().unwrap());
            }
            StatusCode::CONFLICT => {
                assert_eq!(reply.code(), "no_partner_available", "{}", reply.body);
                assert_eq!(reply.body["error"]["details"]["reason"], "window_full");
            }
            other => panic!("unexpected booking answer {other}: {}", reply.body),
        }
    }
    given.sort_unstable();
    let mut expected = vec![near, near, far];
    expected.sort_unstable();
    assert_eq!(
        given, expected,
        "three places in all: two with the near partner, one with the far one"
    );
    let (live, counters) = window_state(&first, window).await;
    let mut by_partner = vec![(Some(near), 2), (Some(far), 1)];
    by_partner.sort_unstable();
    assert_eq!(live, by_partner);
    let mut stored = vec![(near, 2), (far, 1)];
    stored.sort_unstable();
    assert_eq!(counters, stored, "the counters match the live bookings");

    // A cancellation gives its place back, to the next customer who asks.
    let (winner_token, winner_booking) = replies
        .iter()
        .zip(&customers)
        .find(|(reply, _)| reply.status == StatusCode::CREATED && reply.body["partner_user_id"] == far)
        .map(|(reply, (token, _, _))| (token.clone(), reply.body["id"].as_i64().unwrap()))
        .unwrap();
    let cancelled = first
        .post(
            &format!("/api/v1/services/bookings/{winner_booking}/cancel"),
            &json!({"reason": "plans changed"}),
            Some(&winner_token),
        )
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert_eq!(cancelled.body["status"], "cancelled");
    let again = first
        .post(
            &format!("/api/v1/services/bookings/{winner_booking}/cancel"),
            &json!({}),
            Some(&winner_token),
        )
        .await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::CONFLICT, "invalid_transition")
    );
    let (late_token, _, late_address) = customer_at(&first, HOME).await;
    let late = nodes[nodes.len() - 1]
        .post(
            "/api/v1/services/bookings",
            &booking(nursing, late_address, window),
            Some(&late_token),
        )
        .await;
    assert_eq!(late.status, StatusCode::CREATED, "{}", late.body);
    assert_eq!(late.body["partner_user_id"], far);
    let (_, counters) = window_state(&first, window).await;
    assert_eq!(counters, stored, "the freed place was taken once");
}

#[actix_web::test]
async fn the_nearest_able_partner_is_chosen_and_a_cancellation_frees_their_place() {
    let app = spawn_app().await;
    let (nursing, physio, retired) = insert_services(&app).await;
    let (_, near) = partner(&app, NEAR, 1, &[nursing]).await;
    let (_, far) = partner(&app, FAR, 1, &[nursing, physio]).await;
    let (token, _, address) = customer_at(&app, HOME).await;
    let window = "11:00-13:00";

    let first = app
        .post(
            "/api/v1/services/bookings",
            &booking(nursing, address, window),
            Some(&token),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(first.body["partner_user_id"], near, "the nearest partner first");
    assert_eq!(first.body["price_paise"], 79_900);
    assert_eq!(first.body["timeline"][0]["to_status"], "confirmed");
    let physio_visit = app
        .post(
            "/api/v1/services/bookings",
            &booking(physio, address, window),
            Some(&token),
        )
        .await;
    assert_eq!(
        physio_visit.body["partner_user_id"], far,
        "only the far partner offers physiotherapy"
    );
    let second = app
        .post(
            "/api/v1/services/bookings",
            &booking(nursing, address, window),
            Some(&token),
        )
        .await;
    assert_eq!(second.status, StatusCode::CONFLICT, "{}", second.body);
    assert_eq!(second.code(), "no_partner_available");
    assert_eq!(second.body["error"]["details"]["reason"], "window_full");
    let other_window = app
        .post(
            "/api/v1/services/bookings",
            &booking(nursing, address, "13:00-15:00"),
            Some(&token),
        )
        .await;
    assert_eq!(
        other_window.body["partner_user_id"], near,
        "another window has its own places"
    );

    let id = first.body["id"].as_i64().unwrap();
    // A body that is there but broken or mistyped is refused, and the booking stays as it was.
    for (body, code) in [
        ("{reason:", "malformed_json"),
        (r#"{"reason": 42}"#, "validation_failed"),
    ] {
        let refused = app
            .client
            .post(app.url(&format!("/api/v1/services/bookings/{id}/cancel")))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let refused = crate::helpers::into_reply(refused).await;
        assert_eq!(
            (refused.status, refused.code()),
            (StatusCode::BAD_REQUEST, code),
            "{body}"
        );
    }
    let still = app
        .get(&format!("/api/v1/services/bookings/{id}"), Some(&token))
        .await;
    assert_ne!(still.body["status"], "cancelled", "{}", still.body);
    let cancelled = app
        .client
        .post(app.url(&format!("/api/v1/services/bookings/{id}/cancel")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let cancelled = crate::helpers::into_reply(cancelled).await;
    assert_eq!(
        cancelled.status,
        StatusCode::OK,
        "no body at all is no reason: {}",
        cancelled.body
    );
    let retried = app
        .post(
            "/api/v1/services/bookings",
            &booking(nursing, address, window),
            Some(&token),
        )
        .await;
    assert_eq!(retried.status, StatusCode::CREATED, "{}", retried.body);
    assert_eq!(
        retried.body["partner_user_id"], near,
        "the freed place is the nearest one"
    );

    let (far_token, _, far_address) = customer_at(&app, ELSEWHERE).await;
    let nobody = app
        .post(
            "/api/v1/services/bookings",
            &booking(nursing, far_address, window),
            Some(&far_token),
        )
        .await;
    assert_eq!(nobody.status, StatusCode::CONFLICT);
    assert_eq!(nobody.body["error"]["details"]["reason"], "no_partner_nearby");
    let early = app
        .post(
            "/api/v1/services/bookings",
            &booking(nursing, address, "07:00-09:00"),
            Some(&token),
        )
        .await;
    assert_eq!(
        early.status,
        StatusCode::CREATED,
        "partners work from 07:00: {}",
        early.body
    );
    let inactive = app
        .post(
            "/api/v1/services/bookings",
            &booking(retired, address, window),
            Some(&token),
        )
        .await;
    assert_eq!(
        (inactive.status, inactive.code()),
        (StatusCode::BAD_REQUEST, "validation_failed")
    );
}

#[actix_web::test]
async fn the_partner_steps_the_visit_forward_one_legal_step_at_a_time() {
    let app = spawn_app().await;
    let (nursing, _, _) = insert_services(&app).await;
    let (partner_token, _) = partner(&app, NEAR, 2, &[nursing]).await;
    let (token, _, address) = customer_at(&app, HOME).await;
    let booked = app
        .post(
            "/api/v1/services/bookings",
            &booking(nursing, address, "15:00-17:00"),
            Some(&token),
        )
        .await;
    let id = booked.body["id"].as_i64().unwrap();
    let path = format!("/api/v1/services/bookings/{id}/status");

    let skip = app
        .put(&path, &json!({"status": "completed"}), Some(&partner_token))
        .await;
    assert_eq!(
        (skip.status, skip.code()),
        (StatusCode::CONFLICT, "invalid_transition")
    );
    let unknown = app
        .put(&path, &json!({"status": "cancelled"}), Some(&partner_token))
        .await;
    assert_eq!(
        (unknown.status, unknown.code()),
        (StatusCode::BAD_REQUEST, "validation_failed")
    );
    for status in ["en_route", "in_progress"] {
        let moved = app
            .put(&path, &json!({"status": status}), Some(&partner_token))
            .await;
        assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
        assert_eq!(moved.body["status"], status);
    }
    let late_cancel = app
        .post(
            &format!("/api/v1/services/bookings/{id}/cancel"),
            &json!({}),
            Some(&token),
        )
        .await;
    assert_eq!(
        (late_cancel.status, late_cancel.code()),
        (StatusCode::CONFLICT, "invalid_transition")
    );
    let done = app
        .put(&path, &json!({"status": "completed"}), Some(&partner_token))
        .await;
    assert_eq!(done.body["status"], "completed");
    assert!(done.body["completed_at"].is_string());
    let seen = app
        .get(&format!("/api/v1/services/bookings/{id}"), Some(&token))
        .await;
    let steps: Vec<&str> = seen.body["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["to_status"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["confirmed", "en_route", "in_progress", "completed"]);
    let again = app
        .put(&path, &json!({"status": "completed"}), Some(&partner_token))
        .await;
    assert_eq!(again.code(), "invalid_transition");
}

#[actix_web::test]
async fn customers_partners_and_staff_each_see_and_do_only_their_part() {
    let app = spawn_app().await;
    let (nursing, _, _) = insert_services(&app).await;
    let (partner_token, partner_id) = partner(&app, NEAR, 3, &[nursing]).await;
    let (other_partner_token, _) = partner(&app, ELSEWHERE, 3, &[nursing]).await;
    let (staff_token, _) = app.user_with_role(Role::Staff).await;
    let (token, _, address) = customer_at(&app, HOME).await;
    let (stranger_token, _, stranger_address) = customer_at(&app, HOME).await;
    let booked = app
        .post(
            "/api/v1/services/bookings",
            &booking(nursing, address, "17:00-19:00"),
            Some(&token),
        )
        .await;
    assert_eq!(booked.body["partner_user_id"], partner_id);
    let id = booked.body["id"].as_i64().unwrap();
    let one = format!("/api/v1/services/bookings/{id}");

    // Partner and staff routes are not for customers.
    let profile = app.get("/api/v1/services/partner-profile", Some(&token)).await;
    assert_eq!(
        (profile.status, profile.code()),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    let save = app
        .put(
            "/api/v1/services/partner-profile",
            &json!({"home_lat": 12.9, "home_lng": 77.6, "service_radius_km": 5, "work_start": "08:00",
                    "work_end": "18:00", "capacity_per_window": 1, "service_ids": [nursing]}),
            Some(&token),
        )
        .await;
    assert_eq!(save.status, StatusCode::FORBIDDEN);
    let step = app
        .put(
            &format!("{one}/status"),
            &json!({"status": "en_route"}),
            Some(&token),
        )
        .await;
    assert_eq!((step.status, step.code()), (StatusCode::FORBIDDEN, "forbidden"));

    // Another customer and an unassigned partner cannot tell the booking exists.
    for outsider in [&stranger_token, &other_partner_token] {
        let seen = app.get(&one, Some(outsider)).await;
        assert_eq!((seen.status, seen.code()), (StatusCode::NOT_FOUND, "not_found"));
        let cancel = app
            .post(&format!("{one}/cancel"), &json!({}), Some(outsider))
            .await;
        assert_eq!(cancel.status, StatusCode::NOT_FOUND);
    }
    let step = app
        .put(
            &format!("{one}/status"),
            &json!({"status": "en_route"}),
            Some(&other_partner_token),
        )
        .await;
    assert_eq!(step.status, StatusCode::NOT_FOUND);
    // The assigned partner sees it but may not cancel it for the customer; staff see everything.
    assert_eq!(app.get(&one, Some(&partner_token)).await.status, StatusCode::OK);
    let partner_cancel = app
        .post(&format!("{one}/cancel"), &json!({}), Some(&partner_token))
        .await;
    assert_eq!(partner_cancel.status, StatusCode::FORBIDDEN);
    assert_eq!(app.get(&one, Some(&staff_token)).await.status, StatusCode::OK);
    let anonymous = app.get(&one, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);

    let theirs = app
        .post(
            "/api/v1/services/bookings",
            &booking(nursing, stranger_address, "17:00-19:00"),
            Some(&stranger_token),
        )
        .await;
    assert_eq!(theirs.status, StatusCode::CREATED);
    let mine = app.get("/api/v1/services/bookings", Some(&token)).await;
    assert_eq!(mine.body["total"], 1);
    assert_eq!(mine.body["items"][0]["id"], id);
    assert_eq!(
        app.get("/api/v1/services/bookings", Some(&partner_token))
            .await
            .body["total"],
        2
    );
    assert_eq!(
        app.get("/api/v1/services/bookings", Some(&other_partner_token))
            .await
            .body["total"],
        0
    );
    assert_eq!(
        app.get("/api/v1/services/bookings", Some(&staff_token))
            .await
            .body["total"],
        2
    );
    // Booking with someone else's address is refused as if it did not exist.
    let borrowed = app
        .post(
            "/api/v1/services/bookings",
            &booking(nursing, stranger_address, "17:00-19:00"),
            Some(&token),
        )
        .await;
    assert_eq!(
        (borrowed.status, borrowed.code()),
        (StatusCode::BAD_REQUEST, "validation_failed")
    );
    // Staff may cancel on the customer's behalf.
    let by_staff = app
        .post(
            &format!("{one}/cancel"),
            &json!({"reason": "customer called"}),
            Some(&staff_token),
        )
        .await;
    assert_eq!(by_staff.status, StatusCode::OK, "{}", by_staff.body);
    assert_eq!(by_staff.body["cancel_reason"], "customer called");
}

#[actix_web::test]
async fn invalid_bookings_and_profiles_are_refused_and_write_nothing() {
    let app = spawn_app().await;
    let (nursing, _, _) = insert_services(&app).await;
    let (partner_token, _) = partner(&app, NEAR, 1, &[nursing]).await;
    let (token, _, address) = customer_at(&app, HOME).await;
    let yesterday = (local_today(db::now()) - chrono::TimeDelta::days(1)).to_string();
    let far_future = (local_today(db::now()) + chrono::TimeDelta::days(90)).to_string();
    let cases = [
        (
            json!({"service_id": nursing, "address_id": address, "date": tomorrow(), "window": "09:00-10:00"}),
            "window",
        ),
        (
            json!({"service_id": nursing, "address_id": address, "date": yesterday, "window": "09:00-11:00"}),
            "date",
        ),
        (
            json!({"service_id": nursing, "address_id": address, "date": far_future, "window": "09:00-11:00"}),
            "date",
        ),
        (
            json!({"service_id": nursing, "address_id": address, "date": "tomorrow", "window": "09:00-11:00"}),
            "date",
        ),
        (
            json!({"service_id": 0, "address_id": address, "date": tomorrow(), "window": "09:00-11:00"}),
            "service_id",
        ),
        (
            json!({"service_id": nursing, "address_id": address, "date": tomorrow(), "window": "09:00-11:00",
                "notes": "x".repeat(501)}),
            "notes",
        ),
        (
            json!({"service_id": nursing, "address_id": address, "date": tomorrow(), "window": "09:00-11:00",
                "phone": "12"}),
            "phone",
        ),
        (
            json!({"service_id": 999_999, "address_id": address, "date": tomorrow(), "window": "09:00-11:00"}),
            "service_id",
        ),
        (
            json!({"service_id": nursing, "address_id": 999_999, "date": tomorrow(), "window": "09:00-11:00"}),
            "address_id",
        ),
    ];
    for (body, field) in cases {
        let reply = app.post("/api/v1/services/bookings", &body, Some(&token)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}: {}", reply.body);
        assert_eq!(reply.code(), "validation_failed");
        assert!(
            reply.body["error"]["details"][field].is_string(),
            "{field}: {}",
            reply.body
        );
    }
    let unknown_field = app
        .post(
            "/api/v1/services/bookings",
            &json!({"service_id": nursing, "address_id": address, "date": tomorrow(),
            "window": "09:00-11:00", "price_paise": 1}),
            Some(&token),
        )
        .await;
    assert_eq!(unknown_field.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.get("/api/v1/services/bookings", Some(&token)).await.body["total"],
        0
    );
    let (_, counters) = window_state(&app, "09:00-11:00").await;
    assert!(
        counters.iter().all(|(_, booked)| *booked == 0),
        "no place was taken: {counters:?}"
    );

    let profile_cases = [
        json!({"home_lat": 95.0, "home_lng": 77.6, "service_radius_km": 5, "work_start": "08:00", "work_end": "18:00",
               "capacity_per_window": 1, "service_ids": [nursing]}),
        json!({"home_lat": 12.9, "home_lng": 77.6, "service_radius_km": 0, "work_start": "08:00", "work_end": "18:00",
               "capacity_per_window": 1, "service_ids": [nursing]}),
        json!({"home_lat": 12.9, "home_lng": 77.6, "service_radius_km": 5, "work_start": "18:00", "work_end": "08:00",
               "capacity_per_window": 1, "service_ids": [nursing]}),
        json!({"home_lat": 12.9, "home_lng": 77.6, "service_radius_km": 5, "work_start": "08:00", "work_end": "18:00",
               "capacity_per_window": 0, "service_ids": [nursing]}),
        json!({"home_lat": 12.9, "home_lng": 77.6, "service_radius_km": 5, "work_start": "08:00", "work_end": "18:00",
               "capacity_per_window": 1, "service_ids": []}),
        json!({"home_lat": 12.9, "home_lng": 77.6, "service_radius_km": 5, "work_start": "08:00", "work_end": "18:00",
               "capacity_per_window": 1, "service_ids": [999_999]}),
    ];
    for body in profile_cases {
        let reply = app
            .put("/api/v1/services/partner-profile", &body, Some(&partner_token))
            .await;
        assert_eq!(
            (reply.status, reply.code()),
            (StatusCode::BAD_REQUEST, "validation_failed"),
            "{body}"
        );
    }
    let kept = app
        .get("/api/v1/services/partner-profile", Some(&partner_token))
        .await;
    assert_eq!(kept.body["capacity_per_window"], 1, "the profile is unchanged");
    assert_eq!(kept.body["service_ids"], json!([nursing]));
    assert_eq!(kept.body["work_start"], "07:00");
}

#[actix_web::test]
async fn the_demo_city_has_home_care_partners_who_take_bookings() {
    let app = spawn_app().await;
    let mut conn = app.app.db.write().await.unwrap();
    assert!(demo::seed(&mut conn).await.unwrap());
    drop(conn);
    let services = app.get("/api/v1/services", None).await;
    assert_eq!(services.body["total"], 5, "{}", services.body);
    let nursing = services.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["slug"] == "nursing-visit")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let login = app
        .post(
            "/api/v1/auth/login",
            &json!({"email": format!("customer1@{}", demo::DEMO_DOMAIN), "password": demo::DEMO_PASSWORD}),
            None,
        )
        .await;
    let token = login.body["token"].as_str().unwrap();
    let addresses = app.get("/api/v1/users/addresses", Some(token)).await;
    let address = addresses.body[0]["id"]
        .as_i64()
        .or_else(|| addresses.body["items"][0]["id"].as_i64())
        .unwrap();
    let booked = app
        .post(
            "/api/v1/services/bookings",
            &booking(nursing, address, "09:00-11:00"),
            Some(token),
        )
        .await;
    assert_eq!(booked.status, StatusCode::CREATED, "{}", booked.body);
    assert!(booked.body["partner_user_id"].is_i64());
}
