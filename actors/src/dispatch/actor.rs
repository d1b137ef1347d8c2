//! [`Dispatcher`]: runs offer cascades and the queue of waiting jobs as actor messages and timers.
//!
//! One step at a time per job: query the fleet for ranked candidates → re-check the candidate at the
//! moment of the offer (still available, fresh, not offered elsewhere here) → record the offer in the
//! job's timeline → announce it to the crew (`offer_made` on `unit:<id>`) and start the priority's offer
//! timer → on accept, claim the unit through the store's conditional write (the row is the lock); on
//! decline, timeout or a lost claim, move to the next candidate and never come back to this unit.
//! With nobody left (radius widened once, fallback kind tried), the job joins the queue: recorded
//! `queued`, or `no_unit_available` (and escalated) when no unit of an acceptable kind is on duty in
//! the service area at all. The queue is never dropped: every change of supply re-solves it, tier by
//! priority (a category 1 call never waits so that a category 4 call can go first), with the batch
//! assignment whenever two or more jobs of a tier compete for two or more free units.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use actix::{
    Actor, ActorFutureExt, AsyncContext, Context, Handler, Recipient, ResponseActFuture, WrapFuture, fut,
};
use chrono::TimeDelta;

use super::{
    ActiveJobs, AnswerOutcome, BATCH_DEADLINE, CANDIDATE_POOL, CancelDispatch, ConsiderPreemption,
    DONE_RETENTION, Dispatch, DispatchError, DispatchOutcome, DispatchPhase, DispatchStatus,
    FALLBACK_PENALTY, OfferAnswer, OfferSettled, OfferedElsewhere, Preempted, Priority, QUEUE_RECHECK,
    RESOLVE_DELAY, SupplyChanged, WIDEN_FACTOR,
    cascade::{Cascade, QueueMark},
    lifecycle::{assign_event, lapse_event, no_unit_event, offer_event, queue_event},
    messages::OfferExpired,
    timers::{Due, TimerKey, Timers},
};
use crate::{
    batch::{CostMatrix, INFEASIBLE_MS, solve_within},
    entity::{Command, EntityError, Execute},
    events::{DomainEvent, Topic},
    fleet::{
        CountOnDuty, FindNearest, FleetLink, IsOfferable, Nearby, SearchFilter, SetUnitStatus, UnitStatus,
    },
    ids::{CommandId, UnitId},
    machines::{Agent, EntityEvent, EntityKey, TransitionError},
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
    /// How long triggers are gathered before the queue is re-solved.
    pub resolve_delay: Duration,
    /// How often a non-empty queue is re-solved without a trigger.
    pub queue_recheck: Duration,
    /// Time budget of one batch assignment.
    pub batch_deadline: Duration,
    /// Keep a job nobody can take now in the queue (`true`, the engine), or give it up to a human after
    /// one cascade (`false`, the one-shot policy kept for comparison runs).
    pub queue: bool,
    /// The least urgent priority that may take a unit from a less urgent job (`None`: preemption off;
    /// category 1 only, or categories 1 and 2). Jobs below category 2 are never taken from.
    pub preempt_up_to: Option<Priority>,
    /// Preemption is considered only when the best free unit is farther than this (or there is none).
    pub preempt_after: Duration,
    /// Units a category 2 job leaves free for category 1 calls: it is offered a unit only while more
    /// than this many are free within its reach, and otherwise waits queued (0: no reserve).
    pub reserve_c1: usize,
    /// Units a category 3 or 4 job leaves free for category 1 and 2 calls, likewise.
    pub reserve_c1_c2: usize,
}

impl DispatchSettings {
    /// How many free units a job of `priority` must leave to more urgent calls (the queue only).
    fn reserve_for(&self, priority: Priority) -> usize {
        if !self.queue {
            return 0;
        }
        match priority {
            Priority::Category2 => self.reserve_c1,
            Priority::Category3 | Priority::Category4 => self.reserve_c1_c2,
            Priority::Category1 | Priority::Routine => 0,
        }
    }

    /// Candidates to fetch for a job of `priority`: enough to tell whether its reserve is free.
    fn pool_for(&self, priority: Priority) -> usize {
        self.candidate_pool.max(self.reserve_for(priority) + 1)
    }
}

