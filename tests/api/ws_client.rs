//! A websocket test client of `/ws` and a polling helper, shared by the real-time and dispatch tests.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{self, Message, client::IntoClientRequest, http::HeaderValue},
};

use crate::helpers::TestApp;

/// Longest wait for something that should happen promptly.
pub const PATIENCE: Duration = Duration::from_secs(10);

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// A test client of `/ws`.
pub struct Client {
    pub socket: Socket,
}

/// How a read ended when the test expected the session to end.
#[derive(Debug, PartialEq)]
pub enum Ended {
    /// A close frame with this code.
    Code(u16),
    /// The connection dropped without a close frame.
    Dropped,
}

impl Client {
    pub async fn open(app: &TestApp, token: &str) -> Self {
        Self::open_with(app, Some(token), None).await.unwrap()
    }

    /// Opens a session with an optional bearer token and Origin; the HTTP status on refusal.
    pub async fn open_with(
        app: &TestApp,
        token: Option<&str>,
        origin: Option<&str>,
    ) -> Result<Self, StatusCode> {
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

    pub async fn open_url(url: &str) -> Result<Self, StatusCode> {
        Self::connect(url.into_client_request().unwrap()).await
    }

    pub async fn connect(request: tungstenite::handshake::client::Request) -> Result<Self, StatusCode> {
        match tokio_tungstenite::connect_async(request).await {
            Ok((socket, _)) => Ok(Self { socket }),
            Err(tungstenite::Error::Http(response)) => {
                Err(StatusCode::from_u16(response.status().as_u16()).unwrap())
            }
            Err(other) => panic!("websocket connect failed: {other}"),
        }
    }

    pub async fn send(&mut self, frame: Value) {
        self.socket.send(Message::text(frame.to_string())).await.unwrap();
    }

    /// The next JSON frame (pings are answered by the client library).
    pub async fn next(&mut self) -> Value {
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
    pub async fn command(&mut self, mut frame: Value, reference: &str) -> Value {
        frame["ref"] = json!(reference);
        self.send(frame).await;
        loop {
            let reply = self.next().await;
            if reply["ref"] == reference {
                return reply;
            }
        }
    }

    pub async fn subscribe(&mut self, topic: &str) -> Value {
        self.command(json!({"type": "subscribe", "topic": topic}), topic)
            .await
    }

    /// Reads (and discards) frames until the session ends.
    pub async fn ended(&mut self) -> Ended {
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
    pub async fn quiet_for(&mut self, wait: Duration) -> bool {
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
pub async fn eventually(mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "condition never held");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
