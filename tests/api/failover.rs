//! Two real `onemedi serve` processes on one database (and, with TEST_REDIS_URL, one Redis): the node
//! that owns a waiting emergency call is killed with SIGKILL, and the other adopts the call when its
//! lease lapses and offers it to the crew connected there; and two nodes racing two calls for one
//! unit never hold two open offers to it.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use onemedi::{db::schema, on_conn};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, http::HeaderValue};

use crate::{
    helpers::{fresh_postgres_database, postgres_url, redis_url},
    ws_client::Client,
};

const SECRET: &str = "failover-secret-0123456789abcdef0123456789abcdef";

/// One server process; killed with SIGKILL when dropped (if still running).
struct Node {
    child: Child,
    port: u16,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Cluster {
    dir: tempfile::TempDir,
    database: Option<String>,
    prefix: String,
}

impl Cluster {
    async fn new() -> Self {
        let database = match postgres_url() {
            Some(base) => Some(fresh_postgres_database(&base).await.0),
            None => None,
        };
        Self {
            dir: tempfile::tempdir().unwrap(),
            database,
            prefix: format!("failover-{}", uuid::Uuid::new_v4().simple()),
        }
    }

    /// The binary with this cluster's database, Redis and secret; every node shares the data dir, so on
    /// SQLite they share the database file.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_onemedi"));
        command
            .args(args)
            .arg("--data-dir")
            .arg(self.dir.path())
            .env("ONEMEDI_CONFIG_DIR", self.dir.path().join("no-config"))
            .env("ONEMEDI__AUTH__JWT_SECRET", SECRET)
            .env("ONEMEDI__REDIS__KEY_PREFIX", &self.prefix)
            .env("RUST_LOG", "warn");
        match &self.database {
            Some(url) => command.env("DATABASE_URL", url),
            None => command.env_remove("DATABASE_URL"),
        };
        match redis_url() {
            Some(url) => command.env("REDIS_URL", url),
            None => command.env_remove("REDIS_URL"),
        };
        command
    }

