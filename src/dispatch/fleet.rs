//! [`FleetSearch`]: answers the dispatcher's fleet messages from this node's shared fleet index (the
//! index the bus keeps current with every node's location pings).

use actix::{Actor, Context, Handler};
use chrono::Utc;
use onemedi_actors::fleet::{CountOnDuty, FindNearest, IsOfferable, Nearby, SetUnitStatus};

use crate::bus::{SharedFleet, lock_fleet};

/// The dispatcher's view of the shared index.
pub struct FleetSearch {
    fleet: SharedFleet,
}

impl FleetSearch {
    pub fn new(fleet: SharedFleet) -> Self {
        Self { fleet }
    }
}

impl Actor for FleetSearch {
    type Context = Context<Self>;
}

impl Handler<FindNearest> for FleetSearch {
    type Result = Vec<Nearby>;

    fn handle(&mut self, msg: FindNearest, _: &mut Context<Self>) -> Vec<Nearby> {
        lock_fleet(&self.fleet).nearest_available(
            msg.kind,
            msg.point,
            msg.k,
            msg.max_radius_m,
            &msg.filter,
            Utc::now(),
        )
    }
}

impl Handler<IsOfferable> for FleetSearch {
    type Result = bool;

    fn handle(&mut self, msg: IsOfferable, _: &mut Context<Self>) -> bool {
        lock_fleet(&self.fleet).is_offerable(msg.0, Utc::now())
    }
}

impl Handler<CountOnDuty> for FleetSearch {
    type Result = usize;

    fn handle(&mut self, msg: CountOnDuty, _: &mut Context<Self>) -> usize {
        lock_fleet(&self.fleet).on_duty_within(&msg.kinds, msg.point, msg.max_radius_m, Utc::now())
    }
}

impl Handler<SetUnitStatus> for FleetSearch {
    type Result = bool;

    fn handle(&mut self, msg: SetUnitStatus, _: &mut Context<Self>) -> bool {
        lock_fleet(&self.fleet).set_status(msg.unit, msg.status)
    }
}
