//! Ports: the small object-safe traits through which the actors talk to the outside world.
//!
//! The server implements [`Store`] on its database and [`EventBus`] on its topic hub (and Redis);
//! the in-memory implementations here serve tests and single-process demos.

mod bus;
mod clock;
mod memory_bus;
mod memory_store;
mod store;

use std::{future::Future, pin::Pin};

pub use bus::{BusError, EventBus};
pub use clock::{Clock, SystemClock, TokioClock};
pub use memory_bus::MemoryBus;
pub use memory_store::MemoryStore;
pub use store::{AppendOutcome, Store, StoreError, StoredEntity, TransitionRecord};

/// A boxed, sendable future: what every async port method returns, so the traits stay object-safe
/// (`Arc<dyn Store>`, `Arc<dyn EventBus>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
