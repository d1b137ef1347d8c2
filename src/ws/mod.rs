//! Websocket sessions at `GET /ws`: the handshake (origin and token checks), the per-connection session
//! task, the topic hub that fans events out to sessions, topic authorisation and unit telemetry.
//!
//! The wire protocol is documented in `docs/websocket.md`.

pub mod handshake;
pub mod hub;
mod outbound;
pub mod positions;
pub mod protocol;
mod session;
pub mod share;
pub mod topics;
mod units;

use std::time::Duration;

pub use handshake::connect;
pub use hub::Hub;

/// How often the server pings each session; a client answers with a pong (browsers do it by themselves).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);

/// A session from which nothing (frame, ping or pong) arrived for this long is dropped: three missed
/// heartbeats, so one slow round trip on a mobile network is not fatal.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);

/// How long a session opened without a token may take to send its `auth` message.
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(5);

/// Frames one session may have queued for its client. A unit's own offers and a tracking page's
/// events are a few a second, so 256 is a minute of backlog; a client further behind cannot keep up
/// and is disconnected (close 1013) rather than allowed to grow the server's memory.
pub const OUTBOUND_QUEUE: usize = 256;

/// Largest client frame accepted, in bytes; commands are small JSON objects (a location is ~150 bytes).
pub const MAX_FRAME_BYTES: usize = 16 * 1024;

/// How often buffered unit positions are written to the `units` table: each unit's latest position is
/// written once per interval however many pings arrived, so the database sees one write per unit per
/// interval instead of one per ping.
pub const POSITION_FLUSH_INTERVAL: Duration = Duration::from_secs(2);

/// How long the server waits to hand a close frame to a client that is not reading before it simply
/// drops the connection.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Most topics one session may subscribe to.
pub const MAX_SUBSCRIPTIONS: usize = 64;
