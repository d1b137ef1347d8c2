//! The JSON frames of the websocket protocol, `{"type": …, …}` in both directions (see
//! `docs/websocket.md`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ErrorCode;

/// A client frame: a command plus an optional client-chosen `ref` echoed in its `ack` or `error`.
#[derive(Debug, Deserialize)]
pub struct Incoming {
    #[serde(default, rename = "ref")]
    pub reference: Option<Value>,
    #[serde(flatten)]
    pub command: Command,
}

/// What a client may ask.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    /// Authenticates a session opened without a token (only as the first frame).
    Auth { token: String },
    /// Starts receiving a topic's events.
    Subscribe { topic: String },
    /// Stops receiving a topic's events.
    Unsubscribe { topic: String },
    /// A unit's position (units' crews only).
    Location(LocationReport),
    /// A unit's availability: `available`, `busy` or `off_duty` (units' crews only).
    Status { status: String },
    /// The crew takes an offered job. `kind` is the offer's `request.kind` (default
    /// `ambulance_request`; `lab_collection` for a phlebotomist's collection).
    Accept {
        request_id: i64,
        #[serde(default)]
        kind: Option<String>,
        #[serde(default)]
        reason: Option<String>,
    },
    /// The crew turns down an offered job.
    Decline {
        request_id: i64,
        #[serde(default)]
        kind: Option<String>,
        #[serde(default)]
        reason: Option<String>,
    },
    /// Application-level keepalive; answered with `ack`.
    Ping,
}

/// One location ping.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct LocationReport {
    pub lat: f64,
    pub lng: f64,
    /// Degrees clockwise from north.
    #[serde(default)]
    pub heading: Option<f64>,
    /// Metres per second.
    #[serde(default)]
    pub speed: Option<f64>,
    /// Horizontal accuracy, metres.
    #[serde(default)]
    pub accuracy: Option<f64>,
    /// Device time of the fix, Unix milliseconds.
    #[serde(default)]
    pub ts: Option<i64>,
}

/// Frames the server answers a command with. Events and offers are pre-serialised by the bus.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply<'a> {
    /// The command with this `ref` was applied.
    Ack {
        #[serde(rename = "ref")]
        reference: Option<&'a Value>,
    },
    /// The command with this `ref` (if any) was refused.
    Error {
        code: ErrorCode,
        message: &'a str,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<&'a Value>,
    },
}

impl Reply<'_> {
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| r#"{"type":"error","code":"internal"}"#.to_owned())
    }
}

/// A refused command: the code and message of its `error` frame.
#[derive(Debug)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
}

impl Refusal {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ValidationFailed, message)
    }
}

impl From<crate::db::DbError> for Refusal {
    fn from(error: crate::db::DbError) -> Self {
        tracing::warn!(error = %error, "session command failed on the database");
        Self::new(
            ErrorCode::ServiceUnavailable,
            "a backing service is unavailable; retry",
        )
    }
}

impl From<diesel::result::Error> for Refusal {
    fn from(error: diesel::result::Error) -> Self {
        Self::from(crate::db::DbError::from(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_with_their_ref_and_unknown_fields_are_refused() {
        let frame: Incoming =
            serde_json::from_str(r#"{"type":"subscribe","topic":"user:1","ref":7}"#).unwrap();
        assert!(matches!(frame.command, Command::Subscribe { ref topic } if topic == "user:1"));
        assert_eq!(frame.reference, Some(Value::from(7)));
        let ping: Incoming = serde_json::from_str(r#"{"type":"ping"}"#).unwrap();
        assert!(matches!(ping.command, Command::Ping));
        assert!(serde_json::from_str::<Incoming>(r#"{"type":"launch"}"#).is_err());
        let ack = Reply::Ack {
            reference: Some(&Value::from("a")),
        };
        assert_eq!(ack.to_text(), r#"{"type":"ack","ref":"a"}"#);
    }
}
