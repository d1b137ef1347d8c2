//! The topic hub of one node: which sessions listen to which topic, and a bounded, non-blocking
//! fan-out to them. A session whose queue is full is told to disconnect; the publisher never waits.

use std::{
    collections::HashMap,
    sync::{
        Arc, RwLock, RwLockReadGuard, RwLockWriteGuard,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use bytestring::ByteString;
use tokio::sync::{Notify, mpsc};

/// A text frame ready for the wire. Cloning shares the bytes, so one event fans out without copies.
pub type Frame = ByteString;

/// Identifies one session on this node.
pub type SessionId = u64;

/// The hub's side of one session.
pub struct SessionLink {
    id: SessionId,
    /// Frames for the client. Senders: the hub's fan-out (`try_send`, never waiting) and nothing else;
    /// the receiver belongs to the session task, which closes the channel by dropping it when it ends.
    outbound: mpsc::Sender<Frame>,
    /// Notified (once) by the hub when `outbound` was found full; the session task then closes with
    /// 1013. `overflowed` makes later fan-outs skip the session until it has unregistered.
    overflow: Notify,
    overflowed: AtomicBool,
}

impl SessionLink {
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// Resolves once the hub has found this session's queue full.
    pub async fn overflowed(&self) {
        self.overflow.notified().await;
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
    pub fn open(&self, capacity: usize) -> (Arc<SessionLink>, mpsc::Receiver<Frame>) {
        let (outbound, receiver) = mpsc::channel(capacity.max(1));
        let link = SessionLink {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            outbound,
            overflow: Notify::new(),
            overflowed: AtomicBool::new(false),
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
    pub fn deliver(&self, topic: &str, frame: &Frame) -> usize {
        let topics = self.read();
        let Some(sessions) = topics.get(topic) else {
            return 0;
        };
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
        let frame = Frame::from("x");
        assert_eq!(hub.deliver("user:1", &frame), 1);
        assert_eq!(hub.deliver("user:1", &frame), 1);
        assert_eq!(hub.deliver("user:1", &frame), 0);
        assert_eq!(hub.deliver("user:1", &frame), 0);
        assert_eq!(hub.overflows(), 1);
        assert!(receiver.try_recv().is_ok());
        hub.unsubscribe("user:1", link.id());
        assert_eq!(hub.subscribers("user:1"), 0);
    }
}
