//! [`Dispatcher`]: runs offer cascades as actor messages and timers.
//!
//! One step at a time per job: query the fleet for ranked candidates → record the offer in the job's
//! timeline → announce it to the crew (`offer_made` on `unit:<id>`) and start the priority's offer
//! timer → on accept, claim the unit through the store's conditional write (the row is the lock); on
//! decline, timeout or a lost claim, move to the next candidate and never come back to this unit.
//! With nobody left, widen the radius once; then record `no_unit_available`, escalate and announce.

use std::{collections::HashMap, time::Duration};

use actix::{
    Actor, ActorFutureExt, AsyncContext, Context, Handler, Recipient, ResponseActFuture, WrapFuture, fut,
};
use chrono::TimeDelta;

use super::{
    AnswerOutcome, CANDIDATE_POOL, CancelDispatch, DONE_RETENTION, Dispatch, DispatchError, DispatchOutcome,
    DispatchPhase, DispatchStatus, OfferAnswer, OfferSettled, WIDEN_FACTOR,
    cascade::Cascade,
    lifecycle::{assign_event, lapse_event, no_unit_events, offer_event},
    messages::OfferExpired,
    timers::{Due, TimerKey, Timers},
};
use crate::{
    entity::{Command, EntityError, Execute},
    events::{DomainEvent, Topic},
    fleet::{FindNearest, FleetLink, Nearby, SearchFilter, SetUnitStatus, UnitStatus},
    ids::{CommandId, UnitId},
    machines::{Agent, EntityEvent, EntityKey},
    ports::Ports,
};

/// Tunables of a dispatcher.
#[derive(Debug, Clone, Copy)]
pub struct DispatchSettings {
    /// Candidates fetched per fleet query.
    pub candidate_pool: usize,
    /// Radius multiplier of the one widening.
    pub widen_factor: f64,
    /// How long finished cascades stay queryable.
    pub done_retention: Duration,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        Self {
            candidate_pool: CANDIDATE_POOL,
            widen_factor: WIDEN_FACTOR,
            done_retention: DONE_RETENTION,
        }
    }
}

/// The dispatcher of one node.
pub struct Dispatcher {
    ports: Ports,
    fleet: FleetLink,
    /// Where job state changes are recorded (the entity registry); `None` records nothing but claims.
    entities: Option<Recipient<Execute>>,
    settings: DispatchSettings,
    cascades: HashMap<EntityKey, Cascade>,
    /// Units holding one of this dispatcher's offers, and for which job: never offered two jobs at once.
    offered: HashMap<UnitId, EntityKey>,
    /// Distinguishes this dispatcher's cascades from every other's (other nodes, earlier lives of this
    /// node) in the timeline's command ids, so a cascade restarted after a crash records its own steps
    /// instead of being taken for a replay of the dead one's.
    incarnation: u64,
    /// Cascades started by this dispatcher.
    started: u64,
    /// Offer lapses and the forgetting of finished cascades, behind one actor timer.
    timers: Timers,
}

impl Dispatcher {
    /// A dispatcher searching `fleet`, claiming through `ports.store`, recording job states through `entities`.
    pub fn new(
        ports: Ports,
        fleet: impl Into<FleetLink>,
        entities: Option<Recipient<Execute>>,
        settings: DispatchSettings,
    ) -> Self {
        Self {
            ports,
            fleet: fleet.into(),
            entities,
            settings,
            cascades: HashMap::new(),
            offered: HashMap::new(),
            incarnation: incarnation(),
            started: 0,
            timers: Timers::default(),
        }
    }

    /// Adds a deadline and makes sure the actor timer fires by then.
    fn schedule(&mut self, after: Duration, due: Due, ctx: &mut Context<Self>) -> TimerKey {
        let key = self.timers.insert(after, due);
        self.arm(ctx);
        key
    }

    /// Arms the one actor timer for the earliest deadline, replacing a later one.
    fn arm(&mut self, ctx: &mut Context<Self>) {
        let Some(at) = self.timers.rearm_at() else {
            return;
        };
        if let Some(replaced) = self.timers.take_armed() {
            ctx.cancel_future(replaced);
        }
        let delay = at.saturating_duration_since(tokio::time::Instant::now());
        let handle = ctx.run_later(delay, |act, ctx| act.fire_timers(ctx));
        self.timers.armed(at, handle);
    }

