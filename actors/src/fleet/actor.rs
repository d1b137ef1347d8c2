//! [`FleetActor`]: owns this node's [`FleetIndex`] and answers searches as messages.

use std::sync::Arc;

use actix::{Actor, Addr, Context, Handler, Message, Recipient};

use super::{FleetIndex, Nearby, SearchFilter, Unit, UnitKind, UnitStatus, index::IndexError};
use crate::{ids::UnitId, ports::Clock, position::Position};

/// A location ping or status report: insert or replace the unit.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), IndexError>")]
pub struct UpsertUnit(pub Unit);

/// A unit left the fleet (deregistered, shift over for good).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Option<Unit>")]
pub struct RemoveUnit(pub UnitId);

/// A unit's availability changed (claimed elsewhere, released, went off duty).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "bool")]
pub struct SetUnitStatus {
    /// The unit.
    pub unit: UnitId,
    /// Its new status.
    pub status: UnitStatus,
}

/// A nearest-available query; see [`FleetIndex::nearest_available`].
#[derive(Debug, Clone, Message)]
#[rtype(result = "Vec<Nearby>")]
pub struct FindNearest {
    /// Which kind of unit.
    pub kind: UnitKind,
    /// Where the job is.
    pub point: Position,
    /// How many candidates at most.
    pub k: usize,
    /// Search radius, metres.
    pub max_radius_m: f64,
    /// Capabilities and exclusions.
    pub filter: SearchFilter,
}

/// Is this unit still offerable now (available, fresh)? Asked at the moment of each offer.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "bool")]
pub struct IsOfferable(pub UnitId);

/// How many units of these kinds are on duty near a point; see [`FleetIndex::on_duty_within`].
#[derive(Debug, Clone, Message)]
#[rtype(result = "usize")]
pub struct CountOnDuty {
    /// Acceptable kinds.
    pub kinds: Vec<UnitKind>,
    /// Where the job is.
    pub point: Position,
    /// The service area's radius, metres.
    pub max_radius_m: f64,
}

/// The actor owning the fleet index of this node. Every node runs one and feeds it every location
/// update from the bus; searches are answered from memory.
pub struct FleetActor {
    index: FleetIndex,
    clock: Arc<dyn Clock>,
}

impl FleetActor {
    /// An actor over `index`, judging staleness with `clock`.
    pub fn new(index: FleetIndex, clock: Arc<dyn Clock>) -> Self {
        Self { index, clock }
    }
}

impl Actor for FleetActor {
    type Context = Context<Self>;
}

impl Handler<UpsertUnit> for FleetActor {
    type Result = Result<(), IndexError>;

    fn handle(&mut self, msg: UpsertUnit, _: &mut Context<Self>) -> Self::Result {
        self.index.upsert(msg.0)
    }
}

impl Handler<RemoveUnit> for FleetActor {
    type Result = Option<Unit>;

    fn handle(&mut self, msg: RemoveUnit, _: &mut Context<Self>) -> Self::Result {
        self.index.remove(msg.0)
    }
}

impl Handler<SetUnitStatus> for FleetActor {
    type Result = bool;

    fn handle(&mut self, msg: SetUnitStatus, _: &mut Context<Self>) -> Self::Result {
        self.index.set_status(msg.unit, msg.status)
    }
}

impl Handler<FindNearest> for FleetActor {
    type Result = Vec<Nearby>;

    fn handle(&mut self, msg: FindNearest, _: &mut Context<Self>) -> Self::Result {
        self.index.nearest_available(
            msg.kind,
            msg.point,
            msg.k,
            msg.max_radius_m,
            &msg.filter,
            self.clock.now(),
        )
    }
}

impl Handler<IsOfferable> for FleetActor {
    type Result = bool;

    fn handle(&mut self, msg: IsOfferable, _: &mut Context<Self>) -> bool {
        self.index.is_offerable(msg.0, self.clock.now())
    }
}

impl Handler<CountOnDuty> for FleetActor {
    type Result = usize;

    fn handle(&mut self, msg: CountOnDuty, _: &mut Context<Self>) -> usize {
        self.index
            .on_duty_within(&msg.kinds, msg.point, msg.max_radius_m, self.clock.now())
    }
}

/// How a dispatcher reaches a fleet index: the search and the status updates. A [`FleetActor`]'s address
/// converts into one; a server whose index lives elsewhere provides its own recipients.
#[derive(Clone)]
pub struct FleetLink {
    /// Answers nearest-available searches.
    pub find: Recipient<FindNearest>,
    /// Takes a unit's new availability.
    pub set_status: Recipient<SetUnitStatus>,
    /// Re-checks a candidate at the moment of its offer.
    pub offerable: Recipient<IsOfferable>,
    /// Counts units on duty around a job that joins the queue.
    pub on_duty: Recipient<CountOnDuty>,
}

impl From<Addr<FleetActor>> for FleetLink {
    fn from(addr: Addr<FleetActor>) -> Self {
        Self {
            find: addr.clone().recipient(),
            set_status: addr.clone().recipient(),
            offerable: addr.clone().recipient(),
            on_duty: addr.recipient(),
        }
    }
}

impl std::fmt::Debug for FleetLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FleetLink { .. }")
    }
}
