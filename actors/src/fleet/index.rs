//! [`FleetIndex`]: units bucketed by H3 cell per kind, with an exact ring-by-ring nearest search.
//!
//! Layout, tuned by the `fleet_nearest` and `fleet_upsert` benchmarks: a small map from unit id to
//! (kind, cell, slot); per kind, a map from cell to a bucket whose `slots` hold only what the search
//! reads (48 bytes a unit) and whose `units` hold the rest. A unit leaving a bucket leaves a vacant slot
//! that the next arrival reuses, so a move touches no other unit's entry.

use std::{collections::HashMap, time::Duration};

use chrono::{DateTime, Utc};
use geo::Haversine;
use h3o::{CellIndex, Resolution};

use super::{
    Capabilities, Unit, UnitKind, UnitStatus, fast_hash::BuildKeyHasher, ring_bound::ring_lower_bound_m,
    shape::CellShapes, speed::eta_for,
};
use crate::{ids::UnitId, position::Position};

/// Bucket resolution chosen by the `fleet_nearest` benchmark (see `bench-results/actors-fleet-nearest.md`):
/// resolution 9 (edge ≈ 174 m) holds about a dozen units per cell at city density, so a nearest-10
/// search reads the origin cell and its first ring and prunes most of the second, where resolution 8
/// scans ~100 units per cell and resolution 10 probes many near-empty cells.
pub const DEFAULT_RESOLUTION: Resolution = Resolution::Nine;

/// A unit that has not reported for this long is never offered (GPS lost, app killed, phone off).
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(90);

/// Once a search would read more cells than this multiple of the occupied buckets, it scans all
/// buckets instead: cheaper, and exact for any radius (sparse fleets, continental radii).
const FULL_SCAN_CELL_RATIO: usize = 2;

/// One unit's hot data inside a bucket, laid out for the scan (48 bytes).
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// Position on the unit sphere; squared chord length ranks like great-circle distance.
    xyz: [f64; 3],
    id: UnitId,
    last_seen_ms: i64,
    capabilities: Capabilities,
    /// A vacant slot reads as off duty, so the scan skips it without another check.
    status: UnitStatus,
    occupied: bool,
}

/// The units of one kind in one cell, with the cell's geometry cached for the search.
#[derive(Debug)]
struct Bucket {
    /// The cell's centre on the unit sphere.
    centre: [f64; 3],
    /// Largest chord from `centre` to any unit ever placed here (never shrinks), so
    /// `|query − centre| − reach` is a lower bound on the chord to every unit of the bucket.
    reach: f64,
    /// The cells at grid distance 1 and then 2, computed once when the bucket is created;
    /// `None` when H3 needs its slow path here (next to a pentagon).
    near: Option<(Box<[CellIndex]>, usize)>,
    /// The cell's own shape and its first ring's, so most moves are placed without asking H3.
    shapes: CellShapes,
    slots: Vec<Slot>,
    /// `units[i]` is the full record of `slots[i]`; kept apart so the scan reads less memory.
    units: Vec<Unit>,
    /// Vacant slot indexes, reused before the vectors grow.
    vacant: Vec<usize>,
    /// Occupied slots.
    live: usize,
}

impl Bucket {
    fn new(cell: CellIndex) -> Self {
        let centre = h3o::LatLng::from(cell);
        let centre = Position::new(centre.lat(), centre.lng()).map_or([0.0; 3], Position::unit_vector);
        let ring1: Option<Vec<CellIndex>> = cell.grid_ring_fast(1).collect();
        let ring2: Option<Vec<CellIndex>> = cell.grid_ring_fast(2).collect();
        let near = ring1.zip(ring2).map(|(mut r1, r2)| {
            let ring1_len = r1.len();
            r1.extend(r2);
            (r1.into_boxed_slice(), ring1_len)
        });
        let shapes = CellShapes::of(std::iter::once(cell).chain(cell.grid_ring::<Vec<_>>(1)));
        Self {
            centre,
            reach: 0.0,
            near,
            shapes,
            slots: Vec::new(),
            units: Vec::new(),
            vacant: Vec::new(),
            live: 0,
        }
    }

