//! `spawn_app()`: a real server on a random port with a fresh database (SQLite file, or a new
//! PostgreSQL database when `TEST_DATABASE_URL` is set) and, with `TEST_REDIS_URL`, a real Redis.

use std::sync::Arc;

use onemedi::{
    Application,
    config::Settings,
    db::{self, users},
    domain::Role,
};
use reqwest::{Method, StatusCode};
use secrecy::SecretString;
use serde_json::{Value, json};

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub app: Arc<onemedi::state::AppState>,
    pub data_dir: tempfile::TempDir,
    pg_database: Option<(String, String)>,
    handle: actix_web::dev::ServerHandle,
}

/// Waits as a 503's `Retry-After` asks (1 s when absent), spread over up to half as long again so that
/// many waiting clients do not all come back at once; polling faster would spend the login rate limit.
async fn wait_out(reply: &Reply) {
    let secs: u64 = reply
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let base = std::time::Duration::from_secs(secs.max(1));
    let spread = base.mul_f64(rand::random::<f64>() / 2.0);
    tokio::time::sleep(base + spread).await;
}

/// What a test sees of a response.
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The stable error code of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("<no error code>")
    }
}

pub fn postgres_url() -> Option<String> {
    std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.is_empty())
}

pub fn redis_url() -> Option<String> {
    std::env::var("TEST_REDIS_URL").ok().filter(|u| !u.is_empty())
}

