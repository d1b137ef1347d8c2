//! The entity runtime: one supervised actor per live entity, started on demand by a registry.

mod actor;
mod error;
mod messages;
mod recent;
mod registry;

pub use actor::{DEADLINE_SLACK, ENTITY_IDLE_AFTER, EntityActor, EntitySettings, MAX_RESTARTS};
pub use error::EntityError;
pub use messages::{
    ApplyCommand, Command, CommandOutcome, EntityIdle, Execute, Executed, Inspect, LiveEntities, ReadState,
};
pub use registry::EntityRegistry;
