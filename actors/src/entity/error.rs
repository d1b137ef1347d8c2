//! [`EntityError`]: why a command to a live entity did not produce a new state.

use crate::{
    ids::UnitId,
    machines::{EntityKey, TransitionError},
    ports::StoreError,
};

/// Why a command failed. Every variant leaves the stored entity unchanged except as noted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntityError {
    /// The store has no such entity.
    #[error("{0} does not exist")]
    NotFound(EntityKey),
    /// The state machine refused the move.
    #[error(transparent)]
    Rejected(#[from] TransitionError),
    /// Another writer (maybe another node) changed the entity first; the actor reloaded it.
    /// Retry the command with the same id.
    #[error("{0} was changed concurrently; retry")]
    Conflict(EntityKey),
    /// The command would offer a unit that holds another job's open offer; nothing was written.
    #[error("{1} holds another open offer; {0} was not offered it")]
    UnitBusy(EntityKey, UnitId),
    /// The store failed; retry later with the same command id.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The actor panicked while handling the command and was restarted with its state reloaded.
    /// Whether the command took effect is unknown: retry with the same command id.
    #[error("{0} failed while handling the command and was restarted; retry")]
    Crashed(EntityKey),
    /// The actor could not be reached (it stopped twice in a row); retry.
    #[error("{0} is unavailable; retry")]
    Unavailable(EntityKey),
}
