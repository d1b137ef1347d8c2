//! `nearest_available` against a brute-force scan over random fleets, worldwide.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail the test loudly on an impossible fixture"
)]

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use h3o::Resolution;
use onemedi_actors::{
    fleet::{Capabilities, FleetIndex, SearchFilter, Unit, UnitKind, UnitStatus},
    ids::UnitId,
    position::Position,
};
use proptest::prelude::*;

const STALE_AFTER: Duration = Duration::from_secs(90);

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn wrap_lng(lng: f64) -> f64 {
    if lng > 180.0 {
        lng - 360.0
    } else if lng < -180.0 {
        lng + 360.0
    } else {
        lng
    }
}

fn near(centre: (f64, f64), dlat: f64, dlng: f64) -> Position {
    Position::new((centre.0 + dlat).clamp(-90.0, 90.0), wrap_lng(centre.1 + dlng)).unwrap()
}

fn centre() -> impl Strategy<Value = (f64, f64)> {
    prop_oneof![
        Just((12.9716, 77.5946)),
        Just((89.95, 0.0)),
        Just((-89.95, 120.0)),
        Just((0.0, 179.98)),
        Just((-16.5, -179.99)),
        (-89.0..89.0_f64, -180.0..180.0_f64),
    ]
}

fn kind() -> impl Strategy<Value = UnitKind> {
    prop::sample::select(vec![UnitKind::AmbulanceAls, UnitKind::AmbulanceBls])
}

fn status() -> impl Strategy<Value = UnitStatus> {
    prop_oneof![6 => Just(UnitStatus::Available), 1 => Just(UnitStatus::Assigned), 1 => Just(UnitStatus::OffDuty)]
}

/// (dlat, dlng, kind, status, capability bits, seconds since last ping)
type UnitSpec = (f64, f64, UnitKind, UnitStatus, u32, i64);

fn unit_spec(spread: f64) -> impl Strategy<Value = UnitSpec> {
    (
        -spread..spread,
        -spread..spread,
        kind(),
        status(),
        0_u32..4,
        0_i64..150,
    )
}

fn build(centre: (f64, f64), specs: &[UnitSpec], resolution: Resolution) -> FleetIndex {
    let mut index = FleetIndex::new(resolution, STALE_AFTER);
    for (i, &(dlat, dlng, kind, status, caps, silent_s)) in specs.iter().enumerate() {
        index
            .upsert(Unit {
                id: UnitId(i as i64),
                kind,
                position: near(centre, dlat, dlng),
                heading_deg: 0.0,
                speed_mps: 0.0,
                status,
                capabilities: Capabilities::from_bits(caps),
                last_seen: now() - TimeDelta::seconds(silent_s),
            })
            .unwrap();
    }
    index
}

fn brute_force(
    index: &FleetIndex,
    kind: UnitKind,
    point: Position,
    k: usize,
    radius_m: f64,
    filter: &SearchFilter,
) -> Vec<(f64, UnitId)> {
    let mut all: Vec<(f64, UnitId)> = index
        .units()
        .filter(|u| u.kind == kind && u.status == UnitStatus::Available)
        .filter(|u| now() - u.last_seen <= TimeDelta::from_std(STALE_AFTER).unwrap())
        .filter(|u| u.capabilities.contains(filter.required) && !filter.exclude.contains(&u.id))
        .map(|u| (point.distance_m(u.position), u.id))
        .filter(|&(d, _)| d <= radius_m)
        .collect();
    all.sort_by(|a, b| a.partial_cmp(b).unwrap());
    all.truncate(k);
    all
}

