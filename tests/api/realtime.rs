//! Websocket sessions and the event bus: handshake checks, topic authorisation, unit telemetry, bounded
//! queues, heartbeats, shutdown, and events crossing from one node to another through Redis.

use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use futures_util::{SinkExt, StreamExt};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use onemedi::{db::schema, domain::Role, on_conn};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{self, Message, client::IntoClientRequest, http::HeaderValue},
};

use crate::helpers::{TestApp, redis_url, spawn_app, spawn_app_with, spawn_second_node};

/// Longest wait for something that should happen promptly.
const PATIENCE: Duration = Duration::from_secs(10);

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// A test client of `/ws`.
pub(crate) struct Client {
    socket: Socket,
}

/// How a read ended when the test expected the session to end.
#[derive(Debug, PartialEq)]
enum Ended {
    /// A close frame with this code.
    Code(u16),
    /// The connection dropped without a close frame.
    Dropped,
}

impl Client {
    pub(crate) async fn open(app: &TestApp, token: &str) -> Self {
        Self::open_with(app, Some(token), None).await.unwrap()
    }

    /// Opens a session with an optional bearer token and Origin; the HTTP status on refusal.
    async fn open_with(app: &TestApp, token: Option<&str>, origin: Option<&str>) -> Result<Self, StatusCode> {
        let mut request = app.ws_url().into_client_request().unwrap();
        if let Some(token) = token {
            request.headers_mut().insert(
                "authorization",
                HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
            );
        }
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("origin", HeaderValue::from_str(origin).unwrap());
        }
        Self::connect(request).await
    }

    async fn open_url(url: &str) -> Result<Self, StatusCode> {
        Self::connect(url.into_client_request().unwrap()).await
    }

    async fn connect(request: tungstenite::handshake::client::Request) -> Result<Self, StatusCode> {
        match tokio_tungstenite::connect_async(request).await {
            Ok((socket, _)) => Ok(Self { socket }),
            Err(tungstenite::Error::Http(response)) => {
                Err(StatusCode::from_u16(response.status().as_u16()).unwrap())
            }
            Err(other) => panic!("websocket connect failed: {other}"),
        }
    }

    async fn send(&mut self, frame: Value) {
        self.socket.send(Message::text(frame.to_string())).await.unwrap();
    }

    /// The next JSON frame (pings are answered by the client library).
    pub(crate) async fn next(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(PATIENCE, self.socket.next())
                .await
                .expect("a frame arrives in time")
                .expect("the session is still open")
                .unwrap();
            match message {
                Message::Text(text) => return serde_json::from_str(&text).unwrap(),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// Sends a command with a `ref` and returns the server's answer to it.
    async fn command(&mut self, mut frame: Value, reference: &str) -> Value {
        frame["ref"] = json!(reference);
        self.send(frame).await;
        loop {
            let reply = self.next().await;
            if reply["ref"] == reference {
                return reply;
            }
        }
    }

    pub(crate) async fn subscribe(&mut self, topic: &str) -> Value {
        self.command(json!({"type": "subscribe", "topic": topic}), topic)
            .await
    }

    /// Reads (and discards) frames until the session ends.
    async fn ended(&mut self) -> Ended {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let next = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .expect("the session ends in time");
            match next {
                Some(Ok(Message::Close(Some(frame)))) => return Ended::Code(u16::from(frame.code)),
                Some(Ok(Message::Close(None))) | None | Some(Err(_)) => return Ended::Dropped,
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Whether any text frame arrives within `wait`.
    pub(crate) async fn quiet_for(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Err(_) => return true,
                Ok(Some(Ok(Message::Text(text)))) => panic!("unexpected frame {text}"),
                Ok(Some(Ok(_))) => continue,
                Ok(_) => return true,
            }
        }
    }
}

/// Waits until `check` holds, polling; panics after [`PATIENCE`].
async fn eventually(mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "condition never held");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An order of `customer`, optionally carried by `rider_unit`; returns its id.
async fn insert_order(app: &TestApp, customer: i64, rider_unit: Option<i64>) -> i64 {
    use schema::orders as o;
    let number = format!("OM-{}", uuid::Uuid::new_v4().simple());
    let mut conn = app.app.db.write().await.unwrap();
    on_conn!(&mut conn, c => diesel::insert_into(o::table)
        .values((
            o::order_number.eq(&number),
            o::user_id.eq(customer),
            o::ship_name.eq("Asha"),
            o::ship_phone.eq("+919000000001"),
            o::ship_address.eq("12 MG Road"),
            o::ship_city.eq("Bengaluru"),
            o::ship_pincode.eq("560001"),
            o::ship_lat.eq(12.97),
            o::ship_lng.eq(77.59),
            o::subtotal_paise.eq(10_000_i64),
            o::total_paise.eq(10_000_i64),
            o::payment_method.eq("cod"),
            o::rider_unit_id.eq(rider_unit),
        ))
        .returning(o::id)
        .get_result::<i64>(c)
        .await)
    .unwrap()
}

/// A unit of `kind` crewed by `crew`; returns the unit id.
async fn insert_unit(app: &TestApp, kind: &str, status: &str, crew: i64) -> i64 {
    use schema::{unit_crew as uc, units as u};
    let call_sign = format!("T-{}", uuid::Uuid::new_v4().simple());
    let now = onemedi::db::now();
    let crew_role = if kind == "rider" { "rider" } else { "paramedic" };
    let mut conn = app.app.db.write().await.unwrap();
    let unit = on_conn!(&mut conn, c => diesel::insert_into(u::table)
        .values((
            u::call_sign.eq(&call_sign),
            u::kind.eq(kind),
            u::status.eq(status),
            u::home_lat.eq(12.97),
            u::home_lng.eq(77.59),
            u::created_at.eq(now),
            u::updated_at.eq(now),
        ))
        .returning(u::id)
        .get_result::<i64>(c)
        .await)
    .unwrap();
    on_conn!(&mut conn, c => diesel::insert_into(uc::table)
        .values((uc::unit_id.eq(unit), uc::user_id.eq(crew), uc::crew_role.eq(crew_role)))
        .execute(c)
        .await)
    .unwrap();
    unit
}

fn sign(claims: &Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(b"test-secret-0123456789abcdef0123456789abcdef"),
    )
    .unwrap()
}