    /// The cached ring at grid distance 1 or 2.
    fn cached_ring(&self, distance: u32) -> Option<&[CellIndex]> {
        let (cells, ring1_len) = self.near.as_ref()?;
        match distance {
            1 => cells.get(..*ring1_len),
            2 => cells.get(*ring1_len..),
            _ => None,
        }
    }

    /// Stores a unit, in a vacant slot if there is one; returns its slot.
    fn place(&mut self, slot: Slot, unit: Unit) -> usize {
        self.reach = self.reach.max(chord(self.centre, slot.xyz));
        self.live += 1;
        match self.vacant.pop() {
            Some(i) if i < self.slots.len() && i < self.units.len() => {
                self.slots[i] = slot;
                self.units[i] = unit;
                i
            }
            _ => {
                self.slots.push(slot);
                self.units.push(unit);
                self.slots.len() - 1
            }
        }
    }

    /// Overwrites an occupied slot in place.
    fn update(&mut self, i: usize, slot: Slot, unit: Unit) {
        self.reach = self.reach.max(chord(self.centre, slot.xyz));
        if let (Some(s), Some(u)) = (self.slots.get_mut(i), self.units.get_mut(i)) {
            *s = slot;
            *u = unit;
        }
    }

    /// Empties slot `i` for reuse.
    fn vacate(&mut self, i: usize) {
        if let Some(s) = self.slots.get_mut(i).filter(|s| s.occupied) {
            s.occupied = false;
            s.status = UnitStatus::OffDuty;
            self.vacant.push(i);
            self.live -= 1;
        }
    }

    fn occupied(&self) -> impl Iterator<Item = &Unit> {
        self.slots
            .iter()
            .zip(&self.units)
            .filter(|(s, _)| s.occupied)
            .map(|(_, u)| u)
    }
}

/// Where a unit lives in the index.
#[derive(Debug, Clone, Copy)]
struct Entry {
    kind: UnitKind,
    cell: CellIndex,
    slot: usize,
}

/// Extra conditions of a search.
#[derive(Debug, Clone, Default)]
pub struct SearchFilter {
    /// Capabilities a unit must have (all of them).
    pub required: Capabilities,
    /// Units never to return (e.g. they declined this job, or hold an offer elsewhere).
    pub exclude: Vec<UnitId>,
}

/// One search result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Nearby {
    /// The unit.
    pub unit: UnitId,
    /// Where it is.
    pub position: Position,
    /// Great-circle distance to the search point, metres (on `geo`'s `Haversine` sphere).
    pub distance_m: f64,
    /// Estimated arrival time from the kind's speed profile.
    pub eta: Duration,
}

/// The in-memory fleet index.
#[derive(Debug)]
pub struct FleetIndex {
    resolution: Resolution,
    stale_after_ms: i64,
    units: HashMap<UnitId, Entry, BuildKeyHasher>,
    /// Per kind ([`UnitKind::index`]): cell → units in that cell. Buckets are kept when they empty out
    /// (their cached geometry is costly to rebuild); see [`FleetIndex::drop_empty_buckets`].
    buckets: [HashMap<CellIndex, Bucket, BuildKeyHasher>; 4],
}

/// Why a unit could not be indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    /// The position could not be placed in an H3 cell.
    #[error("position cannot be indexed")]
    Unindexable,
}

impl Default for FleetIndex {
    fn default() -> Self {
        Self::new(DEFAULT_RESOLUTION, DEFAULT_STALE_AFTER)
    }
}

impl FleetIndex {
    /// An empty index bucketing at `resolution`, never offering units silent for `stale_after`.
    pub fn new(resolution: Resolution, stale_after: Duration) -> Self {
        Self {
            resolution,
            stale_after_ms: i64::try_from(stale_after.as_millis()).unwrap_or(i64::MAX),
            units: HashMap::default(),
            buckets: Default::default(),
        }
    }

    /// The bucket resolution.
    pub fn resolution(&self) -> Resolution {
        self.resolution
    }

    /// Number of indexed units.
    pub fn len(&self) -> usize {
        self.units.len()
    }

