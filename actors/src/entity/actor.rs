//! [`EntityActor`]: the live cache and command serialiser of one entity, run under an actix `Supervisor`.
//!
//! Life of an activation: `started` loads the entity from the store (the mailbox waits meanwhile);
//! each [`ApplyCommand`] runs the state machine, appends the transition through the store *before*
//! updating the cache and announcing it; the state's own deadline (hold expiry, ...) is a timer that
//! applies a system command. A panic while handling a command is caught, answered with
//! [`EntityError::Crashed`], and the actor stops so its supervisor restarts it: `restarting` drops the
//! cache and reloads from the store. After [`ENTITY_IDLE_AFTER`] without commands the actor asks the
//! registry to forget it and stops.

use std::{panic::AssertUnwindSafe, time::Duration};

use actix::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, AtomicResponse, Context, Handler, Recipient,
    ResponseActFuture, SpawnHandle, Supervised, WrapFuture, fut,
};
use futures_util::FutureExt;

use super::{
    ApplyCommand, Command, CommandOutcome, EntityError, EntityIdle, Executed, ReadState,
    recent::RecentCommands,
};
use crate::{
    events::{DomainEvent, Topic},
    ids::CommandId,
    machines::{Agent, EntityKey},
    ports::{AppendOutcome, Ports, StoreError, StoredEntity, TransitionRecord},
};

/// An entity actor with no command for this long stops; the registry re-creates it on demand.
pub const ENTITY_IDLE_AFTER: Duration = Duration::from_secs(300);

/// A deadline timer fires this much after the deadline, so a clock that runs slightly behind tokio's
/// timer never sees the deadline as "not yet passed".
pub const DEADLINE_SLACK: Duration = Duration::from_millis(10);

/// Restarts tolerated in one activation before the actor gives up and leaves the registry (a command
/// that panics every time must not spin forever).
pub const MAX_RESTARTS: u32 = 5;

/// Tunables of entity actors.
#[derive(Debug, Clone, Copy)]
pub struct EntitySettings {
    /// Idle time before passivation.
    pub idle_after: Duration,
}

impl Default for EntitySettings {
    fn default() -> Self {
        Self {
            idle_after: ENTITY_IDLE_AFTER,
        }
    }
}

/// What the actor knows of its entity.
#[derive(Debug)]
enum Cache {
    /// Not loaded (starting, restarted, or the last load failed).
    Unloaded,
    /// The store has no such entity.
    Missing,
    /// The entity as last loaded or written.
    Loaded(StoredEntity),
}

type Loaded = Result<Result<Option<StoredEntity>, StoreError>, ()>;

/// The actor of one live entity.
pub struct EntityActor {
    key: EntityKey,
    /// The registry's activation counter for this actor.
    generation: u64,
    ports: Ports,
    settings: EntitySettings,
    /// Told when the actor wants to passivate; `None` for a free-standing actor.
    registry: Option<Recipient<EntityIdle>>,
    cache: Cache,
    /// A load is queued on the context (`ctx.wait`), so `started` must not queue another.
    loading: bool,
    recent: RecentCommands,
    /// Fires [`EntityActor::passivate`] after `settings.idle_after` without a command; re-armed by
    /// every command, cleared by the context on restart.
    idle_timer: Option<SpawnHandle>,
    /// Fires the state's own deadline event; re-armed after every load and transition.
    deadline_timer: Option<SpawnHandle>,
    restarts: u32,
}

impl EntityActor {
    /// An actor for `key`. Start it with `actix::Supervisor::start(|_| EntityActor::new(..))`.
    pub fn new(
        key: EntityKey,
        generation: u64,
        ports: Ports,
        settings: EntitySettings,
        registry: Option<Recipient<EntityIdle>>,
    ) -> Self {
        Self {
            key,
            generation,
            ports,
            settings,
            registry,
            cache: Cache::Unloaded,
            loading: false,
            recent: RecentCommands::default(),
            idle_timer: None,
            deadline_timer: None,
            restarts: 0,
        }
    }

    /// Queues a load from the store; the mailbox is held until it completes.
    fn begin_load(&mut self, ctx: &mut Context<Self>) {
        self.loading = true;
        let load = self.load_future();
        ctx.wait(
            load.into_actor(self)
                .map(|loaded, act, ctx| act.on_loaded(loaded, ctx)),
        );
    }