fn claims(user: i64, exp_offset: i64) -> Value {
    let now = jsonwebtoken::get_current_timestamp() as i64;
    json!({"sub": user.to_string(), "role": "customer", "iss": "onemedi", "aud": "onemedi-api",
           "iat": now, "exp": now + exp_offset})
}

#[actix_web::test]
async fn a_session_opens_with_a_header_token_and_acknowledges_a_ping() {
    let app = spawn_app().await;
    let (token, _) = app.register_customer("ws-hello@example.in").await;
    let mut client = Client::open(&app, &token).await;
    let reply = client.command(json!({"type": "ping"}), "p1").await;
    assert_eq!(reply, json!({"type": "ack", "ref": "p1"}));
}

#[actix_web::test]
async fn a_session_opens_with_a_query_token_or_a_first_auth_message() {
    let app = spawn_app().await;
    let (token, id) = app.register_customer("ws-query@example.in").await;
    let mut by_query = Client::open_url(&format!("{}?token={token}", app.ws_url()))
        .await
        .unwrap();
    assert_eq!(by_query.subscribe(&format!("user:{id}")).await["type"], "ack");

    let mut by_message = Client::open_with(&app, None, None).await.unwrap();
    let ack = by_message
        .command(json!({"type": "auth", "token": token}), "a1")
        .await;
    assert_eq!(ack["type"], "ack");
    assert_eq!(by_message.subscribe(&format!("user:{id}")).await["type"], "ack");
}

#[actix_web::test]
async fn an_expired_or_forged_token_cannot_open_a_session() {
    let app = spawn_app().await;
    let (_, id) = app.register_customer("ws-forged@example.in").await;
    let expired = sign(&claims(id, -3600));
    let forged = encode(
        &Header::new(Algorithm::HS256),
        &claims(id, 600),
        &EncodingKey::from_secret(b"not-the-server-secret-0123456789abcdef"),
    )
    .unwrap();
    for token in [&expired, &forged, &"garbage".to_owned()] {
        let refused = Client::open_with(&app, Some(token), None).await.err();
        assert_eq!(refused, Some(StatusCode::UNAUTHORIZED), "header token {token}");
        let refused = Client::open_url(&format!("{}?token={token}", app.ws_url()))
            .await
            .err();
        assert_eq!(refused, Some(StatusCode::UNAUTHORIZED), "query token {token}");
    }
    // The same tokens in a first auth message: an error, then close 1008.
    let mut client = Client::open_with(&app, None, None).await.unwrap();
    let reply = client
        .command(json!({"type": "auth", "token": forged}), "a")
        .await;
    assert_eq!(reply["code"], "unauthorized");
    assert_eq!(client.ended().await, Ended::Code(1008));
}