    /// Runs every deadline that has passed, then re-arms for the next.
    fn fire_timers(&mut self, ctx: &mut Context<Self>) {
        self.timers.take_armed();
        for due in self.timers.pop_due(tokio::time::Instant::now()) {
            match due {
                Due::OfferExpired(lapse) => <Self as Handler<OfferExpired>>::handle(self, lapse, ctx),
                Due::Forget(job) => {
                    if self
                        .cascades
                        .get(&job)
                        .is_some_and(|c| matches!(c.phase, DispatchPhase::Done(_)))
                    {
                        self.cascades.remove(&job);
                    }
                }
            }
        }
        self.arm(ctx);
    }

    /// Records `event` on the job's timeline (idempotently, under `step`); a conflict is retried once.
    fn record(
        &self,
        job: EntityKey,
        event: Option<EntityEvent>,
        step: String,
    ) -> impl Future<Output = Result<(), EntityError>> + 'static {
        let entities = self.entities.clone();
        let nonce = self.cascades.get(&job).map_or(0, |c| c.nonce);
        async move {
            let (Some(entities), Some(event)) = (entities, event) else {
                return Ok(());
            };
            let id = CommandId::parse(format!("dispatch:{job}:{nonce:x}:{step}"))
                .map_err(|_| EntityError::Unavailable(job))?;
            let command = Command {
                id,
                agent: Agent::System,
                event,
            };
            let mut attempt = 0;
            loop {
                let sent = entities
                    .send(Execute {
                        key: job,
                        command: command.clone(),
                    })
                    .await;
                match sent.unwrap_or(Err(EntityError::Unavailable(job))) {
                    Ok(_) => return Ok(()),
                    Err(EntityError::Conflict(_) | EntityError::Crashed(_)) if attempt == 0 => attempt += 1,
                    Err(err) => return Err(err),
                }
            }
        }
    }

    fn publish(&self, topic: Topic, event: DomainEvent, ctx: &mut Context<Self>) {
        let bus = self.ports.bus.clone();
        ctx.spawn(
            async move {
                if let Err(err) = bus.publish(topic, event).await {
                    tracing::warn!(error = %err, "publishing a dispatch event failed");
                }
            }
            .into_actor(self),
        );
    }

    /// Takes the next step of a searching cascade: offer the best untried candidate, or refill the pool.
    fn advance(&mut self, job: EntityKey, ctx: &mut Context<Self>) {
        let Some(cascade) = self.cascades.get_mut(&job) else {
            return;
        };
        if cascade.phase != DispatchPhase::Searching {
            return;
        }
        while let Some(candidate) = cascade.pool.pop_front() {
            if !cascade.tried.contains(&candidate.unit) && !self.offered.contains_key(&candidate.unit) {
                self.offer(job, candidate, ctx);
                return;
            }
        }
        let mut exclude: Vec<UnitId> = cascade.tried.iter().copied().collect();
        exclude.extend(self.offered.keys().copied());
        let query = FindNearest {
            kind: cascade.kind,
            point: cascade.point,
            k: self.settings.candidate_pool,
            max_radius_m: cascade.radius_m,
            filter: SearchFilter {
                required: cascade.required,
                exclude,
            },
        };
        cascade.phase = DispatchPhase::Querying;
        ctx.spawn(
            self.fleet
                .find
                .send(query)
                .into_actor(self)
                .map(move |found, act, ctx| act.on_candidates(job, found.unwrap_or_default(), ctx)),
        );
    }

    fn on_candidates(&mut self, job: EntityKey, found: Vec<Nearby>, ctx: &mut Context<Self>) {
        let widen_factor = self.settings.widen_factor;
        let Some(cascade) = self.cascades.get_mut(&job) else {
            return;
        };
        if cascade.phase != DispatchPhase::Querying {
            return;
        }
        cascade.phase = DispatchPhase::Searching;
        if found.is_empty() {
            if cascade.widened
                && let Some(fallback) = cascade.fallback.take()
            {
                cascade.kind = fallback;
                cascade.widened = false;
                cascade.radius_m = cascade.priority.search_radius_m();
                self.advance(job, ctx);
            } else if cascade.widened {
                self.give_up(job, ctx);
            } else {
                cascade.widened = true;
                cascade.radius_m *= widen_factor;
                self.advance(job, ctx);
            }
            return;
        }
        cascade.pool = found.into();
        self.advance(job, ctx);
    }

    /// Records the offer, then announces it and starts its timer.
    fn offer(&mut self, job: EntityKey, candidate: Nearby, ctx: &mut Context<Self>) {
        let Some(cascade) = self.cascades.get_mut(&job) else {
            return;
        };
        let unit = candidate.unit;
        cascade.offer_seq += 1;
        let seq = cascade.offer_seq;
        cascade.tried.insert(unit);
        cascade.phase = DispatchPhase::Recording { unit };
        self.offered.insert(unit, job);
        let record = self.record(job, offer_event(job, unit), format!("offer:{seq}"));
        ctx.spawn(record.into_actor(self).map(move |recorded, act, ctx| {
            let Some(cascade) = act.cascades.get_mut(&job) else {
                return;
            };
            if cascade.phase != (DispatchPhase::Recording { unit }) || cascade.offer_seq != seq {
                return;
            }
            if let Err(err) = recorded {
                tracing::info!(%job, error = %err, "job refused the offer; stopping its cascade");
                act.offered.remove(&unit);
                act.finish(job, DispatchOutcome::Cancelled, ctx);
                return;
            }
            let timeout = cascade.priority.offer_timeout();
            cascade.phase = DispatchPhase::Offering { unit };
            let lapse = Due::OfferExpired(OfferExpired { job, seq });
            let timer = act.schedule(timeout, lapse, ctx);
            let Some(cascade) = act.cascades.get_mut(&job) else {
                return;
            };
            cascade.offer_timer = Some(timer);
            let now = act.ports.clock.now();
            let expires_at = TimeDelta::from_std(timeout)
                .ok()
                .and_then(|t| now.checked_add_signed(t))
                .unwrap_or(now);
            let event = DomainEvent::OfferMade {
                request: job,
                unit,
                distance_m: candidate.distance_m,
                eta_s: candidate.eta.as_secs_f64(),
                expires_at,
            };
            act.publish(Topic::unit(unit), event, ctx);
        }));
    }

    /// Ends the current offer (answered or lapsed) and returns to searching.
    fn end_offer(&mut self, job: EntityKey, unit: UnitId) {
        self.offered.remove(&unit);
        if let Some(cascade) = self.cascades.get_mut(&job)
            && let Some(timer) = cascade.offer_timer.take()
        {
            self.timers.cancel(timer);
        }
    }

    /// Nobody left even after widening: record, escalate, announce.
    fn give_up(&mut self, job: EntityKey, ctx: &mut Context<Self>) {
        let Some(cascade) = self.cascades.get(&job) else {
            return;
        };
        let radius_m = cascade.radius_m;
        self.finish(job, DispatchOutcome::NoUnitAvailable, ctx);
        let steps: Vec<_> = no_unit_events(job)
            .into_iter()
            .map(|event| self.record(job, Some(event.clone()), event.name().to_owned()))
            .collect();
        let record = async move {
            for step in steps {
                step.await?;
            }
            Ok::<(), EntityError>(())
        };
        ctx.spawn(record.into_actor(self).map(move |recorded, act, ctx| {
            if let Err(err) = recorded {
                tracing::warn!(%job, error = %err, "recording no_unit_available failed");
            }
            act.publish(
                Topic::entity(job),
                DomainEvent::NoUnitAvailable {
                    request: job,
                    radius_m,
                },
                ctx,
            );
            let reason = format!("no unit accepted within {:.0} m", radius_m);
            act.publish(
                Topic::dispatch(),
                DomainEvent::Escalated { request: job, reason },
                ctx,
            );
        }));
    }

    fn finish(&mut self, job: EntityKey, outcome: DispatchOutcome, ctx: &mut Context<Self>) {
        let Some(cascade) = self.cascades.get_mut(&job) else {
            return;
        };
        if let Some(timer) = cascade.offer_timer.take() {
            self.timers.cancel(timer);
        }
        if let Some(unit) = cascade.offered_unit() {
            self.offered.remove(&unit);
        }
        cascade.phase = DispatchPhase::Done(outcome);
        cascade.pool.clear();
        self.schedule(self.settings.done_retention, Due::Forget(job), ctx);
    }

    /// The crew accepted: claim the unit. The store's conditional write decides between competing nodes.
    fn claim(&mut self, job: EntityKey, unit: UnitId) -> ResponseActFuture<Self, AnswerOutcome> {
        let store = self.ports.store.clone();
        let claim = async move { store.claim_unit(unit, job).await };
        Box::pin(claim.into_actor(self).then(
            move |claimed, act, ctx| -> ResponseActFuture<Self, AnswerOutcome> {
                let still_ours = act
                    .cascades
                    .get(&job)
                    .is_some_and(|c| c.phase == DispatchPhase::Claiming { unit });
                match claimed {
                    Ok(true) if still_ours => Box::pin(act.complete_assignment(job, unit)),
                    Ok(true) => {
                        // The job was cancelled while the claim was in flight: give the unit back.
                        act.release(job, unit, ctx);
                        Box::pin(fut::ready(AnswerOutcome::Taken))
                    }
                    Ok(false) | Err(_) => {
                        if let Err(err) = &claimed {
                            tracing::warn!(%job, %unit, error = %err, "claim failed; trying the next unit");
                        } else {
                            // Someone else holds it: keep this node's index from offering it again.
                            act.fleet.set_status.do_send(SetUnitStatus {
                                unit,
                                status: UnitStatus::Assigned,
                            });
                        }
                        act.publish(
                            Topic::unit(unit),
                            DomainEvent::ClaimLost { request: job, unit },
                            ctx,
                        );
                        if still_ours {
                            if let Some(cascade) = act.cascades.get_mut(&job) {
                                cascade.phase = DispatchPhase::Searching;
                            }
                            act.advance(job, ctx);
                        }
                        Box::pin(fut::ready(AnswerOutcome::Taken))
                    }
                }
            },
        ))
    }

    /// The unit is ours: record the assignment in the job's timeline, then announce it.
    fn complete_assignment(
        &mut self,
        job: EntityKey,
        unit: UnitId,
    ) -> impl actix::ActorFuture<Self, Output = AnswerOutcome> + 'static {
        self.fleet.set_status.do_send(SetUnitStatus {
            unit,
            status: UnitStatus::Assigned,
        });
        let record = self.record(job, assign_event(job, unit), format!("assign:{unit}"));
        record.into_actor(self).map(move |recorded, act, ctx| match recorded {
            Ok(()) => {
                act.finish(job, DispatchOutcome::Assigned(unit), ctx);
                let event = DomainEvent::UnitAssigned { request: job, unit };
                act.publish(Topic::unit(unit), event.clone(), ctx);
                act.publish(Topic::entity(job), event, ctx);
                AnswerOutcome::Assigned
            }
            Err(err) => {
                tracing::info!(%job, %unit, error = %err, "job refused the assignment; releasing the unit");
                act.release(job, unit, ctx);
                act.finish(job, DispatchOutcome::Cancelled, ctx);
                AnswerOutcome::Taken
            }
        })
    }

    fn release(&mut self, job: EntityKey, unit: UnitId, ctx: &mut Context<Self>) {
        let store = self.ports.store.clone();
        let release = async move { store.release_unit(unit, job).await };
        ctx.spawn(release.into_actor(self).map(move |released, act, _| {
            if matches!(released, Ok(true)) {
                act.fleet.set_status.do_send(SetUnitStatus {
                    unit,
                    status: UnitStatus::Available,
                });
            }
        }));
    }
}