    fn run(&self, args: &[&str]) {
        let output = self.command(args).output().unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Starts `serve` on a random port and waits until it listens.
    fn serve(&self) -> Node {
        let mut child = self
            .command(&["serve", "--bind", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut port = None;
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(rest) = line.split("http://127.0.0.1:").nth(1) {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                port = digits.parse().ok();
                break;
            }
        }
        Node {
            child,
            port: port.expect("the server listens"),
        }
    }

    async fn db(&self) -> onemedi::db::Db {
        let url = match &self.database {
            Some(url) => url.clone(),
            None => self.dir.path().join("onemedi.sqlite").display().to_string(),
        };
        onemedi::db::Db::connect(&url, 2).await.unwrap()
    }
}

fn url(node: &Node, path: &str) -> String {
    format!("http://127.0.0.1:{}{path}", node.port)
}

async fn login(client: &reqwest::Client, node: &Node, email: &str) -> (String, i64) {
    let reply = client
        .post(url(node, "/api/v1/auth/login"))
        .json(&json!({"email": email, "password": "long enough"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    let body: Value = reply.json().await.unwrap();
    (
        body["token"].as_str().unwrap().to_owned(),
        body["user"]["id"].as_i64().unwrap(),
    )
}

async fn crew_session(node: &Node, token: &str) -> Client {
    let mut request = format!("ws://127.0.0.1:{}/ws", node.port)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    Client::connect(request).await.unwrap()
}

/// Tokens and the unit of a cluster's dispatcher and its one crewed ALS ambulance (created through
/// `node`), the users made with the CLI on the shared database.
struct Fleet {
    dispatcher: String,
    crew_token: String,
    unit: i64,
}

async fn one_ambulance(cluster: &Cluster, node: &Node, client: &reqwest::Client, call_sign: &str) -> Fleet {
    let dispatcher_email = format!("dispatch@{call_sign}.in").to_lowercase();
    let crew_email = format!("crew@{call_sign}.in").to_lowercase();
    for (email, role) in [(&dispatcher_email, "dispatcher"), (&crew_email, "paramedic")] {
        cluster.run(&[
            "user",
            "create",
            "--email",
            email,
            "--password",
            "long enough",
            "--role",
            role,
        ]);
    }
    let (dispatcher, _) = login(client, node, &dispatcher_email).await;
    let (crew_token, crew_user) = login(client, node, &crew_email).await;
    let created = client
        .post(url(node, "/api/v1/emergency/units"))
        .bearer_auth(&dispatcher)
        .json(&json!({
            "call_sign": call_sign, "kind": "als", "home": {"lat": 12.9760, "lng": 77.6040},
            "crew": [{"user_id": crew_user, "lead": true}],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let unit = created.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    Fleet {
        dispatcher,
        crew_token,
        unit,
    }
}

#[actix_web::test]
async fn a_waiting_category_1_call_of_a_node_killed_with_sigkill_is_adopted_and_offered_by_the_other() {
    let cluster = Cluster::new().await;
    cluster.run(&["migrate"]);
    let owner = cluster.serve();
    let survivor = cluster.serve();
    let client = reqwest::Client::new();
    let Fleet {
        dispatcher,
        crew_token,
        unit,
    } = one_ambulance(&cluster, &survivor, &client, "ALS-K1").await;

    // The crew is on the surviving node, on duty but busy: nobody can take a call now.
    let mut crew = crew_session(&survivor, &crew_token).await;
    assert_eq!(crew.subscribe(&format!("unit:{unit}")).await["type"], "ack");
    let busy = crew
        .command(json!({"type": "status", "status": "busy"}), "s")
        .await;
    assert_eq!(busy["type"], "ack", "{busy}");
    let ping = json!({"type": "location", "lat": 12.9760, "lng": 77.6040, "heading": 0, "speed": 0});
    assert_eq!(crew.command(ping.clone(), "l").await["type"], "ack");

    let posted = client
        .post(url(&owner, "/api/v1/emergency/ambulance-requests"))
        .bearer_auth(&dispatcher)
        .json(&json!({"pickup": {"lat": 12.9750, "lng": 77.6050}, "category": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), StatusCode::CREATED);
    let call = posted.json::<Value>().await.unwrap()["id"].as_i64().unwrap();

    // Wait until the owner holds the call's lease, then kill it without warning.
    let db = cluster.db().await;
    let lease = async || {
        use schema::ambulance_requests as ar;
        let mut conn = db.read().await.unwrap();
        on_conn!(&mut conn, c => ar::table
            .find(call)
            .select((ar::status, ar::dispatch_node))
            .first::<(String, Option<String>)>(c)
            .await)
        .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let owner_node = loop {
        let (status, node) = lease().await;
        if let Some(node) = node.filter(|_| status != "requested") {
            break node;
        }
        assert!(Instant::now() < deadline, "the owner never leased the call");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut owner = owner;
    owner.child.kill().unwrap();
    owner.child.wait().unwrap();
    let killed = Instant::now();

    // The unit comes free on the surviving node; the call is adopted there and offered to it.
    let free = crew
        .command(json!({"type": "status", "status": "available"}), "a")
        .await;
    assert_eq!(free["type"], "ack", "{free}");
    let offer = loop {
        let frame = crew.next().await;
        if frame["type"] == "offer" {
            break frame["event"].clone();
        }
    };
    let adopted_after = killed.elapsed();
    assert_eq!(offer["request"]["id"], call, "{offer}");
    let (status, node) = lease().await;
    assert_eq!(status, "offered");
    assert_ne!(
        node.as_deref(),
        Some(owner_node.as_str()),
        "the survivor holds the lease now"
    );
    println!("category 1 call adopted and offered {adopted_after:?} after SIGKILL of its node");
    let accepted = crew
        .command(json!({"type": "accept", "request_id": call}), "ok")
        .await;
    assert_eq!(accepted["type"], "ack", "{accepted}");
}

/// Open offers to `unit`: (request id, status) of every offer row not yet answered or lapsed.
async fn open_offers(db: &onemedi::db::Db, unit: i64) -> Vec<i64> {
    use schema::dispatch_offers as o;
    let mut conn = db.read().await.unwrap();
    on_conn!(&mut conn, c => o::table
        .filter(o::unit_id.eq(unit).and(o::status.eq("offered")))
        .select(o::request_id)
        .load::<i64>(c)
        .await)
    .unwrap()
}

#[actix_web::test]
async fn two_nodes_racing_two_calls_for_one_unit_never_offer_it_both() {
    let cluster = Cluster::new().await;
    cluster.run(&["migrate"]);
    let a = cluster.serve();
    let b = cluster.serve();
    let client = reqwest::Client::new();
    let Fleet {
        dispatcher,
        crew_token,
        unit,
    } = one_ambulance(&cluster, &a, &client, "ALS-R1").await;

    // The crew goes on duty, then is heard on both nodes (a session on each, which reads the unit's
    // status as it opens), so both dispatchers see it free and near — with or without Redis between.
    let mut sessions = Vec::new();
    for node in [&a, &b] {
        let mut crew = crew_session(node, &crew_token).await;
        assert_eq!(crew.subscribe(&format!("unit:{unit}")).await["type"], "ack");
        if sessions.is_empty() {
            let on_duty = crew
                .command(json!({"type": "status", "status": "available"}), "a")
                .await;
            assert_eq!(on_duty["type"], "ack", "{on_duty}");
        }
        let ping = json!({"type": "location", "lat": 12.9760, "lng": 77.6040, "heading": 0, "speed": 0});
        assert_eq!(crew.command(ping, "l").await["type"], "ack");
        sessions.push(crew);
    }

    // Two calls at once, one on each node, both nearest to the one unit.
    let post = |node: &Node, lng: f64| {
        client
            .post(url(node, "/api/v1/emergency/ambulance-requests"))
            .bearer_auth(&dispatcher)
            .json(&json!({"pickup": {"lat": 12.9750, "lng": lng}, "category": 2}))
            .send()
    };
    let (first, second) = tokio::join!(post(&a, 77.6050), post(&b, 77.6051));
    let mut calls = Vec::new();
    for reply in [first.unwrap(), second.unwrap()] {
        assert_eq!(reply.status(), StatusCode::CREATED);
        calls.push(reply.json::<Value>().await.unwrap()["id"].as_i64().unwrap());
    }

    // The first offer reaches the crew; the crew does not answer for a while, so had the other node
    // offered the unit too, both offers would be open now.
    let offer = loop {
        let frame = sessions[0].next().await;
        if frame["type"] == "offer" {
            break frame["event"].clone();
        }
    };
    let offered = offer["request"]["id"].as_i64().unwrap();
    assert!(calls.contains(&offered), "{offer}");
    let db = cluster.db().await;
    for _ in 0..10 {
        let open = open_offers(&db, unit).await;
        assert_eq!(open, vec![offered], "the unit holds exactly one open offer");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The crew takes it; the other call waits for a unit rather than being offered this one.
    let accepted = sessions[0]
        .command(json!({"type": "accept", "request_id": offered}), "ok")
        .await;
    assert_eq!(accepted["type"], "ack", "{accepted}");
    let other = *calls.iter().find(|call| **call != offered).unwrap();
    let status = async || {
        use schema::ambulance_requests as ar;
        let mut conn = db.read().await.unwrap();
        on_conn!(&mut conn, c => ar::table
            .find(other)
            .select(ar::status)
            .first::<String>(c)
            .await)
        .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = status().await;
        if now == "queued" {
            break;
        }
        assert!(Instant::now() < deadline, "the other call ended {now}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(open_offers(&db, unit).await.is_empty());
}