    /// Whether no unit is indexed.
    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    /// The latest known state of a unit.
    pub fn get(&self, id: UnitId) -> Option<&Unit> {
        let entry = self.units.get(&id)?;
        self.buckets[entry.kind.index()]
            .get(&entry.cell)?
            .units
            .get(entry.slot)
    }

    /// Every indexed unit, in no particular order.
    pub fn units(&self) -> impl Iterator<Item = &Unit> {
        self.buckets
            .iter()
            .flat_map(|buckets| buckets.values())
            .flat_map(Bucket::occupied)
    }

    /// Inserts or replaces a unit (a location ping or a status change), moving it between cells as needed.
    pub fn upsert(&mut self, unit: Unit) -> Result<(), IndexError> {
        let slot = Slot {
            xyz: unit.position.unit_vector(),
            id: unit.id,
            last_seen_ms: unit.last_seen.timestamp_millis(),
            capabilities: unit.capabilities,
            status: unit.status,
            occupied: true,
        };
        let previous = self.units.get(&unit.id).copied();
        let mut cell = None;
        if let Some(old) = previous.filter(|old| old.kind == unit.kind)
            && let Some(bucket) = self.buckets[old.kind.index()].get_mut(&old.cell)
        {
            // Still in the old cell, or in one of its neighbours: no need to ask H3.
            let known = bucket.shapes.locate(slot.xyz);
            let new_cell = match known {
                Some(cell) => cell,
                None => cell_of(unit.position, self.resolution)?,
            };
            if new_cell == old.cell {
                bucket.update(old.slot, slot, unit);
                return Ok(());
            }
            cell = Some(new_cell);
        }
        let cell = match cell {
            Some(cell) => cell,
            None => cell_of(unit.position, self.resolution)?,
        };
        if let Some(old) = previous
            && let Some(bucket) = self.buckets[old.kind.index()].get_mut(&old.cell)
        {
            bucket.vacate(old.slot);
        }
        let bucket = self.buckets[unit.kind.index()]
            .entry(cell)
            .or_insert_with(|| Bucket::new(cell));
        let slot = bucket.place(slot, unit);
        self.units.insert(
            unit.id,
            Entry {
                kind: unit.kind,
                cell,
                slot,
            },
        );
        Ok(())
    }

    /// Changes a unit's status in place; `false` if the unit is unknown.
    pub fn set_status(&mut self, id: UnitId, status: UnitStatus) -> bool {
        let Some(entry) = self.units.get(&id) else {
            return false;
        };
        let Some(bucket) = self.buckets[entry.kind.index()].get_mut(&entry.cell) else {
            return false;
        };
        if let (Some(s), Some(u)) = (bucket.slots.get_mut(entry.slot), bucket.units.get_mut(entry.slot)) {
            s.status = status;
            u.status = status;
        }
        true
    }

    /// Removes a unit; returns its last state.
    pub fn remove(&mut self, id: UnitId) -> Option<Unit> {
        let entry = self.units.remove(&id)?;
        let bucket = self.buckets[entry.kind.index()].get_mut(&entry.cell)?;
        let unit = bucket.units.get(entry.slot).copied();
        bucket.vacate(entry.slot);
        unit
    }

    /// Forgets buckets without units (and their cached geometry), e.g. once a day; searches stay exact
    /// either way.
    pub fn drop_empty_buckets(&mut self) {
        for buckets in &mut self.buckets {
            buckets.retain(|_, bucket| bucket.live > 0);
        }
    }

    /// Whether `id` may be offered work at `now`: indexed, `Available`, and heard from within the stale
    /// limit. Asked at the moment of each offer, because a candidate list ages while a cascade waits.
    pub fn is_offerable(&self, id: UnitId, now: DateTime<Utc>) -> bool {
        self.get(id).is_some_and(|unit| {
            unit.status == UnitStatus::Available
                && now.signed_duration_since(unit.last_seen).num_milliseconds() <= self.stale_after_ms
        })
    }