/// A unit the store found holding another job's offer is left alone this long (the bus usually says
/// exactly how long first), and no hold lasts longer than the longest offer.
const BUSY_ELSEWHERE_HOLD: Duration = Duration::from_secs(15);
const MAX_HOLD_ELSEWHERE: Duration = Duration::from_secs(120);
/// After asking for a preemption, how long a job waits before being offered its far free unit.
const PREEMPTION_WAIT: Duration = Duration::from_secs(1);
/// A job asks for a preemption again only after this long (the fleet has moved on meanwhile). One ask
/// costs one indexed read; a category 1 call should not wait half a minute for a second look.
const PREEMPTION_RETRY: Duration = Duration::from_secs(10);

impl Default for DispatchSettings {
    fn default() -> Self {
        Self {
            candidate_pool: CANDIDATE_POOL,
            widen_factor: WIDEN_FACTOR,
            done_retention: DONE_RETENTION,
            resolve_delay: RESOLVE_DELAY,
            queue_recheck: QUEUE_RECHECK,
            batch_deadline: BATCH_DEADLINE,
            queue: true,
            preempt_up_to: None,
            preempt_after: Duration::from_secs(300),
            reserve_c1: 0,
            reserve_c1_c2: 0,
        }
    }
}

/// One job's feasible free units found by a re-solve, with their batch cost (ETA, plus the penalty
/// for a fallback kind), cheapest first.
type Candidates = Vec<(Nearby, i64)>;