#[actix_web::test]
async fn a_session_that_never_authenticates_is_closed_after_the_auth_timeout() {
    let app = spawn_app_with(|s| s.realtime.auth_timeout_ms = 200).await;
    let mut client = Client::open_with(&app, None, None).await.unwrap();
    assert_eq!(client.ended().await, Ended::Code(1008));

    let mut eager = Client::open_with(&app, None, None).await.unwrap();
    eager
        .send(json!({"type": "subscribe", "topic": "dispatch"}))
        .await;
    assert_eq!(eager.next().await["code"], "unauthorized");
    assert_eq!(eager.ended().await, Ended::Code(1008));
}

#[actix_web::test]
async fn a_browser_origin_outside_the_allow_list_is_refused_but_listed_and_absent_origins_pass() {
    let app = spawn_app().await;
    let (token, _) = app.register_customer("ws-origin@example.in").await;
    let refused = Client::open_with(&app, Some(&token), Some("https://evil.example"))
        .await
        .err();
    assert_eq!(refused, Some(StatusCode::FORBIDDEN));
    assert!(
        Client::open_with(&app, Some(&token), Some("http://localhost:8080"))
            .await
            .is_ok()
    );
    assert!(Client::open_with(&app, Some(&token), None).await.is_ok());
}

#[actix_web::test]
async fn a_customer_cannot_follow_another_customers_order_and_hears_nothing_of_it() {
    let app = spawn_app().await;
    let (asha, asha_id) = app.register_customer("ws-asha@example.in").await;
    let (ravi, ravi_id) = app.register_customer("ws-ravi@example.in").await;
    let order = insert_order(&app, asha_id, None).await;
    let topic = format!("order:{order}");

    let mut owner = Client::open(&app, &asha).await;
    assert_eq!(owner.subscribe(&topic).await["type"], "ack");
    let mut other = Client::open(&app, &ravi).await;
    let refused = other.subscribe(&topic).await;
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["code"], "forbidden");
    // A missing row looks exactly like someone else's.
    let missing = other.subscribe(&format!("order:{}", order + 1000)).await;
    assert_eq!(missing["code"], "forbidden");
    assert_eq!(
        other.subscribe(&format!("user:{asha_id}")).await["code"],
        "forbidden"
    );
    assert_eq!(other.subscribe("dispatch").await["code"], "forbidden");
    assert_eq!(other.subscribe(&format!("user:{ravi_id}")).await["type"], "ack");
    assert_eq!(other.subscribe("orders:all").await["code"], "validation_failed");

    app.app
        .bus
        .publish(
            std::slice::from_ref(&topic),
            json!({"type": "order_status_changed", "v": 1, "order_id": order, "status": "packed"}),
        )
        .await;
    let event = owner.next().await;
    assert_eq!(event["type"], "event");
    assert_eq!(event["topic"], topic.as_str());
    assert_eq!(event["event"]["status"], "packed");
    assert!(other.quiet_for(Duration::from_millis(300)).await);

    // Staff and the order's rider may follow it; an admin may too, but not a missing one.
    let (staff, _) = app.user_with_role(Role::Staff).await;
    assert_eq!(
        Client::open(&app, &staff).await.subscribe(&topic).await["type"],
        "ack"
    );
    let (rider, rider_id) = app.user_with_role(Role::Rider).await;
    let unit = insert_unit(&app, "rider", "available", rider_id).await;
    let carried = insert_order(&app, asha_id, Some(unit)).await;
    let mut rider_client = Client::open(&app, &rider).await;
    assert_eq!(
        rider_client.subscribe(&format!("order:{carried}")).await["type"],
        "ack"
    );
    assert_eq!(rider_client.subscribe(&topic).await["code"], "forbidden");
    let (admin, _) = app.user_with_role(Role::Admin).await;
    let mut admin_client = Client::open(&app, &admin).await;
    assert_eq!(admin_client.subscribe(&topic).await["type"], "ack");
    assert_eq!(
        admin_client.subscribe(&format!("order:{}", order + 1000)).await["code"],
        "forbidden"
    );
}