    /// How many units of the given kinds are on duty (any status but off duty, heard from within the
    /// stale limit) within `max_radius_m` of `point`: zero means nobody could ever take the job there
    /// until a unit comes on duty. A linear pass; asked only when a job joins the queue.
    pub fn on_duty_within(
        &self,
        kinds: &[UnitKind],
        point: Position,
        max_radius_m: f64,
        now: DateTime<Utc>,
    ) -> usize {
        self.units()
            .filter(|unit| kinds.contains(&unit.kind) && unit.status != UnitStatus::OffDuty)
            .filter(|unit| {
                now.signed_duration_since(unit.last_seen).num_milliseconds() <= self.stale_after_ms
            })
            .filter(|unit| unit.position.distance_m(point) <= max_radius_m)
            .count()
    }

    /// The `k` nearest units of `kind` that are available, fresh (seen within the stale limit before
    /// `now`), match `filter`, and lie within `max_radius_m` of `point`; nearest first.
    ///
    /// Exact: the ring search stops only once the unsearched grid is provably farther than the k-th
    /// best distance found (or than the radius), so the answer equals a brute-force scan.
    pub fn nearest_available(
        &self,
        kind: UnitKind,
        point: Position,
        k: usize,
        max_radius_m: f64,
        filter: &SearchFilter,
        now: DateTime<Utc>,
    ) -> Vec<Nearby> {
        let buckets = &self.buckets[kind.index()];
        if k == 0 || buckets.is_empty() || max_radius_m.is_nan() || max_radius_m < 0.0 {
            return Vec::new();
        }
        let mut search = Search::new(self.stale_after_ms, point, k, max_radius_m, filter, now);
        let Ok(origin) = point.to_h3().map(|p| p.to_cell(self.resolution)) else {
            return Vec::new();
        };
        let origin_bucket = buckets.get(&origin);
        let full_scan_after = buckets.len().saturating_mul(FULL_SCAN_CELL_RATIO);
        let mut cells_read = 0_usize;
        let mut ring = Vec::new();
        for distance in 0_u32.. {
            let ring_cells = if distance == 0 { 1 } else { 6 * distance as usize };
            if cells_read + ring_cells > full_scan_after {
                search.clear();
                buckets.values().for_each(|bucket| search.scan(bucket));
                break;
            }
            let cached = origin_bucket.and_then(|b| b.cached_ring(distance));
            let cells = match cached {
                Some(cells) => cells,
                None => {
                    ring.clear();
                    ring.extend(origin.grid_ring::<Vec<_>>(distance));
                    ring.as_slice()
                }
            };
            if distance == 0 {
                if let Some(bucket) = origin_bucket {
                    search.scan(bucket);
                }
            } else {
                for cell in cells {
                    if let Some(bucket) = buckets.get(cell) {
                        search.scan(bucket);
                    }
                }
            }
            cells_read += ring_cells;
            let unsearched_m = ring_lower_bound_m(self.resolution, distance);
            if unsearched_m > max_radius_m || search.kth_distance_m().is_some_and(|d| d <= unsearched_m) {
                break;
            }
        }
        search.finish(kind)
    }
}

/// The H3 cell of a position at `resolution`.
fn cell_of(position: Position, resolution: Resolution) -> Result<CellIndex, IndexError> {
    Ok(position
        .to_h3()
        .map_err(|_| IndexError::Unindexable)?
        .to_cell(resolution))
}

/// Chord length between two points of the unit sphere.
fn chord(a: [f64; 3], b: [f64; 3]) -> f64 {
    chord2(a, b).sqrt()
}

/// Squared chord length between two points of the unit sphere.
fn chord2(a: [f64; 3], b: [f64; 3]) -> f64 {
    let (dx, dy, dz) = (a[0] - b[0], a[1] - b[1], a[2] - b[2]);
    dx * dx + dy * dy + dz * dz
}

/// Squared chord length on the unit sphere for a great-circle distance in metres.
fn chord2_of_m(distance_m: f64) -> f64 {
    let angle = (distance_m / Haversine.radius()).min(std::f64::consts::PI);
    let chord = 2.0 * (angle / 2.0).sin();
    chord * chord
}

