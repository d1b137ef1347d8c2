//! The database unable to serve, on both backends: a read-only database (PostgreSQL
//! `default_transaction_read_only`, SQLite `query_only`) and connections cut under a running node
//! (PostgreSQL `pg_terminate_backend`, what an administrator's shutdown does) answer 503
//! `service_unavailable` with `Retry-After`, never 500, and `/ready` fails while writes cannot succeed.

use diesel_async::SimpleAsyncConnection;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, postgres_url, spawn_app};

async fn register(app: &TestApp, email: &str) -> crate::helpers::Reply {
    app.post(
        "/api/v1/auth/register",
        &json!({"name": "Asha", "email": email, "password": "correct horse battery"}),
        None,
    )
    .await
}

/// The test database's name on PostgreSQL.
fn pg_database(app: &TestApp) -> String {
    use secrecy::ExposeSecret;
    let url = app.app.settings.database.url.expose_secret().to_owned();
    url.rsplit_once('/').unwrap().1.to_owned()
}

/// Runs `sql` on PostgreSQL from a connection of the test's own (not the app's pool).
async fn pg_admin(sql: &str) {
    use diesel_async::{AsyncConnection, AsyncPgConnection};
    let mut admin = AsyncPgConnection::establish(&postgres_url().unwrap())
        .await
        .unwrap();
    admin.batch_execute(sql).await.unwrap();
}

/// Makes the database refuse writes (`true`) or take them again.
async fn set_read_only(app: &TestApp, read_only: bool) {
    if postgres_url().is_some() {
        let name = pg_database(app);
        let value = if read_only { "on" } else { "off" };
        pg_admin(&format!(
            "ALTER DATABASE {name} SET default_transaction_read_only = {value}"
        ))
        .await;
        // Sessions read the setting when they start: end the node's current ones.
        pg_admin(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        ))
        .await;
    } else {
        // The one SQLite writer connection: every write through it is refused while set.
        let mut conn = app.app.db.write().await.unwrap();
        let pragma = format!("PRAGMA query_only = {}", i32::from(read_only));
        onemedi::on_conn!(&mut conn, c => c.batch_execute(&pragma).await).unwrap();
    }
}

fn assert_unavailable(reply: &crate::helpers::Reply) {
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{}", reply.body);
    assert_eq!(reply.code(), "service_unavailable", "{}", reply.body);
    assert!(reply.headers.contains_key("retry-after"), "{:?}", reply.headers);
}

#[actix_web::test]
async fn a_read_only_database_answers_writes_503_with_retry_after_and_the_node_is_not_ready() {
    let app = spawn_app().await;
    assert_eq!(
        register(&app, "before@example.in").await.status,
        StatusCode::CREATED
    );
    assert_eq!(app.get("/ready", None).await.status, StatusCode::OK);

    set_read_only(&app, true).await;
    // A read may meet a connection the switch cut; it is answered 503 too, never 500, and the next one
    // reads.
    let first = app.get("/api/v1/medicines", None).await;
    assert!(
        first.status == StatusCode::OK || first.status == StatusCode::SERVICE_UNAVAILABLE,
        "{} {}",
        first.status,
        first.body
    );
    for _ in 0..3 {
        assert_unavailable(&register(&app, "during@example.in").await);
    }
    let ready = app.get("/ready", None).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE, "{}", ready.body);
    assert_eq!(ready.body["database"], "down", "{}", ready.body);
    assert_eq!(app.get("/api/v1/medicines", None).await.status, StatusCode::OK);

    set_read_only(&app, false).await;
    // The first request after the switch may meet a cut connection (503); then writes succeed.
    crate::ws_client::eventually(async || app.get("/ready", None).await.status == StatusCode::OK).await;
    let mut created = register(&app, "after@example.in").await;
    if created.status == StatusCode::SERVICE_UNAVAILABLE {
        created = register(&app, "after@example.in").await;
    }
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(
        app.post(
            "/api/v1/auth/login",
            &json!({"email": "during@example.in", "password": "correct horse battery"}),
            None
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED,
        "a write refused as 503 left nothing behind"
    );
}

#[actix_web::test]
async fn connections_cut_by_the_server_answer_503_never_500() {
    let Some(_) = postgres_url() else {
        // SQLite has no server to cut connections: the read-only test covers its 503 mapping.
        return;
    };
    let app = spawn_app().await;
    for round in 0..3 {
        let name = pg_database(&app);
        pg_admin(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        ))
        .await;
        for attempt in 0..4 {
            let reply = register(&app, &format!("cut-{round}-{attempt}@example.in")).await;
            assert!(
                reply.status == StatusCode::CREATED || reply.status == StatusCode::SERVICE_UNAVAILABLE,
                "{} {}",
                reply.status,
                reply.body
            );
            if reply.status == StatusCode::SERVICE_UNAVAILABLE {
                assert_unavailable(&reply);
            }
        }
    }
}
