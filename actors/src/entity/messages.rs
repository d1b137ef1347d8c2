//! Messages of the entity runtime: commands in, states out.

use actix::Message;
use serde::{Deserialize, Serialize};

use super::EntityError;
use crate::{
    ids::CommandId,
    machines::{Agent, EntityEvent, EntityKey, EntityState},
    ports::StoredEntity,
};

/// One idempotent command: applying it twice has the effect of applying it once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Command {
    /// Caller-chosen idempotency key; resend the same id to retry.
    pub id: CommandId,
    /// Who is acting.
    pub agent: Agent,
    /// What should happen.
    pub event: EntityEvent,
    /// Why, for the timeline (e.g. how a batch chose this unit); not part of the state.
    #[serde(default)]
    pub note: Option<String>,
}

/// Whether a command changed the entity now or had already done so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandOutcome {
    /// The transition was recorded by this call.
    Applied,
    /// A command with the same id had already been applied; nothing changed.
    AlreadyApplied,
}

/// A successful command's answer: the entity as it now stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Executed {
    /// The current state.
    pub state: EntityState,
    /// The current version.
    pub version: u64,
    /// Applied now or before.
    pub outcome: CommandOutcome,
}

/// A command for an entity, addressed to the registry, which starts the entity's actor if needed.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Executed, EntityError>")]
pub struct Execute {
    /// Which entity.
    pub key: EntityKey,
    /// What to do.
    pub command: Command,
}

/// A request for an entity's current state, through the registry (starts the actor if needed, which
/// also re-arms the entity's own timers after a node restart).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Result<StoredEntity, EntityError>")]
pub struct Inspect(pub EntityKey);

/// The number of entity actors the registry is running (for metrics and tests).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "usize")]
pub struct LiveEntities;

/// A command delivered to one entity actor.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Executed, EntityError>")]
pub struct ApplyCommand(pub Command);

/// A request for one entity actor's current state.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Result<StoredEntity, EntityError>")]
pub struct ReadState;

/// An entity actor's notice that it has been idle and wants to stop; the registry answers `true` after
/// dropping its address (so the supervisor lets the actor go), `false` if it no longer tracks this
/// activation.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "bool")]
pub struct EntityIdle {
    /// Which entity.
    pub key: EntityKey,
    /// Which activation of it (the registry's counter), so a stale notice cannot evict a newer actor.
    pub generation: u64,
}
