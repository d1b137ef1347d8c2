//! [`MemoryBus`]: an in-process [`EventBus`] that keeps a log and fans events out to subscribers.

use std::sync::{Mutex, MutexGuard};

use tokio::sync::broadcast;

use super::{BoxFuture, BusError, EventBus};
use crate::events::{DomainEvent, Topic};

/// How many events a slow in-process subscriber may fall behind before it starts missing some.
pub const MEMORY_BUS_CAPACITY: usize = 4096;

/// An in-process bus: every published event is appended to a log (for assertions) and broadcast.
#[derive(Debug)]
pub struct MemoryBus {
    /// Every event ever published, in order.
    log: Mutex<Vec<(Topic, DomainEvent)>>,
    /// Fan-out to [`MemoryBus::subscribe`] receivers; `publish` is the only sender. A lagging
    /// receiver gets `RecvError::Lagged` rather than growing memory.
    fanout: broadcast::Sender<(Topic, DomainEvent)>,
}

impl Default for MemoryBus {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryBus {
    /// An empty bus.
    pub fn new() -> Self {
        let (fanout, _) = broadcast::channel(MEMORY_BUS_CAPACITY);
        Self {
            log: Mutex::new(Vec::new()),
            fanout,
        }
    }

    fn log(&self) -> MutexGuard<'_, Vec<(Topic, DomainEvent)>> {
        self.log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A receiver of every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<(Topic, DomainEvent)> {
        self.fanout.subscribe()
    }

    /// Every event published so far, oldest first.
    pub fn published(&self) -> Vec<(Topic, DomainEvent)> {
        self.log().clone()
    }
}

impl EventBus for MemoryBus {
    fn publish(&self, topic: Topic, event: DomainEvent) -> BoxFuture<'_, Result<(), BusError>> {
        self.log().push((topic.clone(), event.clone()));
        // No subscriber is not an error: the log above still has the event.
        let _ = self.fanout.send((topic, event));
        Box::pin(async { Ok(()) })
    }
}