    fn load_future(&self) -> impl Future<Output = Loaded> + 'static {
        let (store, key) = (self.ports.store.clone(), self.key);
        AssertUnwindSafe(async move { store.load_entity(key).await })
            .catch_unwind()
            .map(|r| r.map_err(|_| ()))
    }

    fn on_loaded(&mut self, loaded: Loaded, ctx: &mut Context<Self>) {
        self.loading = false;
        self.cache = match loaded {
            Ok(Ok(Some(entity))) => Cache::Loaded(entity),
            Ok(Ok(None)) => Cache::Missing,
            Ok(Err(err)) => {
                tracing::warn!(entity = %self.key, error = %err, "loading entity failed");
                Cache::Unloaded
            }
            Err(()) => {
                tracing::error!(entity = %self.key, "the store panicked while loading");
                Cache::Unloaded
            }
        };
        self.arm_deadline(ctx);
    }

    fn touch(&mut self, ctx: &mut Context<Self>) {
        if let Some(handle) = self.idle_timer.take() {
            ctx.cancel_future(handle);
        }
        self.idle_timer = Some(ctx.run_later(self.settings.idle_after, |act, ctx| act.passivate(ctx)));
    }

    /// Leaves the registry and stops, unless the state still owns a deadline that needs this actor alive.
    fn passivate(&mut self, ctx: &mut Context<Self>) {
        self.idle_timer = None;
        let owns_deadline = matches!(&self.cache, Cache::Loaded(e) if e.state.deadline().is_some());
        if owns_deadline && self.restarts <= MAX_RESTARTS {
            self.touch(ctx);
            return;
        }
        tracing::debug!(entity = %self.key, "passivating idle entity");
        match self.registry.clone() {
            Some(registry) => {
                let notice = EntityIdle {
                    key: self.key,
                    generation: self.generation,
                };
                ctx.wait(registry.send(notice).into_actor(self).map(|_, _, ctx| ctx.stop()));
            }
            None => ctx.stop(),
        }
    }

    /// (Re)arms the timer of the current state's deadline, if it has one.
    fn arm_deadline(&mut self, ctx: &mut Context<Self>) {
        if let Some(handle) = self.deadline_timer.take() {
            ctx.cancel_future(handle);
        }
        let Cache::Loaded(entity) = &self.cache else {
            return;
        };
        let Some((at, event)) = entity.state.deadline() else {
            return;
        };
        let delay = (at - self.ports.clock.now()).to_std().unwrap_or(Duration::ZERO) + DEADLINE_SLACK;
        let command_id = CommandId::parse(format!(
            "deadline:{}:{}:{}",
            self.key,
            event.name(),
            entity.version
        ));
        let handle = ctx.run_later(delay, move |act, ctx| {
            act.deadline_timer = None;
            if act.ports.clock.now() < at {
                act.arm_deadline(ctx);
                return;
            }
            let Ok(id) = command_id else { return };
            // Applied right here, atomically: nothing (not even passivation) runs in between.
            let run = act.run(
                Command {
                    id,
                    agent: Agent::System,
                    event,
                    note: None,
                },
                ctx,
            );
            ctx.wait(run.map(|result, act, _| {
                if let Err(err) = result {
                    tracing::warn!(entity = %act.key, error = %err, "deadline event was not applied");
                }
            }));
        });
        self.deadline_timer = Some(handle);
    }

    /// A panic was caught: answer the caller, drop the cache and stop so the supervisor restarts us.
    fn crash(&mut self, ctx: &mut Context<Self>) -> EntityError {
        tracing::error!(entity = %self.key, "entity actor panicked while handling a command; restarting");
        self.cache = Cache::Unloaded;
        ctx.stop();
        EntityError::Crashed(self.key)
    }

    fn current(&self) -> Result<&StoredEntity, EntityError> {
        match &self.cache {
            Cache::Loaded(entity) => Ok(entity),
            Cache::Missing => Err(EntityError::NotFound(self.key)),
            Cache::Unloaded => Err(EntityError::Store(StoreError::Unavailable(
                "entity not loaded".to_owned(),
            ))),
        }
    }

    fn executed(&self, outcome: CommandOutcome) -> Result<Executed, EntityError> {
        self.current().map(|e| Executed {
            state: e.state.clone(),
            version: e.version,
            outcome,
        })
    }

    /// Runs one command against the loaded state.
    fn run(
        &mut self,
        command: Command,
        ctx: &mut Context<Self>,
    ) -> ResponseActFuture<Self, Result<Executed, EntityError>> {
        self.run_fresh(command, ctx, false)
    }

    /// Runs `command`; `fresh` says the cache was just reloaded (so a refusal is final).
    fn run_fresh(
        &mut self,
        command: Command,
        ctx: &mut Context<Self>,
        fresh: bool,
    ) -> ResponseActFuture<Self, Result<Executed, EntityError>> {
        let current = match self.current() {
            Ok(current) => current.clone(),
            Err(err) => return Box::pin(fut::ready(Err(err))),
        };
        if self.recent.contains(&command.id) {
            return Box::pin(fut::ready(self.executed(CommandOutcome::AlreadyApplied)));
        }
        let at = self.ports.clock.now();
        let next =
            match std::panic::catch_unwind(AssertUnwindSafe(|| current.state.apply(&command.event, at))) {
                Ok(Ok(next)) => next,
                Ok(Err(rejected)) if fresh => return Box::pin(fut::ready(Err(rejected.into()))),
                Ok(Err(_)) => {
                    // The cache may be behind a write made elsewhere (another node, or a conditional
                    // write outside the actors): decide again on the stored state before refusing.
                    return Box::pin(
                        self.reload()
                            .then(move |(), act, ctx| act.run_fresh(command, ctx, true)),
                    );
                }
                Err(_) => return Box::pin(fut::ready(Err(self.crash(ctx)))),
            };
        let record = TransitionRecord {
            key: self.key,
            command_id: command.id,
            expected_version: current.version,
            from: current.state,
            to: next,
            event: command.event.name().to_owned(),
            at,
            agent: command.agent,
            note: command.note.clone(),
        };
        let store = self.ports.store.clone();
        let written = record.clone();
        let append = AssertUnwindSafe(async move { store.append_transition(written).await }).catch_unwind();
        Box::pin(
            append
                .into_actor(self)
                .then(move |appended, act, ctx| -> ResponseActFuture<Self, _> {
                    match appended {
                        Err(_) => Box::pin(fut::ready(Err(act.crash(ctx)))),
                        Ok(Err(err)) => Box::pin(fut::ready(Err(err.into()))),
                        Ok(Ok(AppendOutcome::Applied { version })) => {
                            act.commit(record, version, ctx);
                            Box::pin(fut::ready(act.executed(CommandOutcome::Applied)))
                        }
                        Ok(Ok(AppendOutcome::Duplicate)) => {
                            act.recent.insert(record.command_id);
                            Box::pin(
                                act.reload()
                                    .map(|(), act, _| act.executed(CommandOutcome::AlreadyApplied)),
                            )
                        }
                        Ok(Ok(AppendOutcome::Stale)) => {
                            let key = act.key;
                            Box::pin(act.reload().map(move |(), _, _| Err(EntityError::Conflict(key))))
                        }
                        Ok(Ok(AppendOutcome::UnitBusy { unit })) => {
                            Box::pin(fut::ready(Err(EntityError::UnitBusy(act.key, unit))))
                        }
                    }
                }),
        )
    }

    /// Reloads from the store as part of the running command.
    fn reload(&mut self) -> impl actix::ActorFuture<Self, Output = ()> + 'static {
        self.load_future()
            .into_actor(self)
            .map(|loaded, act, ctx| act.on_loaded(loaded, ctx))
    }

    /// The store accepted the transition: update the cache, then announce it.
    fn commit(&mut self, record: TransitionRecord, version: u64, ctx: &mut Context<Self>) {
        let event = DomainEvent::StateChanged {
            entity: self.key,
            from: record.from.name().to_owned(),
            to: record.to.name().to_owned(),
            event: record.event.clone(),
            version,
            at: record.at,
            agent: record.agent,
        };
        self.recent.insert(record.command_id);
        self.cache = Cache::Loaded(StoredEntity {
            key: self.key,
            state: record.to,
            version,
        });
        self.arm_deadline(ctx);
        let (bus, topic) = (self.ports.bus.clone(), Topic::entity(self.key));
        ctx.spawn(
            async move {
                if let Err(err) = bus.publish(topic, event).await {
                    tracing::warn!(error = %err, "publishing a state change failed");
                }
            }
            .into_actor(self),
        );
    }
}