#[actix_web::test]
async fn a_location_from_a_user_who_crews_no_unit_is_refused() {
    let app = spawn_app().await;
    let (token, _) = app.register_customer("ws-notaunit@example.in").await;
    let mut client = Client::open(&app, &token).await;
    let reply = client
        .command(json!({"type": "location", "lat": 12.97, "lng": 77.59}), "l1")
        .await;
    assert_eq!(reply["type"], "error");
    assert_eq!(reply["code"], "forbidden");
    let reply = client
        .command(json!({"type": "status", "status": "available"}), "s1")
        .await;
    assert_eq!(reply["code"], "forbidden");
    assert_eq!(app.app.fleet.lock().unwrap().len(), 0);
}

#[actix_web::test]
async fn a_units_location_reaches_its_topic_the_fleet_index_and_then_the_database() {
    let app = spawn_app_with(|s| s.realtime.position_flush_ms = 50).await;
    let (crew, crew_id) = app.user_with_role(Role::Paramedic).await;
    let unit = insert_unit(&app, "als", "available", crew_id).await;
    let (dispatcher, _) = app.user_with_role(Role::Dispatcher).await;
    let mut console = Client::open(&app, &dispatcher).await;
    assert_eq!(console.subscribe("dispatch").await["type"], "ack");

    let mut ambulance = Client::open(&app, &crew).await;
    assert_eq!(ambulance.subscribe(&format!("unit:{unit}")).await["type"], "ack");
    let bad = ambulance
        .command(json!({"type": "location", "lat": 123.0, "lng": 77.59}), "bad")
        .await;
    assert_eq!(bad["code"], "validation_failed");
    let ack = ambulance
        .command(
            json!({"type": "location", "lat": 12.9716, "lng": 77.5946, "heading": 370.0,
                   "speed": 11.5, "accuracy": 6.0, "ts": 1_764_000_000_000_i64}),
            "l1",
        )
        .await;
    assert_eq!(ack["type"], "ack");
    let seen = console.next().await;
    assert_eq!(seen["topic"], "dispatch");
    assert_eq!(seen["event"]["type"], "unit_location");
    assert_eq!(seen["event"]["v"], 1);
    assert_eq!(seen["event"]["unit_id"], unit);
    assert_eq!(seen["event"]["heading"], 10.0);

    let indexed = app
        .app
        .fleet
        .lock()
        .unwrap()
        .get(onemedi_actors::ids::UnitId(unit))
        .copied()
        .unwrap();
    assert!((indexed.position.lat() - 12.9716).abs() < 1e-9);
    assert_eq!(indexed.status, onemedi_actors::fleet::UnitStatus::Available);

    eventually(async || {
        use schema::units as u;
        let mut conn = app.app.db.read().await.unwrap();
        let stored: Option<f64> =
            on_conn!(&mut conn, c => u::table.find(unit).select(u::last_lat).first(c).await).unwrap();
        stored.is_some_and(|lat| (lat - 12.9716).abs() < 1e-9)
    })
    .await;
}

#[actix_web::test]
async fn a_crews_status_change_is_stored_published_and_refused_while_on_a_job() {
    let app = spawn_app().await;
    let (crew, crew_id) = app.user_with_role(Role::Rider).await;
    let unit = insert_unit(&app, "rider", "off_duty", crew_id).await;
    let mut rider = Client::open(&app, &crew).await;
    assert_eq!(rider.subscribe(&format!("unit:{unit}")).await["type"], "ack");
    let ack = rider
        .command(json!({"type": "status", "status": "available"}), "s1")
        .await;
    assert_eq!(ack["type"], "ack");
    let event = rider.next().await;
    assert_eq!(event["event"]["type"], "unit_status");
    assert_eq!(event["event"]["status"], "available");
    let invalid = rider
        .command(json!({"type": "status", "status": "assigned"}), "s2")
        .await;
    assert_eq!(invalid["code"], "validation_failed");

    {
        use schema::units as u;
        let mut conn = app.app.db.write().await.unwrap();
        let status: String =
            on_conn!(&mut conn, c => u::table.find(unit).select(u::status).first(c).await).unwrap();
        assert_eq!(status, "available");
        on_conn!(&mut conn, c => diesel::update(u::table.find(unit)).set(u::status.eq("en_route")).execute(c).await)
            .unwrap();
    }
    let on_job = rider
        .command(json!({"type": "status", "status": "off_duty"}), "s3")
        .await;
    assert_eq!(on_job["code"], "validation_failed");
    let no_offer = rider
        .command(json!({"type": "accept", "request_id": 99}), "o1")
        .await;
    assert_eq!(no_offer["code"], "validation_failed");
}

