//! The [`Store`] port: the system of record behind the live entities and the unit claims.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::BoxFuture;
use crate::{
    ids::{CommandId, UnitId},
    machines::{Agent, EntityKey, EntityState},
};

/// One entity as the store holds it: its current state and the version of that state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEntity {
    /// Which entity.
    pub key: EntityKey,
    /// The state after the last applied transition.
    pub state: EntityState,
    /// Incremented by one on every applied transition; the row's optimistic lock.
    pub version: u64,
}

/// One applied command: the audit timeline row (NEMSIS-style times) and the new state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransitionRecord {
    /// Which entity changed.
    pub key: EntityKey,
    /// The idempotency key of the command that caused the change.
    pub command_id: CommandId,
    /// The version the writer read; the write succeeds only if the row still has it.
    pub expected_version: u64,
    /// State before (`from.name()` is what the timeline shows).
    pub from: EntityState,
    /// State after.
    pub to: EntityState,
    /// The transition's name, e.g. `assign`, `depart`, `hold_expired`.
    pub event: String,
    /// When it happened (from the [`Clock`](super::Clock)).
    pub at: DateTime<Utc>,
    /// Who caused it.
    pub agent: Agent,
    /// Why, as the command said (the timeline's reason).
    #[serde(default)]
    pub note: Option<String>,
}

/// What [`Store::append_transition`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppendOutcome {
    /// Written: the entity now has `to` and this version (`expected_version + 1`).
    Applied {
        /// The new version.
        version: u64,
    },
    /// A transition with this command id was already recorded for this entity; nothing was written.
    Duplicate,
    /// The entity's version is no longer `expected_version` (another writer, maybe on another node,
    /// won); nothing was written. The caller reloads and decides again.
    Stale,
    /// The transition offers a unit that holds another job's open offer (made by any node): a unit
    /// has one open offer at a time. Nothing was written.
    UnitBusy {
        /// The unit offered elsewhere.
        unit: UnitId,
    },
}

/// Infrastructure failures of a store. Races are not errors: they are [`AppendOutcome`] values and
/// `Ok(false)` from the claim methods.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The backend could not be reached or the query failed; the operation may be retried.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The stored row could not be decoded into an entity state.
    #[error("stored entity {key} is unreadable: {reason}")]
    Corrupt {
        /// The entity concerned.
        key: EntityKey,
        /// What was wrong with it.
        reason: String,
    },
}

/// The system of record for live entities and for unit claims.
///
/// Every method is a single atomic operation on the backend. Implementations must be cheap to
/// share (`Arc<dyn Store>`) and safe to call from many actors and nodes at once.
pub trait Store: Send + Sync {
    /// Loads the current state of `key`.
    ///
    /// Contract: `Ok(None)` when the entity does not exist (entities are created by the server's API,
    /// not by the actors); `Ok(Some(_))` reflects every transition whose append returned `Applied`.
    fn load_entity(&self, key: EntityKey) -> BoxFuture<'_, Result<Option<StoredEntity>, StoreError>>;

    /// Records one transition and moves the entity to `record.to`, in one transaction.
    ///
    /// Contract, checked in this order:
    /// 1. a transition with the same `(key, command_id)` exists → `Ok(Duplicate)`, nothing written
    ///    (on SQL: a UNIQUE constraint on the timeline table);
    /// 2. the entity's version differs from `expected_version` → `Ok(Stale)`, nothing written
    ///    (`UPDATE … SET state=$to, version=version+1 WHERE id=$id AND version=$expected`, row count 0);
    /// 3. otherwise the timeline row is inserted, the entity updated, and `Ok(Applied { version })`
    ///    returned with the new version `expected_version + 1`.
    fn append_transition(&self, record: TransitionRecord)
    -> BoxFuture<'_, Result<AppendOutcome, StoreError>>;

    /// Claims `unit` for `claimant` (an ambulance request, an order's delivery, a lab collection) with
    /// one conditional write; the row is the lock.
    ///
    /// Contract: `Ok(true)` when this call moved the unit from available to assigned for `claimant`
    /// (`UPDATE units SET status='assigned', request_id=$r, version=version+1 WHERE id=$u AND
    /// status='available'`, row count 1), and also when the unit is already assigned to this very
    /// claimant (so retrying a claim whose answer was lost is safe: add `OR request_id=$r` to the
    /// condition). `Ok(false)` when another claimant won, or the unit is unknown or not available.
    fn claim_unit(&self, unit: UnitId, claimant: EntityKey) -> BoxFuture<'_, Result<bool, StoreError>>;

    /// Releases a claim: the unit goes back to available if, and only if, it is assigned to `claimant`.
    ///
    /// Contract: `Ok(true)` when the claim held by `claimant` was released; `Ok(false)` when the unit
    /// was not assigned to `claimant` (never touches another claimant's claim).
    fn release_unit(&self, unit: UnitId, claimant: EntityKey) -> BoxFuture<'_, Result<bool, StoreError>>;
}

impl<T: Store + ?Sized> Store for Arc<T> {
    fn load_entity(&self, key: EntityKey) -> BoxFuture<'_, Result<Option<StoredEntity>, StoreError>> {
        (**self).load_entity(key)
    }

    fn append_transition(
        &self,
        record: TransitionRecord,
    ) -> BoxFuture<'_, Result<AppendOutcome, StoreError>> {
        (**self).append_transition(record)
    }

    fn claim_unit(&self, unit: UnitId, claimant: EntityKey) -> BoxFuture<'_, Result<bool, StoreError>> {
        (**self).claim_unit(unit, claimant)
    }

    fn release_unit(&self, unit: UnitId, claimant: EntityKey) -> BoxFuture<'_, Result<bool, StoreError>> {
        (**self).release_unit(unit, claimant)
    }
}
