//! Read-only sessions opened with a tracking share link: the link's token in the `auth` frame lets the
//! session follow exactly that order's `order:{id}` topic until the link expires, and only the events a
//! share link may show (status, rider, rider position) reach it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use crate::state::AppState;

/// What a share link grants a session.
#[derive(Debug, Clone, Copy)]
pub struct ShareGrant {
    /// The one order the session may follow.
    pub order_id: i64,
    /// When the link (and so the session) ends, Unix seconds.
    pub expires_at: u64,
}

impl ShareGrant {
    /// The grant of a valid, unexpired share token; `None` for anything else (a session token, a
    /// tampered or expired link).
    pub fn verify(state: &AppState, token: &str) -> Option<Self> {
        let claims = state.jwt.verify_share(token).ok()?;
        Some(Self {
            order_id: claims.order_id()?,
            expires_at: claims.exp,
        })
    }

    /// The topic the grant covers.
    pub fn topic(self) -> String {
        format!("order:{}", self.order_id)
    }

    /// How long the link still works from now: verification accepts it through the whole second
    /// `expires_at`, so the session lasts until that second is over.
    pub fn remaining(self) -> Duration {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Duration::from_secs(self.expires_at.saturating_add(1)).saturating_sub(now)
    }
}

/// Event types a share session receives. Everything else published on `order:{id}` (`order_placed`
/// with the customer's id and total, the dispatcher's offers) is held back, and so is any event type
/// added later until it is reviewed and listed here: the delivery code and the address never travel on
/// the bus, and this list keeps it that way for share links.
pub const SHARED_EVENTS: [&str; 4] = [
    "order_status_changed",
    "rider_assigned",
    "rider_location",
    "state_changed",
];

#[derive(Deserialize)]
struct Peek {
    #[serde(rename = "type")]
    kind: String,
    event: Option<PeekEvent>,
}

#[derive(Deserialize)]
struct PeekEvent {
    #[serde(rename = "type")]
    kind: String,
}

/// Whether a frame from the hub may be shown through a share link.
pub fn may_show(frame: &str) -> bool {
    match serde_json::from_str::<Peek>(frame) {
        Ok(Peek {
            kind,
            event: Some(event),
        }) => kind == "event" && SHARED_EVENTS.contains(&event.kind.as_str()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_events_pass_to_share_sessions() {
        let shown = r#"{"type":"event","topic":"order:1","event":{"type":"rider_location","v":1,"lat":1.0}}"#;
        assert!(may_show(shown));
        let placed =
            r#"{"type":"event","topic":"order:1","event":{"type":"order_placed","v":1,"user_id":7}}"#;
        assert!(!may_show(placed));
        let offer = r#"{"type":"offer","topic":"order:1","event":{"type":"state_changed"}}"#;
        assert!(!may_show(offer));
        assert!(!may_show("not json"));
    }
}
