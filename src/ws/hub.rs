//! The topic hub of one node: which sessions listen to which topic, and a bounded, non-blocking
//! fan-out to them. A session whose queue is full is told to disconnect; the publisher never waits.
//!
//! A frame is encoded for the wire once per fan-out ([`Wire`]) and the same bytes are queued for every
//! session: server frames are unmasked, so they are identical on every connection.

use std::{
    collections::HashMap,
    sync::{
        Arc, RwLock, RwLockReadGuard, RwLockWriteGuard,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    task::Waker,
};

use actix_http::ws::{OpCode, Parser};
use bytes::{Bytes, BytesMut};
use futures_util::task::AtomicWaker;
use tokio::sync::{Notify, mpsc};

/// A text frame encoded for the wire (websocket header and payload). Cloning shares the bytes, so one
/// event fans out to every session without copies or per-session encoding.
#[derive(Clone, Debug)]
pub struct Wire {
    bytes: Bytes,
    /// Where the payload starts, after the 2-, 4- or 10-byte header.
    payload_at: usize,
}

impl Wire {
    /// Encodes `text` as one final, unmasked text frame (RFC 6455 §5.2), as a server sends it.
    pub fn text(text: &str) -> Self {
        let mut buf = BytesMut::with_capacity(text.len() + 10);
        Parser::write_message(&mut buf, text, OpCode::Text, true, false);
        Self {
            payload_at: buf.len() - text.len(),
            bytes: buf.freeze(),
        }
    }

    /// The frame's JSON.
    pub fn payload(&self) -> &str {
        // Always valid: the bytes after the header were copied from a `&str` in `text`.
        std::str::from_utf8(&self.bytes[self.payload_at..]).unwrap_or_default()
    }

    /// The encoded frame, header included.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }
}

/// Identifies one session on this node.
pub type SessionId = u64;

/// The hub's side of one session.
pub struct SessionLink {
    id: SessionId,
    /// Frames for the client. Senders: the hub's fan-out (`try_send`, never waiting) and nothing else;
    /// the receiver is the connection's response body (`outbound::Outbound`), which the connection
    /// drops when it ends.
    outbound: mpsc::Sender<Wire>,
    /// Notified (once) by the hub when `outbound` was found full; the session task then closes with
    /// 1013. `overflowed` makes later fan-outs skip the session until it has unregistered.
    overflow: Notify,
    overflowed: AtomicBool,
    /// Set for a share link's session: only events a share link may show are written to it.
    read_only: AtomicBool,
    /// Set by the session task before it sends its close frame: queued events are no longer written.
    closing: AtomicBool,
    /// Set while the session task handles a client command: queued events wait, so the command's
    /// reply is written before the events it causes (a location's echo, a subscription's events).
    holding: AtomicBool,
    /// The connection's writer, parked while `holding`.
    released: AtomicWaker,
}

impl SessionLink {
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// Resolves once the hub has found this session's queue full.
    pub async fn overflowed(&self) {
        self.overflow.notified().await;
    }

    /// Restricts the session to what a share link may show.
    pub fn set_read_only(&self) {
        self.read_only.store(true, Ordering::Relaxed);
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only.load(Ordering::Relaxed)
    }

    /// Stops the writing of queued events: the close frame is the session's last.
    pub fn set_closing(&self) {
        self.closing.store(true, Ordering::Release);
    }

    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Holds queued events back until [`release`](Self::release).
    pub fn hold(&self) {
        self.holding.store(true, Ordering::Release);
    }

    /// Lets queued events go again and wakes the writer if it waited for this.
    pub fn release(&self) {
        self.holding.store(false, Ordering::Release);
        self.released.wake();
    }

    /// Whether events are held back; if so, `waker` is woken on release.
    pub fn held(&self, waker: &Waker) -> bool {
        if !self.holding.load(Ordering::Acquire) {
            return false;
        }
        self.released.register(waker);
        // A release between the check and the registration would otherwise go unnoticed.
        self.holding.load(Ordering::Acquire)
    }
}

/// Topic → sessions of this node.
#[derive(Default)]
pub struct Hub {
    /// Read by every fan-out, written on subscribe/unsubscribe; held only for map operations.
    topics: RwLock<HashMap<String, HashMap<SessionId, Arc<SessionLink>>>>,
    next_id: AtomicU64,
    /// Frames handed to session queues (for metrics and benchmarks).
    delivered: AtomicU64,
    /// Sessions disconnected because they could not keep up.
    overflows: AtomicU64,
}

impl Hub {
    fn read(&self) -> RwLockReadGuard<'_, HashMap<String, HashMap<SessionId, Arc<SessionLink>>>> {
        self.topics
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<String, HashMap<SessionId, Arc<SessionLink>>>> {
        self.topics
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A new session with an outbound queue of `capacity` frames.
    pub fn open(&self, capacity: usize) -> (Arc<SessionLink>, mpsc::Receiver<Wire>) {
        let (outbound, receiver) = mpsc::channel(capacity.max(1));
        let link = SessionLink {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            outbound,
            overflow: Notify::new(),
            overflowed: AtomicBool::new(false),
            read_only: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            holding: AtomicBool::new(false),
            released: AtomicWaker::new(),
        };
        (Arc::new(link), receiver)
    }

    pub fn subscribe(&self, topic: &str, link: &Arc<SessionLink>) {
        self.write()
            .entry(topic.to_owned())
            .or_default()
            .insert(link.id, link.clone());
    }

    pub fn unsubscribe(&self, topic: &str, session: SessionId) {
        let mut topics = self.write();
        if let Some(sessions) = topics.get_mut(topic) {
            sessions.remove(&session);
            if sessions.is_empty() {
                topics.remove(topic);
            }
        }
    }

    /// Hands `frame` to every session subscribed to `topic`; returns how many took it. Sessions whose
    /// queue is full are told to disconnect.
    pub fn deliver(&self, topic: &str, frame: &str) -> usize {
        let topics = self.read();
        let Some(sessions) = topics.get(topic) else {
            return 0;
        };
        let frame = Wire::text(frame);
        let mut delivered = 0;
        for link in sessions.values() {
            if link.overflowed.load(Ordering::Relaxed) {
                continue;
            }
            match link.outbound.try_send(frame.clone()) {
                Ok(()) => delivered += 1,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    if !link.overflowed.swap(true, Ordering::Relaxed) {
                        self.overflows.fetch_add(1, Ordering::Relaxed);
                        link.overflow.notify_one();
                    }
                }
                // The session ended and will unregister itself.
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        self.delivered.fetch_add(delivered as u64, Ordering::Relaxed);
        delivered
    }

    /// Sessions of this node subscribed to `topic`.
    pub fn subscribers(&self, topic: &str) -> usize {
        self.read().get(topic).map_or(0, HashMap::len)
    }

    /// Frames handed to session queues since start.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Sessions disconnected for falling behind since start.
    pub fn overflows(&self) -> u64 {
        self.overflows.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_marks_the_session_once_and_later_frames_skip_it() {
        let hub = Hub::default();
        let (link, mut receiver) = hub.open(2);
        hub.subscribe("user:1", &link);
        let frame = "x";
        assert_eq!(hub.deliver("user:1", frame), 1);
        assert_eq!(hub.deliver("user:1", frame), 1);
        assert_eq!(hub.deliver("user:1", frame), 0);
        assert_eq!(hub.deliver("user:1", frame), 0);
        assert_eq!(hub.overflows(), 1);
        assert_eq!(receiver.try_recv().unwrap().payload(), "x");
        hub.unsubscribe("user:1", link.id());
        assert_eq!(hub.subscribers("user:1"), 0);
    }

    #[test]
    fn frames_of_every_length_class_carry_the_right_header() {
        for len in [0, 125, 126, 65_535, 65_536] {
            let text = "a".repeat(len);
            let wire = Wire::text(&text);
            let bytes = wire.bytes();
            assert_eq!(bytes[0], 0x81, "FIN + text opcode");
            let (length, header) = match bytes[1] {
                126 => (usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
                127 => (
                    usize::try_from(u64::from_be_bytes(bytes[2..10].try_into().unwrap())).unwrap(),
                    10,
                ),
                short => (usize::from(short), 2),
            };
            assert_eq!(length, len, "no mask bit, exact length");
            assert_eq!(bytes.len(), header + len);
            assert_eq!(wire.payload(), text);
        }
    }
}