/// A number unlikely to repeat across dispatchers and restarts: the clock's nanoseconds mixed with the
/// process id and an address, shifted so consecutive cascades (incarnation + n) stay distinct.
fn incarnation() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let local = 0u8;
    let address = std::ptr::addr_of!(local) as u64;
    (nanos ^ (u64::from(std::process::id()) << 32) ^ address.rotate_left(17)) << 20
}

impl Actor for Dispatcher {
    type Context = Context<Self>;
}

impl Handler<Dispatch> for Dispatcher {
    type Result = Result<(), DispatchError>;

    fn handle(&mut self, msg: Dispatch, ctx: &mut Context<Self>) -> Self::Result {
        if self
            .cascades
            .get(&msg.job)
            .is_some_and(|c| !matches!(c.phase, DispatchPhase::Done(_)))
        {
            return Err(DispatchError::AlreadyDispatching(msg.job));
        }
        self.started += 1;
        let nonce = self.incarnation.wrapping_add(self.started);
        self.cascades.insert(msg.job, Cascade::new(&msg, nonce));
        self.advance(msg.job, ctx);
        Ok(())
    }
}

impl Handler<OfferAnswer> for Dispatcher {
    type Result = ResponseActFuture<Self, AnswerOutcome>;

    fn handle(&mut self, msg: OfferAnswer, ctx: &mut Context<Self>) -> Self::Result {
        let OfferAnswer { job, unit, accepted } = msg;
        let open = self
            .cascades
            .get(&job)
            .is_some_and(|c| c.phase == DispatchPhase::Offering { unit });
        if !open {
            return Box::pin(fut::ready(AnswerOutcome::NotOffered));
        }
        self.end_offer(job, unit);
        let Some(cascade) = self.cascades.get_mut(&job) else {
            return Box::pin(fut::ready(AnswerOutcome::NotOffered));
        };
        if accepted {
            cascade.phase = DispatchPhase::Claiming { unit };
            self.claim(job, unit)
        } else {
            cascade.phase = DispatchPhase::Searching;
            self.publish(
                Topic::entity(job),
                DomainEvent::OfferDeclined { request: job, unit },
                ctx,
            );
            self.advance(job, ctx);
            Box::pin(fut::ready(AnswerOutcome::Declined))
        }
    }
}