/// The dispatcher of one node.
pub struct Dispatcher {
    ports: Ports,
    fleet: FleetLink,
    /// Where job state changes are recorded (the entity registry); `None` records nothing but claims.
    entities: Option<Recipient<Execute>>,
    /// Who decides preemptions (atomically, in the store); `None`: never preempt.
    preemptor: Option<Recipient<ConsiderPreemption>>,
    settings: DispatchSettings,
    cascades: HashMap<EntityKey, Cascade>,
    /// Units holding one of this dispatcher's offers, and for which job: never offered two jobs at once.
    offered: HashMap<UnitId, EntityKey>,
    /// Units holding another dispatcher's open offer (heard on the bus, or refused by the store), and
    /// until when: left out of every search meanwhile.
    held_elsewhere: HashMap<UnitId, tokio::time::Instant>,
    /// Distinguishes this dispatcher's cascades from every other's (other nodes, earlier lives of this
    /// node) in the timeline's command ids, so a cascade restarted after a crash records its own steps
    /// instead of being taken for a replay of the dead one's.
    incarnation: u64,
    /// Cascades started by this dispatcher.
    started: u64,
    /// Offer lapses, the forgetting of finished cascades and queue re-solves, behind one actor timer.
    timers: Timers,
    /// The pending queue re-solve and when it fires.
    resolve_timer: Option<(tokio::time::Instant, TimerKey)>,
    /// A re-solve is waiting for the fleet index.
    resolving: bool,
    /// A trigger arrived during that re-solve: solve again when it ends.
    resolve_again: bool,
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
            preemptor: None,
            settings,
            cascades: HashMap::new(),
            offered: HashMap::new(),
            held_elsewhere: HashMap::new(),
            incarnation: incarnation(),
            started: 0,
            timers: Timers::default(),
            resolve_timer: None,
            resolving: false,
            resolve_again: false,
        }
    }

    /// Lets urgent jobs take units from less urgent ones, decided by `preemptor` (see
    /// [`ConsiderPreemption`]), under the settings' policy.
    pub fn with_preemptor(mut self, preemptor: Recipient<ConsiderPreemption>) -> Self {
        self.preemptor = Some(preemptor);
        self
    }

    /// Whether `job` should ask for a preemption, its best free unit arriving in `best_eta`.
    fn wants_preemption(&self, job: EntityKey, best_eta: Option<Duration>) -> bool {
        let (Some(_), Some(up_to), Some(cascade)) = (
            &self.preemptor,
            self.settings.preempt_up_to,
            self.cascades.get(&job),
        ) else {
            return false;
        };
        cascade.priority.rank() <= up_to.rank().min(Priority::Category2.rank())
            && best_eta.is_none_or(|eta| eta > self.settings.preempt_after)
            && cascade
                .preemption_asked
                .is_none_or(|asked| asked.elapsed() >= PREEMPTION_RETRY)
    }

    /// Asks whether a unit can be taken for `job`; if one was, the job is assigned and the job it
    /// came from is dispatched again here.
    fn ask_preemption(&mut self, job: EntityKey, best_eta: Option<Duration>, ctx: &mut Context<Self>) {
        let Some(preemptor) = self.preemptor.clone() else {
            return;
        };
        let Some(cascade) = self.cascades.get_mut(&job) else {
            return;
        };
        cascade.preemption_asked = Some(tokio::time::Instant::now());
        let ask = ConsiderPreemption {
            job,
            point: cascade.point,
            priority: cascade.priority,
            kinds: cascade.kinds(),
            better_than: best_eta,
            leave: self.settings.reserve_for(cascade.priority),
        };
        ctx.spawn(preemptor.send(ask).into_actor(self).map(move |answer, act, ctx| {
            let Ok(Some(Preempted { unit, requeue })) = answer else {
                // Nothing to take: the far free unit, if any, is offered at once.
                act.request_resolve(act.settings.resolve_delay, ctx);
                return;
            };
            tracing::info!(%job, %unit, from = %requeue.job, "unit preempted for a more urgent call");
            act.assigned_elsewhere(job, unit, ctx);
            let running = act
                .cascades
                .get(&requeue.job)
                .is_some_and(|c| !matches!(c.phase, DispatchPhase::Done(_)));
            if !running {
                act.start(requeue, ctx);
            }
        }));
    }

    /// The job went to `unit` by a write made outside this cascade's own claim (an acceptance settled on
    /// another node, a manual assignment, a preemption): close any open offer and finish.
    fn assigned_elsewhere(&mut self, job: EntityKey, unit: UnitId, ctx: &mut Context<Self>) {
        if let Some(offered) = self.cascades.get(&job).and_then(Cascade::offered_unit) {
            self.end_offer(job, offered);
        }
        self.fleet.set_status.do_send(SetUnitStatus {
            unit,
            status: UnitStatus::Assigned,
        });
        self.finish(job, DispatchOutcome::Assigned(unit), ctx);
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
                Due::Resolve => self.resolve(ctx),
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
        note: Option<String>,
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
                note,
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
        let busy = self.busy_units();
        let Some(cascade) = self.cascades.get_mut(&job) else {
            return;
        };
        if cascade.phase != DispatchPhase::Searching {
            return;
        }
        while let Some(candidate) = cascade.pool.pop_front() {
            if !cascade.tried.contains(&candidate.unit) && !busy.contains(&candidate.unit) {
                self.offer(job, candidate, ctx);
                return;
            }
        }
        let mut exclude: Vec<UnitId> = cascade.tried.iter().copied().collect();
        exclude.extend(busy);
        let query = FindNearest {
            kind: cascade.kind,
            point: cascade.point,
            k: self.settings.pool_for(cascade.priority),
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
            } else if cascade.widened && self.settings.queue {
                self.enqueue(job, ctx);
            } else if cascade.widened {
                self.give_up(job, ctx);
            } else {
                cascade.widened = true;
                cascade.radius_m *= widen_factor;
                self.advance(job, ctx);
            }
            return;
        }
        let best_eta = found.first().map(|nearest| nearest.eta);
        let held_back = found.len() <= self.settings.reserve_for(cascade.priority);
        cascade.pool = found.into();
        if held_back {
            // Too few units free near it: they are left to more urgent calls while it waits queued.
            self.enqueue(job, ctx);
            return;
        }
        if self.settings.queue && self.wants_preemption(job, best_eta) {
            // Solved from the queue, where a preemption is asked for before the far unit is offered.
            self.enqueue(job, ctx);
            return;
        }
        self.advance(job, ctx);
    }

    /// Re-checks the candidate (the list it came from may be seconds or minutes old), then records the
    /// offer, announces it and starts its timer. A candidate that went busy, off duty or silent
    /// meanwhile is skipped without counting as tried.
    fn offer(&mut self, job: EntityKey, candidate: Nearby, ctx: &mut Context<Self>) {
        let Some(cascade) = self.cascades.get_mut(&job) else {
            return;
        };
        let unit = candidate.unit;
        cascade.offer_seq += 1;
        let seq = cascade.offer_seq;
        cascade.phase = DispatchPhase::Recording { unit };
        self.offered.insert(unit, job);
        let check = self.fleet.offerable.send(IsOfferable(unit));
        ctx.spawn(check.into_actor(self).map(move |offerable, act, ctx| {
            let Some(cascade) = act.cascades.get_mut(&job) else {
                return;
            };
            if cascade.phase != (DispatchPhase::Recording { unit }) || cascade.offer_seq != seq {
                return;
            }
            if !offerable.unwrap_or(false) {
                tracing::debug!(%job, %unit, "candidate no longer offerable; skipped");
                cascade.note = None;
                cascade.phase = DispatchPhase::Searching;
                act.offered.remove(&unit);
                act.advance(job, ctx);
                return;
            }
            cascade.tried.insert(unit);
            act.record_offer(job, candidate, seq, ctx);
        }));
    }

    /// Records a checked offer in the job's timeline, then announces it and starts its timer.
    fn record_offer(&mut self, job: EntityKey, candidate: Nearby, seq: u64, ctx: &mut Context<Self>) {
        let Some(cascade) = self.cascades.get_mut(&job) else {
            return;
        };
        let unit = candidate.unit;
        let note = cascade.note.take();
        let record = self.record(job, offer_event(job, unit), format!("offer:{seq}"), note);
        ctx.spawn(record.into_actor(self).map(move |recorded, act, ctx| {
            let Some(cascade) = act.cascades.get_mut(&job) else {
                return;
            };
            if cascade.phase != (DispatchPhase::Recording { unit }) || cascade.offer_seq != seq {
                return;
            }
            if let Err(EntityError::UnitBusy(_, busy)) = recorded {
                // Another node offered the unit first: not tried, only held until that offer ends.
                tracing::debug!(%job, unit = %busy, "candidate holds another open offer; skipped");
                cascade.tried.remove(&unit);
                cascade.note = None;
                cascade.phase = DispatchPhase::Searching;
                act.offered.remove(&unit);
                act.hold_elsewhere(unit, BUSY_ELSEWHERE_HOLD);
                act.advance(job, ctx);
                return;
            }
            if let Err(err) = recorded {
                tracing::info!(%job, error = %err, "job refused the offer; stopping its cascade");
                act.offered.remove(&unit);
                act.finish(job, DispatchOutcome::Cancelled, ctx);
                return;
            }
            // The job left the queue's state: a later wait is recorded afresh.
            cascade.queue_mark = QueueMark::Unrecorded;
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

    /// Nobody feasible is free now (radius widened, fallback tried): the job waits in the queue, and
    /// its timeline says whether anyone is on duty to wait for.
    fn enqueue(&mut self, job: EntityKey, ctx: &mut Context<Self>) {
        let Some(cascade) = self.cascades.get_mut(&job) else {
            return;
        };
        cascade.phase = DispatchPhase::Queued;
        cascade.reset_search();
        self.mark_queued(job, ctx);
        self.request_resolve(self.settings.resolve_delay, ctx);
    }

    /// Records `queued`, or `no_unit_available` (announced, and escalated to dispatchers) when no unit
    /// of an acceptable kind is on duty in the service area, unless the timeline already says so. The
    /// job is not offered while its mark is being recorded, so the timeline's order is the real one.
    fn mark_queued(&mut self, job: EntityKey, ctx: &mut Context<Self>) {
        let widen_factor = self.settings.widen_factor;
        let Some(cascade) = self.cascades.get_mut(&job) else {
            return;
        };
        if cascade.marking || cascade.phase != DispatchPhase::Queued {
            return;
        }
        cascade.marking = true;
        let radius_m = cascade.priority.search_radius_m() * widen_factor;
        let query = CountOnDuty {
            kinds: cascade.kinds().into_iter().map(|(kind, _)| kind).collect(),
            point: cascade.point,
            max_radius_m: radius_m,
        };
        let count = self.fleet.on_duty.send(query);
        ctx.spawn(count.into_actor(self).map(move |count, act, ctx| {
            let Some(cascade) = act.cascades.get_mut(&job) else {
                return;
            };
            // An unanswered count (the fleet actor gone) is taken as "someone is on duty".
            let on_duty = count.map_or(true, |n| n > 0);
            let mark = if on_duty {
                QueueMark::Queued
            } else {
                QueueMark::NoUnit
            };
            if cascade.phase != DispatchPhase::Queued || cascade.queue_mark == mark {
                cascade.marking = false;
                return;
            }
            cascade.queue_steps += 1;
            let step = cascade.queue_steps;
            let (event, name) = if on_duty {
                (queue_event(job), "queue")
            } else {
                (no_unit_event(job), "no_unit")
            };
            let record = act.record(job, event, format!("{name}:{step}"), None);
            ctx.spawn(record.into_actor(act).map(move |recorded, act, ctx| {
                let Some(cascade) = act.cascades.get_mut(&job) else {
                    return;
                };
                cascade.marking = false;
                match recorded {
                    Ok(()) => cascade.queue_mark = mark,
                    // Already recorded: a call a preemption sent back to the queue is stored `queued`
                    // before its cascade starts again here.
                    Err(EntityError::Rejected(TransitionError::Illegal { state, .. }))
                        if Some(state) == mark.status() =>
                    {
                        cascade.queue_mark = mark;
                    }
                    Err(err) => {
                        tracing::warn!(%job, error = %err, "recording the wait in the queue failed");
                        act.request_resolve(act.settings.resolve_delay, ctx);
                        return;
                    }
                }
                if !on_duty {
                    act.publish(
                        Topic::entity(job),
                        DomainEvent::NoUnitAvailable {
                            request: job,
                            radius_m,
                        },
                        ctx,
                    );
                    let reason = format!(
                        "no unit of an acceptable kind is on duty within {radius_m:.0} m; the call stays queued"
                    );
                    act.publish(
                        Topic::dispatch(),
                        DomainEvent::Escalated { request: job, reason },
                        ctx,
                    );
                }
                // The job could not be offered while its mark was being recorded.
                act.request_resolve(act.settings.resolve_delay, ctx);
            }));
        }));
    }

    /// One-shot policy: nobody left even after widening: record `no_unit_available`, escalate,
    /// announce, and stop.
    fn give_up(&mut self, job: EntityKey, ctx: &mut Context<Self>) {
        let Some(cascade) = self.cascades.get(&job) else {
            return;
        };
        let radius_m = cascade.radius_m;
        self.finish(job, DispatchOutcome::NoUnitAvailable, ctx);
        let record = self.record(job, no_unit_event(job), "no_unit".to_owned(), None);
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
            let reason = format!("no unit accepted within {radius_m:.0} m");
            act.publish(
                Topic::dispatch(),
                DomainEvent::Escalated { request: job, reason },
                ctx,
            );
        }));
    }

    /// Whether any job waits in the queue.
    fn has_queue(&self) -> bool {
        self.cascades.values().any(|c| c.phase == DispatchPhase::Queued)
    }

    /// Units not to offer now: those holding this dispatcher's offers and those held elsewhere (the
    /// lapsed holds are forgotten here).
    fn busy_units(&mut self) -> Vec<UnitId> {
        let now = tokio::time::Instant::now();
        self.held_elsewhere.retain(|_, until| *until > now);
        self.offered
            .keys()
            .chain(self.held_elsewhere.keys())
            .copied()
            .collect()
    }

    /// Leaves `unit` out of every search for `hold` (or longer, if held longer already).
    fn hold_elsewhere(&mut self, unit: UnitId, hold: Duration) {
        let until = tokio::time::Instant::now() + hold.min(MAX_HOLD_ELSEWHERE);
        let entry = self.held_elsewhere.entry(unit).or_insert(until);
        *entry = (*entry).max(until);
    }

    /// Makes sure the queue is re-solved within `after` (an earlier pending re-solve stands).
    fn request_resolve(&mut self, after: Duration, ctx: &mut Context<Self>) {
        if self.resolving {
            self.resolve_again = true;
            return;
        }
        let at = tokio::time::Instant::now() + after;
        if let Some((pending_at, key)) = self.resolve_timer {
            if pending_at <= at {
                return;
            }
            self.timers.cancel(key);
        }
        let key = self.schedule(after, Due::Resolve, ctx);
        self.resolve_timer = Some((at, key));
    }

    /// Re-solves the queue: asks the fleet index for each waiting job's feasible free units (every
    /// acceptable kind, within the widened radius), then matches them in [`Self::on_resolved`].
    fn resolve(&mut self, ctx: &mut Context<Self>) {
        self.resolve_timer = None;
        let mut waiting: Vec<_> = self
            .cascades
            .iter()
            .filter(|(_, c)| c.is_waiting())
            .map(|(job, c)| (c.priority.rank(), c.called_at, job.raw_id(), *job))
            .collect();
        if waiting.is_empty() {
            if self.has_queue() {
                self.request_resolve(self.settings.queue_recheck, ctx);
            }
            return;
        }
        waiting.sort_by_key(|w| (w.0, w.1, w.2));
        let order: Vec<EntityKey> = waiting.into_iter().map(|w| w.3).collect();
        let offered: Vec<UnitId> = self.busy_units();
        let mut queries = Vec::new();
        for job in &order {
            let Some(cascade) = self.cascades.get(job) else {
                continue;
            };
            let radius_m = cascade.priority.search_radius_m() * self.settings.widen_factor;
            for (kind, fallback) in cascade.kinds() {
                let mut exclude = offered.clone();
                exclude.extend(cascade.tried.iter().copied());
                let query = FindNearest {
                    kind,
                    point: cascade.point,
                    k: self.settings.pool_for(cascade.priority),
                    max_radius_m: radius_m,
                    filter: SearchFilter {
                        required: cascade.required,
                        exclude,
                    },
                };
                queries.push((*job, fallback, query));
            }
        }
        self.resolving = true;
        let find = self.fleet.find.clone();
        let penalty_ms = i64::try_from(FALLBACK_PENALTY.as_millis()).unwrap_or(i64::MAX);
        let search = async move {
            let mut found: HashMap<EntityKey, Candidates> = HashMap::new();
            for (job, fallback, query) in queries {
                let nearby = find.send(query).await.unwrap_or_default();
                let entry = found.entry(job).or_default();
                for candidate in nearby {
                    let eta_ms = i64::try_from(candidate.eta.as_millis()).unwrap_or(i64::MAX / 2);
                    let cost = if fallback {
                        eta_ms.saturating_add(penalty_ms)
                    } else {
                        eta_ms
                    };
                    entry.push((candidate, cost));
                }
            }
            for candidates in found.values_mut() {
                candidates.sort_by_key(|(_, cost)| *cost);
            }
            found
        };
        ctx.spawn(
            search
                .into_actor(self)
                .map(move |found, act, ctx| act.on_resolved(order, found, ctx)),
        );
    }

    /// Matches waiting jobs to free units, one priority tier at a time (higher tiers choose first), and
    /// sends the offers out in parallel. Jobs left unmatched stay queued, their wait recorded.
    fn on_resolved(
        &mut self,
        order: Vec<EntityKey>,
        found: HashMap<EntityKey, Candidates>,
        ctx: &mut Context<Self>,
    ) {
        self.resolving = false;
        let waiting: Vec<EntityKey> = order
            .into_iter()
            .filter(|job| self.cascades.get(job).is_some_and(Cascade::is_waiting))
            .collect();
        // Units this node offered meanwhile are not free.
        let mut taken: HashSet<UnitId> = self.busy_units().into_iter().collect();
        let mut matched: Vec<(EntityKey, Nearby, String)> = Vec::new();
        let mut asks: Vec<(EntityKey, Option<Duration>)> = Vec::new();
        let mut tier_start = 0;
        while tier_start < waiting.len() {
            let rank = self
                .cascades
                .get(&waiting[tier_start])
                .map_or(u8::MAX, |c| c.priority.rank());
            let tier_end = waiting[tier_start..]
                .iter()
                .position(|job| self.cascades.get(job).map_or(u8::MAX, |c| c.priority.rank()) != rank)
                .map_or(waiting.len(), |n| tier_start + n);
            // A tier that must leave a reserve free to more urgent calls takes at most the free units
            // beyond it, oldest calls first; the others wait queued.
            let mut tier: Vec<EntityKey> = waiting[tier_start..tier_end].to_vec();
            let reserve = self
                .cascades
                .get(&waiting[tier_start])
                .map_or(0, |c| self.settings.reserve_for(c.priority));
            if reserve > 0 {
                let free: HashSet<UnitId> = tier
                    .iter()
                    .filter_map(|job| found.get(job))
                    .flatten()
                    .map(|(candidate, _)| candidate.unit)
                    .filter(|unit| !taken.contains(unit))
                    .collect();
                let mut allowed = free.len().saturating_sub(reserve);
                tier.retain(|job| {
                    let feasible = found.get(job).is_some_and(|c| !c.is_empty());
                    let keep = feasible && allowed > 0;
                    allowed -= usize::from(keep);
                    keep
                });
            }
            let tier = tier.as_slice();
            tier_start = tier_end;
            let mut units: Vec<UnitId> = Vec::new();
            for job in tier {
                for (candidate, _) in found.get(job).into_iter().flatten() {
                    if !taken.contains(&candidate.unit) && !units.contains(&candidate.unit) {
                        units.push(candidate.unit);
                    }
                }
            }
            let competing = tier
                .iter()
                .filter(|job| found.get(job).is_some_and(|c| !c.is_empty()))
                .count();
            if competing >= 2 && units.len() >= 2 {
                matched.extend(self.match_batch(tier, &units, &found, self.settings.batch_deadline));
            } else {
                // One job (or one unit): the oldest call of the tier takes its cheapest free unit.
                for job in tier {
                    let best = found
                        .get(job)
                        .into_iter()
                        .flatten()
                        .find(|(candidate, _)| !taken.contains(&candidate.unit));
                    let best_eta = best.map(|(candidate, _)| candidate.eta);
                    if self.wants_preemption(*job, best_eta) {
                        asks.push((*job, best_eta));
                        continue;
                    }
                    if let Some((candidate, _)) = best {
                        taken.insert(candidate.unit);
                        let note = format!(
                            "queue: nearest free unit, eta {:.0} s",
                            candidate.eta.as_secs_f64()
                        );
                        matched.push((*job, *candidate, note));
                    }
                }
                continue;
            }
            taken.extend(matched.iter().map(|(_, candidate, _)| candidate.unit));
        }
        let offered_jobs: HashSet<EntityKey> = matched.iter().map(|(job, ..)| *job).collect();
        // Urgent calls a batch left without a unit may take one from less urgent work.
        for job in &waiting {
            if !offered_jobs.contains(job)
                && !asks.iter().any(|(asked, _)| asked == job)
                && self.wants_preemption(*job, None)
            {
                asks.push((*job, None));
            }
        }
        let asked = !asks.is_empty();
        for (job, best_eta) in asks {
            self.ask_preemption(job, best_eta, ctx);
        }
        for (job, candidate, note) in matched {
            if let Some(cascade) = self.cascades.get_mut(&job) {
                cascade.phase = DispatchPhase::Searching;
                cascade.note = Some(note);
            }
            self.offer(job, candidate, ctx);
        }
        for job in waiting.iter().filter(|job| !offered_jobs.contains(job)) {
            let unsettled = self
                .cascades
                .get(job)
                .is_some_and(|c| c.queue_mark != QueueMark::Queued);
            if unsettled {
                self.mark_queued(*job, ctx);
            }
        }
        if std::mem::take(&mut self.resolve_again) {
            self.request_resolve(self.settings.resolve_delay, ctx);
        } else if asked {
            // Offer the far free unit if no preemption comes of it.
            self.request_resolve(PREEMPTION_WAIT, ctx);
        } else if self.has_queue() {
            self.request_resolve(self.settings.queue_recheck, ctx);
        }
    }

    /// One tier's jobs × free units by the batch assignment (minimum total cost), each pair noted with
    /// the method and its time for the timeline.
    fn match_batch(
        &self,
        tier: &[EntityKey],
        units: &[UnitId],
        found: &HashMap<EntityKey, Candidates>,
        deadline: Duration,
    ) -> Vec<(EntityKey, Nearby, String)> {
        let started = std::time::Instant::now();
        let mut cells = vec![INFEASIBLE_MS; tier.len() * units.len()];
        for (row, job) in tier.iter().enumerate() {
            for (candidate, cost) in found.get(job).into_iter().flatten() {
                if let Some(col) = units.iter().position(|u| *u == candidate.unit) {
                    let cell = &mut cells[row * units.len() + col];
                    *cell = (*cell).min(*cost);
                }
            }
        }
        let Some(costs) = CostMatrix::from_cells(tier.len(), units.len(), cells) else {
            return Vec::new();
        };
        let (method, pairs) = solve_within(&costs, deadline);
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        pairs
            .into_iter()
            .filter(|&(row, col)| costs.at(row, col) < INFEASIBLE_MS)
            .filter_map(|(row, col)| {
                let job = tier[row];
                let unit = units[col];
                let (candidate, _) = found.get(&job)?.iter().find(|(c, _)| c.unit == unit)?;
                let note = format!(
                    "batch {}: {} calls x {} units in {elapsed_ms:.2} ms, eta {:.0} s",
                    method.name(),
                    tier.len(),
                    units.len(),
                    candidate.eta.as_secs_f64()
                );
                Some((job, *candidate, note))
            })
            .collect()
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
        let record = self.record(job, assign_event(job, unit), format!("assign:{unit}"), None);
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
        self.start(msg, ctx);
        Ok(())
    }
}

