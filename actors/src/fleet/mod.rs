//! The fleet: units, their positions bucketed by H3 cell, and exact nearest-available search.

mod actor;
mod fast_hash;
mod index;
mod ring_bound;
mod shape;
mod speed;
mod unit;

pub use actor::{
    CountOnDuty, FindNearest, FleetActor, FleetLink, IsOfferable, RemoveUnit, SetUnitStatus, UpsertUnit,
};
pub use index::{DEFAULT_RESOLUTION, DEFAULT_STALE_AFTER, FleetIndex, IndexError, Nearby, SearchFilter};
pub use ring_bound::{EDGE_SAFETY_FACTOR, ring_lower_bound_m};
pub use speed::{ROAD_DETOUR_FACTOR, eta_for};
pub use unit::{Capabilities, Unit, UnitKind, UnitStatus};