impl Handler<OfferExpired> for Dispatcher {
    type Result = ();

    /// The offer lapsed: record the lapse first (in the store it also closes the offer, so a late
    /// acceptance on any node fails), then move on. If recording is refused, the offer was settled
    /// meanwhile (accepted on another node, the job cancelled) and [`OfferSettled`] or
    /// [`CancelDispatch`] finishes the cascade.
    fn handle(&mut self, msg: OfferExpired, ctx: &mut Context<Self>) {
        let Some(cascade) = self.cascades.get_mut(&msg.job) else {
            return;
        };
        let DispatchPhase::Offering { unit } = cascade.phase else {
            return;
        };
        if cascade.offer_seq != msg.seq {
            return;
        }
        cascade.offer_timer = None;
        let job = msg.job;
        let record = self.record(job, lapse_event(job), format!("lapse:{}", msg.seq));
        ctx.spawn(record.into_actor(self).map(move |recorded, act, ctx| {
            let Some(cascade) = act.cascades.get_mut(&job) else {
                return;
            };
            if cascade.phase != (DispatchPhase::Offering { unit }) || cascade.offer_seq != msg.seq {
                return;
            }
            if let Err(err) = recorded {
                tracing::info!(%job, %unit, error = %err, "offer lapse not recorded; the offer was settled");
                return;
            }
            cascade.phase = DispatchPhase::Searching;
            act.offered.remove(&unit);
            act.publish(
                Topic::unit(unit),
                DomainEvent::OfferExpired { request: job, unit },
                ctx,
            );
            act.advance(job, ctx);
        }));
    }
}