impl Dispatcher {
    /// Starts a job's cascade, or puts it in the queue when calls already wait for the same kinds.
    fn start(&mut self, msg: Dispatch, ctx: &mut Context<Self>) {
        self.started += 1;
        let nonce = self.incarnation.wrapping_add(self.started);
        let mut cascade = Cascade::new(&msg, nonce);
        // With calls already waiting for the same kinds of unit, a new call is solved together with
        // them (in priority order) instead of taking the next free unit ahead of them.
        let joins_queue = self
            .cascades
            .values()
            .any(|waiting| waiting.phase == DispatchPhase::Queued && waiting.competes_with(&cascade));
        if joins_queue {
            cascade.phase = DispatchPhase::Queued;
        }
        self.cascades.insert(msg.job, cascade);
        if joins_queue {
            self.request_resolve(self.settings.resolve_delay, ctx);
        } else {
            self.advance(msg.job, ctx);
        }
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
            if self.has_queue() {
                self.request_resolve(self.settings.resolve_delay, ctx);
            }
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
        let record = self.record(job, lapse_event(job), format!("lapse:{}", msg.seq), None);
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
            // The unit that let the offer lapse is free for the calls waiting.
            if act.has_queue() {
                act.request_resolve(act.settings.resolve_delay, ctx);
            }
        }));
    }
}