fn assert_same_as_brute_force(
    index: &FleetIndex,
    kind: UnitKind,
    point: Position,
    k: usize,
    radius_m: f64,
    filter: &SearchFilter,
) {
    let expected = brute_force(index, kind, point, k, radius_m, filter);
    let found = index.nearest_available(kind, point, k, radius_m, filter, now());
    assert_eq!(
        found.len(),
        expected.len(),
        "found {found:?}\nexpected {expected:?}"
    );
    for (got, (distance, _)) in found.iter().zip(&expected) {
        assert!(
            (got.distance_m - distance).abs() < 1e-3,
            "found {found:?}\nexpected {expected:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn nearest_available_equals_a_brute_force_scan(
        centre in centre(),
        specs in prop::collection::vec(unit_spec(0.15), 0..250),
        query in (-0.15..0.15_f64, -0.15..0.15_f64),
        kind in kind(),
        k in 1_usize..15,
        radius_m in prop_oneof![100.0..3_000.0_f64, 3_000.0..60_000.0_f64, Just(20_000_000.0)],
        required in 0_u32..4,
        exclude in prop::collection::vec(0_i64..250, 0..60),
        resolution in prop::sample::select(vec![Resolution::Seven, Resolution::Nine, Resolution::Ten]),
    ) {
        let index = build(centre, &specs, resolution);
        let filter = SearchFilter {
            required: Capabilities::from_bits(required),
            exclude: exclude.into_iter().map(UnitId).collect(),
        };
        assert_same_as_brute_force(&index, kind, near(centre, query.0, query.1), k, radius_m, &filter);
    }

    #[test]
    fn sparse_fleets_spread_over_continents_are_searched_exactly(
        centre in centre(),
        specs in prop::collection::vec(unit_spec(25.0), 0..60),
        k in 1_usize..6,
    ) {
        let index = build(centre, &specs, Resolution::Nine);
        assert_same_as_brute_force(&index, UnitKind::AmbulanceAls, near(centre, 0.0, 0.0), k, 20_000_000.0, &SearchFilter::default());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn an_index_kept_up_to_date_by_pings_moves_and_removals_still_answers_exactly(
        centre in centre(),
        changes in prop::collection::vec(
            (0_i64..60, kind(), -0.02..0.02_f64, -0.02..0.02_f64, status(), prop::bool::weighted(0.1)),
            1..400,
        ),
        k in 1_usize..8,
    ) {
        let mut index = FleetIndex::new(Resolution::Nine, STALE_AFTER);
        for &(id, kind, dlat, dlng, status, remove) in &changes {
            if remove {
                index.remove(UnitId(id));
                continue;
            }
            // Small moves (pings inside a cell) and jumps, around a per-unit home.
            let home = (centre.0 + (id % 7) as f64 * 0.003, centre.1 + (id % 5) as f64 * 0.003);
            index
                .upsert(Unit {
                    id: UnitId(id),
                    kind,
                    position: near(home, dlat * (id % 3) as f64, dlng * (id % 3) as f64),
                    heading_deg: 0.0,
                    speed_mps: 0.0,
                    status,
                    capabilities: Capabilities::NONE,
                    last_seen: now(),
                })
                .unwrap();
        }
        prop_assert_eq!(index.len(), index.units().count());
        for kind in [UnitKind::AmbulanceAls, UnitKind::AmbulanceBls] {
            assert_same_as_brute_force(&index, kind, near(centre, 0.0, 0.0), k, 50_000.0, &SearchFilter::default());
        }
    }
}

#[test]
fn an_empty_fleet_has_no_nearest_unit() {
    let index = FleetIndex::default();
    let point = Position::new(12.97, 77.59).unwrap();
    assert!(
        index
            .nearest_available(
                UnitKind::Rider,
                point,
                5,
                10_000.0,
                &SearchFilter::default(),
                now()
            )
            .is_empty()
    );
}

#[test]
fn a_unit_that_stopped_pinging_is_never_offered() {
    let mut index = FleetIndex::new(Resolution::Nine, STALE_AFTER);
    let point = Position::new(12.97, 77.59).unwrap();
    let mut unit = Unit {
        id: UnitId(1),
        kind: UnitKind::Rider,
        position: point,
        heading_deg: 90.0,
        speed_mps: 5.0,
        status: UnitStatus::Available,
        capabilities: Capabilities::NONE,
        last_seen: now() - TimeDelta::seconds(91),
    };
    index.upsert(unit).unwrap();
    assert!(
        index
            .nearest_available(
                UnitKind::Rider,
                point,
                1,
                1_000.0,
                &SearchFilter::default(),
                now()
            )
            .is_empty()
    );
    unit.last_seen = now();
    index.upsert(unit).unwrap();
    let found = index.nearest_available(
        UnitKind::Rider,
        point,
        1,
        1_000.0,
        &SearchFilter::default(),
        now(),
    );
    assert_eq!(found.iter().map(|n| n.unit).collect::<Vec<_>>(), vec![UnitId(1)]);
}

#[test]
fn moving_a_unit_between_cells_keeps_the_other_units_findable() {
    let mut index = FleetIndex::new(Resolution::Nine, STALE_AFTER);
    let base = (12.97, 77.59);
    for i in 0..3 {
        index
            .upsert(Unit {
                id: UnitId(i),
                kind: UnitKind::Phlebotomist,
                position: near(base, 0.0001 * i as f64, 0.0),
                heading_deg: 0.0,
                speed_mps: 0.0,
                status: UnitStatus::Available,
                capabilities: Capabilities::NONE,
                last_seen: now(),
            })
            .unwrap();
    }
    let mut moved = *index.get(UnitId(0)).unwrap();
    moved.position = near(base, 0.05, 0.05);
    index.upsert(moved).unwrap();
    index.remove(UnitId(1));
    let found = index.nearest_available(
        UnitKind::Phlebotomist,
        near(base, 0.0, 0.0),
        3,
        50_000.0,
        &SearchFilter::default(),
        now(),
    );
    assert_eq!(
        found.iter().map(|n| n.unit).collect::<Vec<_>>(),
        vec![UnitId(2), UnitId(0)]
    );
    assert_eq!(index.len(), 2);
}
