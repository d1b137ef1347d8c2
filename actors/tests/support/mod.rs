//! Test fixtures shared by the integration tests: ports wired to in-memory fakes.

#![allow(dead_code, reason = "each test binary uses a different part of the fixtures")]
#![expect(clippy::unwrap_used, reason = "fixtures fail the test loudly when misbuilt")]

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

pub mod dispatch {
    //! A node of the dispatch system: fleet, entity registry and dispatcher over shared ports.

    use std::time::Duration;

    use actix::{Actor, Addr};
    use h3o::Resolution;
    use onemedi_actors::{
        dispatch::{DispatchSettings, Dispatcher},
        entity::{EntityRegistry, EntitySettings},
        events::DomainEvent,
        fleet::{Capabilities, FleetActor, FleetIndex, Unit, UnitKind, UnitStatus},
        ids::UnitId,
        machines::EntityKey,
        ports::Ports,
        position::Position,
    };

    pub const CITY: (f64, f64) = (12.9716, 77.5946);

    /// A point `north_m` metres north of the city centre.
    pub fn north_of_centre(north_m: f64) -> Position {
        Position::new(CITY.0 + north_m / 111_195.0, CITY.1).unwrap()
    }

    pub fn ambulance(id: i64, at: Position, seen: chrono::DateTime<chrono::Utc>) -> Unit {
        Unit {
            id: UnitId(id),
            kind: UnitKind::AmbulanceAls,
            position: at,
            heading_deg: 0.0,
            speed_mps: 0.0,
            status: UnitStatus::Available,
            capabilities: Capabilities::DEFIBRILLATOR,
            last_seen: seen,
        }
    }

    pub struct Node {
        pub fleet: Addr<FleetActor>,
        pub registry: Addr<EntityRegistry>,
        pub dispatcher: Addr<Dispatcher>,
    }

    impl Node {
        pub fn start(ports: &Ports, units: &[Unit]) -> Self {
            Self::start_with(ports, units, DispatchSettings::default())
        }

        /// Starts a node whose dispatcher has `settings` (finished cascades kept for the test's length).
        pub fn start_with(ports: &Ports, units: &[Unit], settings: DispatchSettings) -> Self {
            let mut index = FleetIndex::new(Resolution::Nine, Duration::from_secs(24 * 3600));
            for unit in units {
                index.upsert(*unit).unwrap();
            }
            let fleet = FleetActor::new(index, ports.clock.clone()).start();
            let registry = EntityRegistry::new(ports.clone(), EntitySettings::default()).start();
            let settings = DispatchSettings {
                done_retention: Duration::from_secs(7 * 24 * 3600),
                ..settings
            };
            let dispatcher = Dispatcher::new(
                ports.clone(),
                fleet.clone(),
                Some(registry.clone().recipient()),
                settings,
            )
            .start();
            Self {
                fleet,
                registry,
                dispatcher,
            }
        }
    }

    /// Lets every actor run until nothing is ready (a few scheduler turns).
    pub async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    /// The (job, unit) pairs of every offer published so far.
    pub fn offers(events: &[(onemedi_actors::events::Topic, DomainEvent)]) -> Vec<(EntityKey, UnitId)> {
        events
            .iter()
            .filter_map(|(_, e)| match e {
                DomainEvent::OfferMade { request, unit, .. } => Some((*request, *unit)),
                _ => None,
            })
            .collect()
    }
}