impl Handler<OfferSettled> for Dispatcher {
    type Result = bool;

    fn handle(&mut self, msg: OfferSettled, ctx: &mut Context<Self>) -> bool {
        let OfferSettled { job, unit, accepted } = msg;
        let Some(phase) = self.cascades.get(&job).map(|c| c.phase) else {
            return false;
        };
        match phase {
            DispatchPhase::Done(_) => false,
            // This dispatcher's own claim of that unit is in flight and will finish the cascade.
            DispatchPhase::Claiming { unit: claiming } if accepted && claiming == unit => false,
            _ if accepted => {
                if let Some(offered) = self.cascades.get(&job).and_then(Cascade::offered_unit) {
                    self.end_offer(job, offered);
                }
                self.fleet.set_status.do_send(SetUnitStatus {
                    unit,
                    status: UnitStatus::Assigned,
                });
                self.finish(job, DispatchOutcome::Assigned(unit), ctx);
                true
            }
            DispatchPhase::Offering { unit: offered } | DispatchPhase::Recording { unit: offered }
                if offered == unit =>
            {
                self.end_offer(job, unit);
                if let Some(cascade) = self.cascades.get_mut(&job) {
                    cascade.phase = DispatchPhase::Searching;
                }
                self.advance(job, ctx);
                true
            }
            _ => false,
        }
    }
}

impl Handler<CancelDispatch> for Dispatcher {
    type Result = bool;

    fn handle(&mut self, msg: CancelDispatch, ctx: &mut Context<Self>) -> bool {
        let job = msg.0;
        match self.cascades.get(&job).map(|c| c.phase) {
            None | Some(DispatchPhase::Done(_)) => false,
            Some(_) => {
                // A claim in flight notices the change of phase and releases the unit itself.
                self.finish(job, DispatchOutcome::Cancelled, ctx);
                true
            }
        }
    }
}

impl Handler<DispatchStatus> for Dispatcher {
    type Result = Option<DispatchPhase>;

    fn handle(&mut self, msg: DispatchStatus, _: &mut Context<Self>) -> Option<DispatchPhase> {
        self.cascades.get(&msg.0).map(|c| c.phase)
    }
}