/// Great-circle distance in metres for a squared chord length on the unit sphere.
fn m_of_chord2(chord2: f64) -> f64 {
    let half_chord = (chord2.max(0.0).sqrt() / 2.0).min(1.0);
    2.0 * half_chord.asin() * Haversine.radius()
}

/// The state of one nearest search: the best `k` so far, kept sorted by (distance, id).
struct Search<'a> {
    query: [f64; 3],
    point: Position,
    k: usize,
    /// Squared chord of the radius, slightly widened so float rounding never drops a unit exactly on it.
    max_chord2: f64,
    filter: &'a SearchFilter,
    /// `filter.exclude`, sorted: a dispatcher under load excludes every unit holding one of its offers
    /// (thousands), and each candidate is checked against it.
    excluded: Vec<UnitId>,
    fresh_after_ms: i64,
    /// The best units so far: (squared chord, id, position), sorted.
    best: Vec<(f64, UnitId, Position)>,
}

impl<'a> Search<'a> {
    fn new(
        stale_after_ms: i64,
        point: Position,
        k: usize,
        max_radius_m: f64,
        filter: &'a SearchFilter,
        now: DateTime<Utc>,
    ) -> Self {
        let mut excluded = filter.exclude.clone();
        excluded.sort_unstable();
        Self {
            query: point.unit_vector(),
            point,
            k,
            max_chord2: chord2_of_m(max_radius_m) * (1.0 + 1e-9),
            filter,
            excluded,
            fresh_after_ms: now.timestamp_millis().saturating_sub(stale_after_ms),
            best: Vec::with_capacity(k + 1),
        }
    }

    fn clear(&mut self) {
        self.best.clear();
    }

    /// The squared chord a unit must beat to enter the result.
    fn threshold(&self) -> f64 {
        if self.best.len() == self.k {
            self.best.last().map_or(self.max_chord2, |&(c, _, _)| c)
        } else {
            self.max_chord2
        }
    }

    fn scan(&mut self, bucket: &Bucket) {
        if bucket.live == 0 {
            return;
        }
        // Triangle inequality in 3-D: every unit here is at least |q − centre| − reach away.
        let gap = chord(self.query, bucket.centre) - bucket.reach;
        if gap > 0.0 && gap * gap > self.threshold() {
            return;
        }
        let [qx, qy, qz] = self.query;
        for (i, slot) in bucket.slots.iter().enumerate() {
            if slot.status != UnitStatus::Available {
                continue;
            }
            let (dx, dy, dz) = (slot.xyz[0] - qx, slot.xyz[1] - qy, slot.xyz[2] - qz);
            let chord2 = dx * dx + dy * dy + dz * dz;
            if chord2 > self.max_chord2 {
                continue;
            }
            if self.best.len() == self.k
                && let Some(&(worst, worst_id, _)) = self.best.last()
                && (chord2 > worst || (chord2 == worst && slot.id > worst_id))
            {
                continue;
            }
            if slot.last_seen_ms < self.fresh_after_ms
                || !slot.capabilities.contains(self.filter.required)
                || self.excluded.binary_search(&slot.id).is_ok()
            {
                continue;
            }
            let at = self
                .best
                .partition_point(|&(d, id, _)| d < chord2 || (d == chord2 && id < slot.id));
            let position = bucket.units.get(i).map_or(self.point, |u| u.position);
            self.best.insert(at, (chord2, slot.id, position));
            self.best.truncate(self.k);
        }
    }

    /// The k-th best distance, once k units have been found.
    fn kth_distance_m(&self) -> Option<f64> {
        (self.best.len() == self.k).then(|| self.best.last().map_or(0.0, |&(c, _, _)| m_of_chord2(c)))
    }

    fn finish(self, kind: UnitKind) -> Vec<Nearby> {
        self.best
            .iter()
            .map(|&(chord2, unit, position)| {
                // The same great circle as `geo::Haversine` (same sphere radius), from the chord already computed.
                let distance_m = m_of_chord2(chord2);
                Nearby {
                    unit,
                    position,
                    distance_m,
                    eta: eta_for(kind, distance_m),
                }
            })
            .collect()
    }
}
