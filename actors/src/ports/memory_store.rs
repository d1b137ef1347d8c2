//! [`MemoryStore`]: an in-memory [`Store`] with the same contract as the SQL one, for tests and demos.

use std::{
    collections::{HashMap, HashSet},
    sync::{Mutex, MutexGuard},
};

use super::{AppendOutcome, BoxFuture, Store, StoreError, StoredEntity, TransitionRecord};
use crate::{
    ids::{CommandId, UnitId},
    machines::{EntityKey, EntityState},
};

/// Everything the store holds, behind one lock so each method is atomic like a SQL transaction.
#[derive(Debug, Default)]
struct Tables {
    entities: HashMap<EntityKey, StoredEntity>,
    /// The audit timeline, in append order.
    transitions: Vec<TransitionRecord>,
    /// `(entity, command id)` pairs already applied: the timeline's UNIQUE constraint.
    applied: HashSet<(EntityKey, CommandId)>,
    /// Units currently assigned, and to whom. A unit absent here is available.
    claims: HashMap<UnitId, EntityKey>,
    /// Units that cannot be claimed at all (off duty, unknown to the database).
    unavailable: HashSet<UnitId>,
}

/// An in-memory store. Cheap to share behind an `Arc`; every method takes one mutex.
#[derive(Debug, Default)]
pub struct MemoryStore {
    /// Guards all tables; held only for the duration of one synchronous method body.
    tables: Mutex<Tables>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn tables(&self) -> MutexGuard<'_, Tables> {
        // A poisoned lock only means a panicking test thread held it; the tables stay consistent
        // because every method mutates them after all checks.
        self.tables
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Creates (or overwrites) an entity at version 0, as the server's API does when a request is made.
    pub fn insert_entity(&self, key: EntityKey, state: EntityState) {
        self.tables().entities.insert(
            key,
            StoredEntity {
                key,
                state,
                version: 0,
            },
        );
    }

    /// Marks a unit as never claimable (off duty, unknown).
    pub fn mark_unavailable(&self, unit: UnitId) {
        self.tables().unavailable.insert(unit);
    }

    /// The claimant currently holding `unit`, if any.
    pub fn claim_of(&self, unit: UnitId) -> Option<EntityKey> {
        self.tables().claims.get(&unit).copied()
    }

    /// All current claims.
    pub fn claims(&self) -> HashMap<UnitId, EntityKey> {
        self.tables().claims.clone()
    }

    /// The recorded timeline of one entity, oldest first.
    pub fn timeline(&self, key: EntityKey) -> Vec<TransitionRecord> {
        self.tables()
            .transitions
            .iter()
            .filter(|t| t.key == key)
            .cloned()
            .collect()
    }

    /// The stored state of one entity, read synchronously.
    pub fn entity(&self, key: EntityKey) -> Option<StoredEntity> {
        self.tables().entities.get(&key).cloned()
    }
}

impl Store for MemoryStore {
    fn load_entity(&self, key: EntityKey) -> BoxFuture<'_, Result<Option<StoredEntity>, StoreError>> {
        let found = self.entity(key);
        Box::pin(async move { Ok(found) })
    }

    fn append_transition(
        &self,
        record: TransitionRecord,
    ) -> BoxFuture<'_, Result<AppendOutcome, StoreError>> {
        let outcome = {
            let mut t = self.tables();
            let unique = (record.key, record.command_id.clone());
            let current = t.entities.get(&record.key).map(|e| e.version);
            if t.applied.contains(&unique) {
                AppendOutcome::Duplicate
            } else if current != Some(record.expected_version) {
                AppendOutcome::Stale
            } else {
                let version = record.expected_version + 1;
                t.entities.insert(
                    record.key,
                    StoredEntity {
                        key: record.key,
                        state: record.to.clone(),
                        version,
                    },
                );
                t.applied.insert(unique);
                t.transitions.push(record);
                AppendOutcome::Applied { version }
            }
        };
        Box::pin(async move { Ok(outcome) })
    }

    fn claim_unit(&self, unit: UnitId, claimant: EntityKey) -> BoxFuture<'_, Result<bool, StoreError>> {
        let won = {
            let mut t = self.tables();
            if t.unavailable.contains(&unit) {
                false
            } else {
                match t.claims.get(&unit) {
                    Some(holder) => *holder == claimant,
                    None => {
                        t.claims.insert(unit, claimant);
                        true
                    }
                }
            }
        };
        Box::pin(async move { Ok(won) })
    }

    fn release_unit(&self, unit: UnitId, claimant: EntityKey) -> BoxFuture<'_, Result<bool, StoreError>> {
        let released = {
            let mut t = self.tables();
            if t.claims.get(&unit) == Some(&claimant) {
                t.claims.remove(&unit);
                true
            } else {
                false
            }
        };
        Box::pin(async move { Ok(released) })
    }
}
