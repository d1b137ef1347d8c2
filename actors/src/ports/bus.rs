//! The [`EventBus`] port: publishes versioned domain events on topics after their write committed.

use std::sync::Arc;

use super::BoxFuture;
use crate::events::{DomainEvent, Topic};

/// A failure to hand an event to the bus. Events are announcements: a failed publish never undoes the
/// committed change it describes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    /// The transport (e.g. Redis) refused or could not be reached.
    #[error("event bus unavailable: {0}")]
    Unavailable(String),
}

/// Topic-based publish.
///
/// Contract: called only after the change the event describes has been committed to the [`Store`]
/// (invariant "events after commit"); delivery is at most once per subscriber and in publish order per
/// topic from one publisher. The wire form is [`DomainEvent::to_json`]:
/// `{"type": "offer_made", "v": 1, ...}`.
///
/// [`Store`]: super::Store
pub trait EventBus: Send + Sync {
    /// Publishes `event` on `topic`.
    fn publish(&self, topic: Topic, event: DomainEvent) -> BoxFuture<'_, Result<(), BusError>>;
}

impl<T: EventBus + ?Sized> EventBus for Arc<T> {
    fn publish(&self, topic: Topic, event: DomainEvent) -> BoxFuture<'_, Result<(), BusError>> {
        (**self).publish(topic, event)
    }
}
