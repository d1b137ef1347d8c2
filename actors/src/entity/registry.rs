//! [`EntityRegistry`]: starts entity actors on first use, routes commands to them, forgets idle ones.

use std::collections::HashMap;

use actix::{
    Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, ResponseActFuture, Supervisor, WrapFuture,
    fut,
};

use super::{
    ApplyCommand, EntityActor, EntityError, EntityIdle, EntitySettings, Execute, Executed, Inspect,
    LiveEntities, ReadState,
};
use crate::{
    machines::EntityKey,
    ports::{Ports, StoredEntity},
};

/// This node's directory of running entity actors.
pub struct EntityRegistry {
    ports: Ports,
    settings: EntitySettings,
    /// Running entity actors and their activation number. Removing an entry drops the registry's
    /// address, which lets that actor's supervisor finish once the actor stops.
    live: HashMap<EntityKey, (Addr<EntityActor>, u64)>,
    next_generation: u64,
}

impl EntityRegistry {
    /// A registry whose actors use `ports` and `settings`.
    pub fn new(ports: Ports, settings: EntitySettings) -> Self {
        Self {
            ports,
            settings,
            live: HashMap::new(),
            next_generation: 0,
        }
    }

    fn actor_for(&mut self, key: EntityKey, ctx: &mut Context<Self>) -> (Addr<EntityActor>, u64) {
        if let Some(found) = self.live.get(&key) {
            return found.clone();
        }
        self.next_generation += 1;
        let generation = self.next_generation;
        let (ports, settings, registry) = (self.ports.clone(), self.settings, ctx.address().recipient());
        let addr =
            Supervisor::start(move |_| EntityActor::new(key, generation, ports, settings, Some(registry)));
        self.live.insert(key, (addr.clone(), generation));
        (addr, generation)
    }

    fn forget(&mut self, key: EntityKey, generation: u64) -> bool {
        if self.live.get(&key).is_some_and(|(_, g)| *g == generation) {
            self.live.remove(&key);
            true
        } else {
            false
        }
    }
}

impl Actor for EntityRegistry {
    type Context = Context<Self>;
}

impl Handler<Execute> for EntityRegistry {
    type Result = ResponseActFuture<Self, Result<Executed, EntityError>>;

    fn handle(&mut self, msg: Execute, ctx: &mut Context<Self>) -> Self::Result {
        let Execute { key, command } = msg;
        let (addr, generation) = self.actor_for(key, ctx);
        let retry = command.clone();
        Box::pin(addr.send(ApplyCommand(command)).into_actor(self).then(
            move |sent, act, ctx| -> ResponseActFuture<Self, _> {
                match sent {
                    Ok(result) => Box::pin(fut::ready(result)),
                    // The actor stopped (passivated) between lookup and delivery: start a fresh one, once.
                    Err(_) => {
                        act.forget(key, generation);
                        let (addr, _) = act.actor_for(key, ctx);
                        Box::pin(
                            addr.send(ApplyCommand(retry))
                                .into_actor(act)
                                .map(move |sent, _, _| sent.unwrap_or(Err(EntityError::Unavailable(key)))),
                        )
                    }
                }
            },
        ))
    }
}

impl Handler<Inspect> for EntityRegistry {
    type Result = ResponseActFuture<Self, Result<StoredEntity, EntityError>>;

    fn handle(&mut self, msg: Inspect, ctx: &mut Context<Self>) -> Self::Result {
        let key = msg.0;
        let (addr, generation) = self.actor_for(key, ctx);
        Box::pin(addr.send(ReadState).into_actor(self).then(
            move |sent, act, ctx| -> ResponseActFuture<Self, _> {
                match sent {
                    Ok(result) => Box::pin(fut::ready(result)),
                    Err(_) => {
                        act.forget(key, generation);
                        let (addr, _) = act.actor_for(key, ctx);
                        Box::pin(
                            addr.send(ReadState)
                                .into_actor(act)
                                .map(move |sent, _, _| sent.unwrap_or(Err(EntityError::Unavailable(key)))),
                        )
                    }
                }
            },
        ))
    }
}

impl Handler<EntityIdle> for EntityRegistry {
    type Result = bool;

    fn handle(&mut self, msg: EntityIdle, _: &mut Context<Self>) -> bool {
        self.forget(msg.key, msg.generation)
    }
}

impl Handler<LiveEntities> for EntityRegistry {
    type Result = usize;

    fn handle(&mut self, _: LiveEntities, _: &mut Context<Self>) -> usize {
        self.live.len()
    }
}
