//! Ports: the small object-safe traits through which the actors talk to the outside world.
//!
//! The server implements [`Store`] on its database and [`EventBus`] on its topic hub (and Redis);
//! the in-memory implementations here serve tests and single-process demos.

mod bus;
mod clock;
mod memory_bus;
mod memory_store;
mod store;

use std::{future::Future, pin::Pin, sync::Arc};

pub use bus::{BusError, EventBus};
pub use clock::{Clock, SystemClock, TokioClock};
pub use memory_bus::MemoryBus;
pub use memory_store::MemoryStore;
pub use store::{AppendOutcome, Store, StoreError, StoredEntity, TransitionRecord};

/// A boxed, sendable future: what every async port method returns, so the traits stay object-safe
/// (`Arc<dyn Store>`, `Arc<dyn EventBus>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The three ports together, as every actor needs them. Cheap to clone.
#[derive(Clone)]
pub struct Ports {
    /// The system of record.
    pub store: Arc<dyn Store>,
    /// Where committed changes are announced.
    pub bus: Arc<dyn EventBus>,
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Ports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ports { .. }")
    }
}
