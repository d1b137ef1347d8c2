//! Test fixtures shared by the integration tests: ports wired to in-memory fakes.

#![allow(dead_code, reason = "each test binary uses a different part of the fixtures")]

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicUsize, Ordering},
};

use chrono::{DateTime, Utc};
use onemedi_actors::{
    ids::{CommandId, UnitId},
    machines::EntityKey,
    ports::{
        AppendOutcome, BoxFuture, Clock, MemoryBus, MemoryStore, Ports, Store, StoreError, StoredEntity,
        TokioClock, TransitionRecord,
    },
};

pub fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

pub fn cmd(id: &str) -> CommandId {
    CommandId::parse(id).unwrap()
}

/// A store that counts loads and can be told to panic inside the next append (a driver bug).
#[derive(Default)]
pub struct FlakyStore {
    pub inner: MemoryStore,
    pub loads: AtomicUsize,
    pub panic_next_append: AtomicBool,
}

impl Store for FlakyStore {
    fn load_entity(&self, key: EntityKey) -> BoxFuture<'_, Result<Option<StoredEntity>, StoreError>> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        self.inner.load_entity(key)
    }

    fn append_transition(
        &self,
        record: TransitionRecord,
    ) -> BoxFuture<'_, Result<AppendOutcome, StoreError>> {
        if self.panic_next_append.swap(false, Ordering::SeqCst) {
            panic!("simulated driver bug while appending");
        }
        self.inner.append_transition(record)
    }

    fn claim_unit(&self, unit: UnitId, claimant: EntityKey) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.inner.claim_unit(unit, claimant)
    }

    fn release_unit(&self, unit: UnitId, claimant: EntityKey) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.inner.release_unit(unit, claimant)
    }
}

pub struct World {
    pub store: Arc<FlakyStore>,
    pub bus: Arc<MemoryBus>,
    pub clock: Arc<TokioClock>,
}

impl World {
    /// Fakes whose clock follows tokio time (create inside the runtime, after `pause()`).
    pub fn new() -> Self {
        Self {
            store: Arc::new(FlakyStore::default()),
            bus: Arc::new(MemoryBus::new()),
            clock: Arc::new(TokioClock::new(t0())),
        }
    }

    pub fn ports(&self) -> Ports {
        Ports {
            store: self.store.clone(),
            bus: self.bus.clone(),
            clock: self.clock.clone(),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
}
