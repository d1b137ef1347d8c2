//! The ring search's stopping rule checked against real H3 cell boundaries, worldwide.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail the test loudly on an impossible fixture"
)]

use h3o::{CellIndex, LatLng, Resolution};
use onemedi_actors::fleet::ring_lower_bound_m;
use proptest::prelude::*;

/// Shortest distance from `p` to the boundary of `cell`, sampling each edge densely enough that the
/// sampling error (under 1/64 of an edge) is far below the bound's margin.
fn distance_to_cell_m(p: LatLng, cell: CellIndex) -> f64 {
    let boundary: Vec<LatLng> = cell.boundary().iter().copied().collect();
    let mut best = f64::MAX;
    for (i, &a) in boundary.iter().enumerate() {
        let b = boundary[(i + 1) % boundary.len()];
        let mut dlng = b.lng() - a.lng();
        if dlng > 180.0 {
            dlng -= 360.0;
        } else if dlng < -180.0 {
            dlng += 360.0;
        }
        for step in 0..=32 {
            let t = f64::from(step) / 32.0;
            let mut lng = a.lng() + dlng * t;
            if lng > 180.0 {
                lng -= 360.0;
            } else if lng < -180.0 {
                lng += 360.0;
            }
            let q = LatLng::new(a.lat() + (b.lat() - a.lat()) * t, lng).unwrap();
            best = best.min(p.distance_m(q));
        }
    }
    best
}

fn assert_bound_holds(p: LatLng, resolution: Resolution, max_k: u32) {
    let origin = p.to_cell(resolution);
    for k in 0..=max_k {
        let next_ring: Vec<CellIndex> = origin.grid_ring(k + 1);
        let nearest_unsearched = next_ring
            .iter()
            .map(|&c| distance_to_cell_m(p, c))
            .fold(f64::MAX, f64::min);
        let bound = ring_lower_bound_m(resolution, k);
        assert!(
            bound <= nearest_unsearched,
            "{p} res {resolution:?} k {k}: bound {bound:.1} m > true {nearest_unsearched:.1} m"
        );
    }
}

#[test]
fn the_ring_bound_holds_next_to_every_pentagon() {
    for resolution in [Resolution::Eight, Resolution::Nine] {
        for pentagon in resolution.pentagons() {
            let centre = LatLng::from(pentagon);
            assert_bound_holds(centre, resolution, 3);
            let vertex = pentagon.boundary().iter().copied().next().unwrap();
            assert_bound_holds(vertex, resolution, 3);
        }
    }
}

#[test]
fn the_ring_bound_holds_at_the_poles_and_across_the_antimeridian() {
    for (lat, lng) in [
        (90.0, 0.0),
        (-90.0, 0.0),
        (89.9999, 45.0),
        (0.0, 180.0),
        (0.0, -179.9999),
        (-16.5, 179.99),
    ] {
        assert_bound_holds(LatLng::new(lat, lng).unwrap(), Resolution::Nine, 3);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn the_ring_bound_never_exceeds_the_distance_to_unsearched_cells(
        lat in -90.0..=90.0_f64,
        lng in -180.0..=180.0_f64,
        resolution in prop::sample::select(vec![Resolution::Seven, Resolution::Nine, Resolution::Ten]),
    ) {
        assert_bound_holds(LatLng::new(lat, lng).unwrap(), resolution, 3);
    }
}