impl Handler<OfferedElsewhere> for Dispatcher {
    type Result = ();

    fn handle(&mut self, msg: OfferedElsewhere, _: &mut Context<Self>) {
        if self.cascades.contains_key(&msg.job) {
            return;
        }
        let left = (msg.expires_at - self.ports.clock.now())
            .to_std()
            .unwrap_or_default();
        if !left.is_zero() {
            self.hold_elsewhere(msg.unit, left);
        }
    }
}

impl Handler<OfferSettled> for Dispatcher {
    type Result = bool;

    fn handle(&mut self, msg: OfferSettled, ctx: &mut Context<Self>) -> bool {
        let OfferSettled { job, unit, accepted } = msg;
        // Whatever the job, the unit's offer is over.
        self.held_elsewhere.remove(&unit);
        let Some(phase) = self.cascades.get(&job).map(|c| c.phase) else {
            return false;
        };
        match phase {
            DispatchPhase::Done(_) => false,
            // This dispatcher's own claim of that unit is in flight and will finish the cascade.
            DispatchPhase::Claiming { unit: claiming } if accepted && claiming == unit => false,
            _ if accepted => {
                self.assigned_elsewhere(job, unit, ctx);
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
                if self.has_queue() {
                    self.request_resolve(self.settings.resolve_delay, ctx);
                }
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
                // A unit it held an offer with is free for the calls waiting.
                if self.has_queue() {
                    self.request_resolve(self.settings.resolve_delay, ctx);
                }
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

impl Handler<SupplyChanged> for Dispatcher {
    type Result = ();

    fn handle(&mut self, _: SupplyChanged, ctx: &mut Context<Self>) {
        if self.has_queue() {
            self.request_resolve(self.settings.resolve_delay, ctx);
        }
    }
}

impl Handler<ActiveJobs> for Dispatcher {
    type Result = Vec<EntityKey>;

    fn handle(&mut self, _: ActiveJobs, _: &mut Context<Self>) -> Vec<EntityKey> {
        self.cascades
            .iter()
            .filter(|(_, c)| !matches!(c.phase, DispatchPhase::Done(_)))
            .map(|(job, _)| *job)
            .collect()
    }
}