impl Actor for EntityActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.touch(ctx);
        if !self.loading {
            self.begin_load(ctx);
        }
    }
}

impl Supervised for EntityActor {
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        self.restarts += 1;
        tracing::warn!(entity = %self.key, restarts = self.restarts, "entity actor restarting; reloading state");
        // The context dropped our timers with everything else it was running.
        self.idle_timer = None;
        self.deadline_timer = None;
        self.cache = Cache::Unloaded;
        self.begin_load(ctx);
        if self.restarts > MAX_RESTARTS {
            self.passivate(ctx);
        }
    }
}

impl Handler<ApplyCommand> for EntityActor {
    type Result = AtomicResponse<Self, Result<Executed, EntityError>>;

    fn handle(&mut self, msg: ApplyCommand, ctx: &mut Context<Self>) -> Self::Result {
        self.touch(ctx);
        let command = msg.0;
        if matches!(self.cache, Cache::Unloaded) {
            let reload = self.reload();
            AtomicResponse::new(Box::pin(reload.then(move |(), act, ctx| act.run(command, ctx))))
        } else {
            AtomicResponse::new(self.run(command, ctx))
        }
    }
}

impl Handler<ReadState> for EntityActor {
    type Result = AtomicResponse<Self, Result<StoredEntity, EntityError>>;

    fn handle(&mut self, _: ReadState, ctx: &mut Context<Self>) -> Self::Result {
        self.touch(ctx);
        let read = |act: &mut Self| act.current().cloned();
        if matches!(self.cache, Cache::Unloaded) {
            AtomicResponse::new(Box::pin(self.reload().map(move |(), act, _| read(act))))
        } else {
            AtomicResponse::new(Box::pin(fut::ready(read(self))))
        }
    }
}