/// Creates a uuid-named database next to the one in `TEST_DATABASE_URL`; returns (url, name).
pub async fn fresh_postgres_database(base: &str) -> (String, String) {
    use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
    let name = format!("onemedi_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = AsyncPgConnection::establish(base)
        .await
        .expect("TEST_DATABASE_URL must be reachable");
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let (prefix, _) = base.rsplit_once('/').unwrap();
    (format!("{prefix}/{name}"), name)
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let data_dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::load_env("test").unwrap();
    settings.server.bind = "127.0.0.1:0".parse().unwrap();
    settings.server.data_dir = data_dir.path().to_path_buf();
    settings.auth.jwt_secret = SecretString::from("test-secret-0123456789abcdef0123456789abcdef".to_owned());
    let pg_database = match postgres_url() {
        Some(base) => {
            let (url, name) = fresh_postgres_database(&base).await;
            settings.database.url = SecretString::from(url);
            settings.database.max_connections = 8;
            // Many test servers share one PostgreSQL: each opens few connections ahead.
            settings.database.warm_connections = 2;
            Some((base, name))
        }
        None => {
            settings.database.url = SecretString::from(String::new());
            None
        }
    };
    settings.redis.url = SecretString::from(redis_url().unwrap_or_default());
    settings.redis.key_prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    // Many test servers share two cores: a command may wait longer than production's 50 ms budget
    // without Redis being down (the outage tests set the production value).
    settings.redis.command_timeout_ms = 500;
    configure(&mut settings);

    let application = Application::build(settings)
        .await
        .expect("the application builds");
    let port = application.port();
    let app = application.state().into_inner();
    let handle = application.handle();
    actix_web::rt::spawn(application.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        app,
        data_dir,
        pg_database,
        handle,
    }
}

/// A second server node sharing `first`'s database, JWT secret and Redis prefix (so, with
/// TEST_REDIS_URL, its event bus), as a load balancer would put beside it.
pub async fn spawn_second_node(first: &TestApp) -> TestApp {
    spawn_second_node_with(first, |_| {}).await
}

pub async fn spawn_second_node_with(first: &TestApp, configure: impl FnOnce(&mut Settings)) -> TestApp {
    use secrecy::ExposeSecret;
    let data_dir = tempfile::tempdir().unwrap();
    let mut settings = first.app.settings.clone();
    let url = settings.database.effective_url(&settings.server.data_dir);
    settings.database.url = SecretString::from(url);
    settings.server.data_dir = data_dir.path().to_path_buf();
    assert_eq!(
        settings.redis.url.expose_secret(),
        first.app.settings.redis.url.expose_secret()
    );
    configure(&mut settings);
    let application = Application::build(settings)
        .await
        .expect("the second node builds");
    let port = application.port();
    let app = application.state().into_inner();
    let handle = application.handle();
    actix_web::rt::spawn(application.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        app,
        data_dir,
        pg_database: None,
        handle,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        onemedi::begin_shutdown(&self.app);
        // `stop` sends its command at once; awaiting it here would block the runtime that serves it.
        drop(self.handle.stop(false));
        let Some((base, name)) = self.pg_database.take() else {
            return;
        };
        // Drop the per-test database from a thread of its own: Drop cannot await.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            runtime.block_on(async move {
                use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
                if let Ok(mut admin) = AsyncPgConnection::establish(&base).await {
                    let _ = admin
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// The websocket address of this node (`ws://127.0.0.1:…/ws`).
    pub fn ws_url(&self) -> String {
        format!("{}/ws", self.address.replacen("http://", "ws://", 1))
    }

    /// Sends a request with an optional JSON body and bearer token.
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>, token: Option<&str>) -> Reply {
        let mut request = self.client.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        into_reply(request.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.call(Method::GET, path, None, token).await
    }

    pub async fn post(&self, path: &str, body: &Value, token: Option<&str>) -> Reply {
        self.call(Method::POST, path, Some(body), token).await
    }

    pub async fn put(&self, path: &str, body: &Value, token: Option<&str>) -> Reply {
        self.call(Method::PUT, path, Some(body), token).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Reply {
        self.call(Method::DELETE, path, None, token).await
    }

    /// Registers a customer through the API; returns (token, user id).
    /// Like a real client, it waits out a 503 from a full password line (`Retry-After`).
    pub async fn register_customer(&self, email: &str) -> (String, i64) {
        let body = json!({"name": "Test Customer", "email": email, "password": "correct horse battery"});
        let mut reply = self.post("/api/v1/auth/register", &body, None).await;
        while reply.status == StatusCode::SERVICE_UNAVAILABLE {
            wait_out(&reply).await;
            reply = self.post("/api/v1/auth/register", &body, None).await;
        }
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        (
            reply.body["token"].as_str().unwrap().to_owned(),
            reply.body["user"]["id"].as_i64().unwrap(),
        )
    }

    /// Creates a user with `role` directly (as an operator would) and logs in; returns (token, id).
    pub async fn user_with_role(&self, role: Role) -> (String, i64) {
        let email = format!("{}-{}@example.in", role.as_str(), uuid::Uuid::new_v4().simple());
        // One hash for every such user of a test: they share the password, and hashing each in a race of
        // many users would only wait in the password line.
        static HASH: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
        let hash = HASH
            .get_or_init(async || {
                onemedi::auth::password::hash("correct horse battery".into())
                    .await
                    .unwrap()
            })
            .await
            .clone();
        let now = db::now();
        let mut conn = self.app.db.write().await.unwrap();
        let user = users::insert(
            &mut conn,
            &users::NewUser {
                email: Some(&email),
                phone: None,
                name: "Test User",
                password_hash: Some(&hash),
                role: role.as_str(),
                created_at: now,
                updated_at: now,
            },
        )
        .await
        .unwrap();
        drop(conn);
        let body = json!({"email": email, "password": "correct horse battery"});
        let mut reply = self.post("/api/v1/auth/login", &body, None).await;
        // A full password line answers 503 with Retry-After: waited out, as a client would.
        while reply.status == StatusCode::SERVICE_UNAVAILABLE {
            wait_out(&reply).await;
            reply = self.post("/api/v1/auth/login", &body, None).await;
        }
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        (reply.body["token"].as_str().unwrap().to_owned(), user.id)
    }

    /// Requests an OTP for `phone` (E.164) and returns the code from the SMS outbox.
    pub async fn request_otp(&self, phone: &str) -> String {
        let reply = self
            .post(
                "/api/v1/auth/otp/request",
                &serde_json::json!({ "phone": phone }),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
        otp_code(&self.last_sms_to(phone).expect("an SMS in the outbox"))
    }

    /// The newest SMS written to the outbox for `phone` (E.164).
    pub fn last_sms_to(&self, phone: &str) -> Option<String> {
        let dir = self.data_dir.path().join("outbox");
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().contains(phone.trim_start_matches('+')))
            .collect();
        files.sort();
        std::fs::read_to_string(files.last()?).ok()
    }
}

pub async fn into_reply(response: reqwest::Response) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply {
        status,
        headers,
        body,
    }
}

/// The 6-digit code inside an OTP message.
pub fn otp_code(message: &str) -> String {
    message
        .split_whitespace()
        .find(|w| w.len() == 6 && w.chars().all(|c| c.is_ascii_digit()))
        .unwrap()
        .to_owned()
}
