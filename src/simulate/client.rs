//! The simulator's view of the server: a REST client that signs in like an app (waiting out the login
//! rate limit) and a websocket session speaking the documented protocol.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use futures_util::{
    SinkExt, StreamExt,
    stream::{SplitSink, SplitStream},
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{Message, client::IntoClientRequest, http::HeaderValue, protocol::WebSocketConfig},
};

/// Longest wait for one REST call.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Longest the simulator waits for a login the rate limiter refused, in total.
const LOGIN_PATIENCE: Duration = Duration::from_secs(300);

/// An answer from the API: status and JSON body (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl Reply {
    /// The stable error code of a refusal, if any.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// The body of a 2xx answer, or an error naming the status and code.
    pub fn ok(self) -> anyhow::Result<Value> {
        if self.status.is_success() {
            Ok(self.body)
        } else {
            Err(anyhow!(
                "{} {}: {}",
                self.status.as_u16(),
                self.code(),
                self.body["error"]["message"]
            ))
        }
    }
}

/// A signed-in account.
#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
    pub email: String,
}

impl Api {
    /// Signs in with e-mail and password; a 429 from the login limiter or a 503 from a full password
    /// line is waited out (`Retry-After`).
    pub async fn login(base: &str, email: &str, password: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .context("building the HTTP client")?;
        let started = tokio::time::Instant::now();
        loop {
            let response = http
                .post(format!("{base}/api/v1/auth/login"))
                .json(&json!({"email": email, "password": password}))
                .send()
                .await
                .with_context(|| format!("signing in {email}"))?;
            if matches!(
                response.status(),
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
            ) {
                let wait = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(10)
                    .clamp(1, 60);
                if started.elapsed() > LOGIN_PATIENCE {
                    bail!("signing in {email}: still turned away after {LOGIN_PATIENCE:?}");
                }
                tracing::debug!(email, wait, "login rate limited; waiting");
                tokio::time::sleep(Duration::from_secs(wait)).await;
                continue;
            }
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let reply = Reply { status, body };
            let body = reply.ok().with_context(|| format!("signing in {email}"))?;
            let token = body["token"]
                .as_str()
                .ok_or_else(|| anyhow!("login answer without a token"))?
                .to_owned();
            return Ok(Self {
                http,
                base: base.to_owned(),
                token,
                email: email.to_owned(),
            });
        }
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> anyhow::Result<Reply> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.with_context(|| format!("calling {path}"))?;
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        Ok(Reply { status, body })
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call(Method::GET, path, None).await?.ok()
    }

    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Reply> {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> anyhow::Result<Reply> {
        self.call(Method::PUT, path, Some(body)).await
    }

    /// A POST carrying an `Idempotency-Key`, as the apps send for orders and bookings.
    pub async fn post_once(&self, path: &str, body: &Value) -> anyhow::Result<Reply> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("idempotency-key", uuid::Uuid::new_v4().to_string())
            .json(body)
            .send()
            .await
            .with_context(|| format!("calling {path}"))?;
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        Ok(Reply { status, body })
    }

    /// Opens a websocket session authenticated with this account's token.
    pub async fn socket(&self) -> anyhow::Result<(Outbox, Inbox)> {
        let url = format!("{}/ws", self.base.replacen("http", "ws", 1));
        let mut request = url.as_str().into_client_request().context("websocket url")?;
        request.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {}", self.token)).context("token header")?,
        );
        // A small read buffer: the default 128 KiB is zeroed before every read.
        let config = WebSocketConfig::default().read_buffer_size(4 * 1024);
        let (socket, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true)
            .await
            .with_context(|| format!("opening the websocket of {}", self.email))?;
        let (sink, stream) = socket.split();
        Ok((Outbox { sink }, Inbox { stream }))
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The sending half of a session.
pub struct Outbox {
    sink: SplitSink<Socket, Message>,
}

impl Outbox {
    pub async fn send(&mut self, frame: Value) -> anyhow::Result<()> {
        self.sink
            .send(Message::text(frame.to_string()))
            .await
            .context("websocket send")
    }
}

/// The receiving half of a session.
pub struct Inbox {
    stream: SplitStream<Socket>,
}

impl Inbox {
    /// The next JSON frame; `None` once the session has ended. Pings are answered by the library.
    pub async fn next(&mut self) -> Option<Value> {
        loop {
            match self.stream.next().await? {
                Ok(Message::Text(text)) => match serde_json::from_str(&text) {
                    Ok(value) => return Some(value),
                    Err(error) => tracing::debug!(%error, "simulator: a frame that is not JSON"),
                },
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }
}