#[actix_web::test]
async fn malformed_frames_get_an_error_and_binary_or_oversized_frames_close_the_session() {
    let app = spawn_app_with(|s| s.realtime.max_frame_bytes = 1024).await;
    let (token, _) = app.register_customer("ws-malformed@example.in").await;
    let mut client = Client::open(&app, &token).await;
    client.socket.send(Message::text("{not json")).await.unwrap();
    assert_eq!(client.next().await["code"], "malformed_json");
    client.send(json!({"type": "launch_rockets", "ref": 5})).await;
    let unknown = client.next().await;
    assert_eq!(unknown["code"], "validation_failed");
    assert_eq!(unknown["ref"], 5);
    client.send(json!({"type": "subscribe"})).await;
    assert_eq!(client.next().await["code"], "validation_failed");
    // Still alive after all that.
    assert_eq!(
        client.command(json!({"type": "ping"}), "alive").await["type"],
        "ack"
    );

    client
        .socket
        .send(Message::binary(vec![1_u8, 2, 3]))
        .await
        .unwrap();
    assert_eq!(client.ended().await, Ended::Code(1003));

    let mut big = Client::open(&app, &token).await;
    let padding = "x".repeat(4096);
    big.send(json!({"type": "ping", "ref": padding})).await;
    assert_eq!(big.ended().await, Ended::Code(1009));
}

