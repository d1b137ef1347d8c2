//! Batch assignment: exactness of the Hungarian path, the N > M case, kinds, and the deadline fallback.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail the test loudly on an impossible fixture"
)]

use std::{collections::HashSet, time::Duration};

use onemedi_actors::{
    batch::{
        BatchJob, BatchMethod, BatchUnit, CostMatrix, assign_batch, solve_exact, solve_greedy, solve_pruned,
    },
    fleet::UnitKind,
    ids::{LabCollectionId, UnitId},
    machines::EntityKey,
    position::Position,
};
use proptest::prelude::*;

/// The cheapest matching of size min(rows, cols), by trying them all.
fn brute_force_optimum(costs: &CostMatrix) -> i64 {
    fn go(costs: &CostMatrix, job: usize, used: &mut Vec<bool>, left: usize) -> i64 {
        if left == 0 {
            return 0;
        }
        if job == costs.rows() {
            return i64::MAX / 4;
        }
        let mut best = if costs.rows() - job > left {
            go(costs, job + 1, used, left)
        } else {
            i64::MAX / 4
        };
        for unit in 0..costs.cols() {
            if !used[unit] {
                used[unit] = true;
                best = best.min(costs.at(job, unit) + go(costs, job + 1, used, left - 1));
                used[unit] = false;
            }
        }
        best
    }
    let size = costs.rows().min(costs.cols());
    go(costs, 0, &mut vec![false; costs.cols()], size)
}

fn assert_is_matching(matching: &[(usize, usize)]) {
    let jobs: HashSet<_> = matching.iter().map(|p| p.0).collect();
    let units: HashSet<_> = matching.iter().map(|p| p.1).collect();
    assert_eq!(jobs.len(), matching.len());
    assert_eq!(units.len(), matching.len());
}

fn matrix() -> impl Strategy<Value = CostMatrix> {
    (1_usize..7, 1_usize..7).prop_flat_map(|(rows, cols)| {
        prop::collection::vec(0_i64..10_000, rows * cols)
            .prop_map(move |cells| CostMatrix::from_cells(rows, cols, cells).unwrap())
    })
}

proptest! {
    #[test]
    fn the_hungarian_assignment_is_the_cheapest_possible(costs in matrix()) {
        let matching = solve_exact(&costs);
        assert_is_matching(&matching);
        prop_assert_eq!(matching.len(), costs.rows().min(costs.cols()));
        prop_assert_eq!(costs.total(&matching), brute_force_optimum(&costs));
    }

    #[test]
    fn greedy_and_pruned_matchings_are_complete_and_never_beat_the_optimum(costs in matrix(), keep in 1_usize..4) {
        let optimum = costs.total(&solve_exact(&costs));
        for matching in [solve_greedy(&costs), solve_pruned(&costs, keep)] {
            assert_is_matching(&matching);
            prop_assert_eq!(matching.len(), costs.rows().min(costs.cols()));
            prop_assert!(costs.total(&matching) >= optimum);
        }
    }
}

fn job(i: i64, lat: f64, kind: UnitKind) -> BatchJob {
    BatchJob {
        job: EntityKey::LabCollection(LabCollectionId(i)),
        point: Position::new(lat, 77.59).unwrap(),
        kind,
    }
}

fn unit(i: i64, lat: f64, kind: UnitKind) -> BatchUnit {
    BatchUnit {
        unit: UnitId(i),
        position: Position::new(lat, 77.59).unwrap(),
        kind,
    }
}

#[test]
fn with_more_jobs_than_units_every_unit_is_used_and_the_farthest_job_waits() {
    let jobs = [
        job(1, 12.90, UnitKind::Phlebotomist),
        job(2, 12.95, UnitKind::Phlebotomist),
        job(3, 13.50, UnitKind::Phlebotomist),
    ];
    let units = [
        unit(10, 12.91, UnitKind::Phlebotomist),
        unit(11, 12.96, UnitKind::Phlebotomist),
    ];
    let result = assign_batch(&jobs, &units, Duration::from_secs(1));
    let mut pairs: Vec<_> = result.pairs.iter().map(|p| (p.0.raw_id(), p.1.0)).collect();
    pairs.sort_unstable();
    assert_eq!(pairs, vec![(1, 10), (2, 11)]);
    assert_eq!(result.method, BatchMethod::Exact);
}

#[test]
fn a_unit_of_the_wrong_kind_is_never_assigned() {
    let jobs = [job(1, 12.90, UnitKind::Phlebotomist)];
    let units = [
        unit(10, 12.90, UnitKind::Rider),
        unit(11, 13.20, UnitKind::Phlebotomist),
    ];
    let result = assign_batch(&jobs, &units, Duration::from_secs(1));
    assert_eq!(
        result.pairs.iter().map(|p| p.1).collect::<Vec<_>>(),
        vec![UnitId(11)]
    );
    let only_riders = assign_batch(&jobs, &units[..1], Duration::from_secs(1));
    assert!(only_riders.pairs.is_empty());
}

#[test]
fn a_deadline_too_short_for_the_hungarian_algorithm_falls_back_to_greedy() {
    let jobs: Vec<_> = (0..40)
        .map(|i| job(i, 12.9 + i as f64 * 0.001, UnitKind::Rider))
        .collect();
    let units: Vec<_> = (0..80)
        .map(|i| unit(i, 12.9 + i as f64 * 0.0007, UnitKind::Rider))
        .collect();
    let hurried = assign_batch(&jobs, &units, Duration::ZERO);
    assert_eq!(hurried.method, BatchMethod::Greedy);
    assert_eq!(hurried.pairs.len(), 40);
    let patient = assign_batch(&jobs, &units, Duration::from_secs(5));
    assert_eq!(patient.method, BatchMethod::Exact);
    assert!(patient.total_eta_ms <= hurried.total_eta_ms);
}
