//! A dispatchable unit as the fleet index sees it.

use std::ops::BitOr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{ids::UnitId, position::Position};

/// What kind of unit; each kind has its own buckets and speed profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitKind {
    /// Advanced life support ambulance (paramedic, cardiac monitor, drugs).
    AmbulanceAls,
    /// Basic life support ambulance.
    AmbulanceBls,
    /// Delivery rider (pharmacy orders).
    Rider,
    /// Lab sample collector.
    Phlebotomist,
}

impl UnitKind {
    /// Every kind, in index order.
    pub const ALL: [Self; 4] = [
        Self::AmbulanceAls,
        Self::AmbulanceBls,
        Self::Rider,
        Self::Phlebotomist,
    ];

    /// Dense index for per-kind tables.
    pub(crate) fn index(self) -> usize {
        match self {
            Self::AmbulanceAls => 0,
            Self::AmbulanceBls => 1,
            Self::Rider => 2,
            Self::Phlebotomist => 3,
        }
    }
}

/// Whether a unit can take work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitStatus {
    /// On duty and free: the only status ever offered.
    Available,
    /// Claimed for a job.
    Assigned,
    /// On duty but occupied otherwise (returning, restocking).
    Busy,
    /// Not working.
    OffDuty,
}

/// Equipment and skills, as a bit set; a search requires a subset of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Capabilities(u32);

impl Capabilities {
    /// Nothing in particular.
    pub const NONE: Self = Self(0);
    /// Cardiac monitor/defibrillator.
    pub const DEFIBRILLATOR: Self = Self(1);
    /// Mechanical ventilator.
    pub const VENTILATOR: Self = Self(1 << 1);
    /// Neonatal incubator.
    pub const NEONATAL: Self = Self(1 << 2);
    /// Bariatric stretcher.
    pub const BARIATRIC: Self = Self(1 << 3);
    /// Cold chain box (insulin, vaccines).
    pub const COLD_CHAIN: Self = Self(1 << 4);
    /// Trained for paediatric blood draws.
    pub const PAEDIATRIC_DRAW: Self = Self(1 << 5);

    /// Whether every capability in `required` is present.
    pub fn contains(self, required: Self) -> bool {
        self.0 & required.0 == required.0
    }

    /// The raw bits (for a database column).
    pub fn bits(self) -> u32 {
        self.0
    }

    /// From raw bits.
    pub fn from_bits(bits: u32) -> Self {
        Self(bits)
    }
}

impl BitOr for Capabilities {
    type Output = Self;

    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

/// One unit's latest known situation (what a location ping carries, plus its status).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Unit {
    /// Which unit.
    pub id: UnitId,
    /// What kind.
    pub kind: UnitKind,
    /// Where.
    pub position: Position,
    /// Direction of travel, degrees clockwise from north.
    pub heading_deg: f32,
    /// Ground speed, metres per second.
    pub speed_mps: f32,
    /// Availability.
    pub status: UnitStatus,
    /// Equipment and skills.
    pub capabilities: Capabilities,
    /// When the unit last reported; units silent for longer than the index's stale limit are never offered.
    pub last_seen: DateTime<Utc>,
}