#[actix_web::test]
async fn a_client_that_never_reads_is_disconnected_and_its_queue_stays_bounded() {
    let app = spawn_app_with(|s| s.realtime.outbound_queue = 8).await;
    let (token, id) = app.register_customer("ws-slow@example.in").await;
    let topic = format!("user:{id}");
    let mut client = Client::open(&app, &token).await;
    assert_eq!(client.subscribe(&topic).await["type"], "ack");
    assert_eq!(app.app.hub.subscribers(&topic), 1);

    // Publish big events while the client reads nothing, until the server gives up on it.
    let payload = "x".repeat(64 * 1024);
    let mut published = 0;
    while app.app.hub.subscribers(&topic) > 0 {
        assert!(published < 20_000, "the slow session was never cut off");
        app.app
            .bus
            .publish(
                std::slice::from_ref(&topic),
                json!({"type": "filler", "v": 1, "payload": payload}),
            )
            .await;
        published += 1;
        if published % 16 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    assert!(app.app.hub.overflows() >= 1);
    // What it did receive is bounded by its queue and the socket buffers, then the session ends.
    let ended = client.ended().await;
    assert!(matches!(ended, Ended::Code(1013) | Ended::Dropped), "{ended:?}");
}

#[actix_web::test]
async fn a_silent_client_is_dropped_after_the_heartbeat_timeout_but_a_responsive_one_stays() {
    let app = spawn_app_with(|s| {
        s.realtime.heartbeat_interval_ms = 50;
        s.realtime.client_timeout_ms = 300;
    })
    .await;
    let (token, _) = app.register_customer("ws-silent@example.in").await;
    let mut responsive = Client::open(&app, &token).await;
    let mut silent = Client::open(&app, &token).await;
    // The responsive client reads (its library answers pings) for well past the timeout.
    assert!(responsive.quiet_for(Duration::from_millis(900)).await);
    assert_eq!(
        responsive.command(json!({"type": "ping"}), "still-here").await["type"],
        "ack"
    );
    // The silent one read nothing meanwhile, so it never answered a ping. (Reading now, its library
    // answers the queued pings on a socket the server has closed, which may reset it before the
    // close frame is read.)
    let ended = silent.ended().await;
    assert!(matches!(ended, Ended::Code(1008) | Ended::Dropped), "{ended:?}");
}

#[actix_web::test]
async fn graceful_shutdown_closes_sessions_with_going_away() {
    let app = spawn_app().await;
    let (token, _) = app.register_customer("ws-bye@example.in").await;
    let mut client = Client::open(&app, &token).await;
    assert_eq!(client.command(json!({"type": "ping"}), "p").await["type"], "ack");
    onemedi::begin_shutdown(&app.app);
    assert_eq!(client.ended().await, Ended::Code(1001));
}

#[actix_web::test]
async fn a_profile_update_is_published_on_the_users_topic_after_it_is_saved() {
    let app = spawn_app().await;
    let (token, id) = app.register_customer("ws-profile@example.in").await;
    let mut client = Client::open(&app, &token).await;
    assert_eq!(client.subscribe(&format!("user:{id}")).await["type"], "ack");
    let saved = app
        .put(
            "/api/v1/users/profile",
            &json!({"name": "Asha Rao"}),
            Some(&token),
        )
        .await;
    assert_eq!(saved.status, StatusCode::OK);
    let event = client.next().await;
    assert_eq!(event["type"], "event");
    assert_eq!(event["topic"], format!("user:{id}"));
    assert_eq!(event["event"]["type"], "profile_updated");
    assert_eq!(event["event"]["v"], 1);
    assert_eq!(event["event"]["name"], "Asha Rao");
}

#[actix_web::test]
async fn a_client_on_one_node_receives_the_event_of_a_write_on_another_node_exactly_once() {
    if redis_url().is_none() {
        eprintln!("skipped: events cross nodes only through Redis (set TEST_REDIS_URL)");
        return;
    }
    let node_a = spawn_app().await;
    let node_b = spawn_second_node(&node_a).await;
    let (token, id) = node_a.register_customer("ws-cross@example.in").await;
    let topic = format!("user:{id}");
    let mut on_b = Client::open(&node_b, &token).await;
    assert_eq!(on_b.subscribe(&topic).await["type"], "ack");
    let mut on_a = Client::open(&node_a, &token).await;
    assert_eq!(on_a.subscribe(&topic).await["type"], "ack");

    let saved = node_a
        .put(
            "/api/v1/users/profile",
            &json!({"name": "Across Nodes"}),
            Some(&token),
        )
        .await;
    assert_eq!(saved.status, StatusCode::OK);
    for client in [&mut on_b, &mut on_a] {
        let event = client.next().await;
        assert_eq!(event["event"]["type"], "profile_updated");
        assert_eq!(event["event"]["name"], "Across Nodes");
        // No second copy: the publishing node skips its own relayed message.
        assert!(client.quiet_for(Duration::from_millis(300)).await);
    }
}

#[actix_web::test]
async fn a_location_sent_to_one_node_appears_in_every_nodes_fleet_index() {
    if redis_url().is_none() {
        eprintln!("skipped: locations cross nodes only through Redis (set TEST_REDIS_URL)");
        return;
    }
    let node_a = spawn_app().await;
    let node_b = spawn_second_node(&node_a).await;
    let (crew, crew_id) = node_a.user_with_role(Role::Rider).await;
    let unit = insert_unit(&node_a, "rider", "available", crew_id).await;
    let (dispatcher, _) = node_a.user_with_role(Role::Dispatcher).await;
    let mut console_on_b = Client::open(&node_b, &dispatcher).await;
    assert_eq!(console_on_b.subscribe("dispatch").await["type"], "ack");

    let mut rider = Client::open(&node_a, &crew).await;
    let ack = rider
        .command(json!({"type": "location", "lat": 12.93, "lng": 77.62}), "l")
        .await;
    assert_eq!(ack["type"], "ack");
    let seen = console_on_b.next().await;
    assert_eq!(seen["event"]["type"], "unit_location");
    assert_eq!(seen["event"]["unit_id"], unit);
    for node in [&node_a, &node_b] {
        let fleet = node.app.fleet.lock().unwrap();
        let indexed = fleet.get(onemedi_actors::ids::UnitId(unit)).unwrap();
        assert!((indexed.position.lng() - 77.62).abs() < 1e-9);
    }
}
