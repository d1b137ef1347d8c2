//! Batch assignment: match N open jobs to M available units minimising total ETA, under a deadline.
//!
//! [`assign_batch`] picks the method from a cost model of the solver: the exact Hungarian algorithm
//! (`pathfinding`'s Kuhn–Munkres) when it fits the deadline, else the same algorithm on each connected
//! component of a pruned graph (each job keeps only its nearest candidates), else greedy.

mod cost;
mod exact;
mod greedy;
mod pruned;

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use cost::{CostMatrix, INFEASIBLE_MS};
pub use exact::solve_exact;
pub use greedy::solve_greedy;
pub use pruned::{PRUNE_CANDIDATES, solve_pruned};

use crate::{fleet::UnitKind, ids::UnitId, machines::EntityKey, position::Position};

/// Predicted cost of `pathfinding`'s Kuhn–Munkres per matrix cell (rows × columns) on city-like
/// instances: 500 × 1000 took 4.8 ms in the `batch_assign` benchmark (≈ 10 ns per cell) and 13 ms on a
/// fully loaded machine; 30 ns leaves that margin. Used to decide whether the exact method fits a deadline.
pub const KM_NANOS_PER_CELL: u64 = 30;

/// One open job of the batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchJob {
    /// The job.
    pub job: EntityKey,
    /// Where a unit must go.
    pub point: Position,
    /// Which kind of unit can serve it.
    pub kind: UnitKind,
}

/// One available unit of the batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchUnit {
    /// The unit.
    pub unit: UnitId,
    /// Where it is.
    pub position: Position,
    /// What kind it is.
    pub kind: UnitKind,
}

/// How an assignment was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchMethod {
    /// Hungarian algorithm on the full matrix: minimum total ETA.
    Exact,
    /// Hungarian algorithm per component of the pruned candidate graph; leftovers greedy.
    Pruned,
    /// Cheapest pair first.
    Greedy,
}

impl BatchMethod {
    /// The method's snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Exact => "exact",
            Self::Pruned => "pruned",
            Self::Greedy => "greedy",
        }
    }
}

/// The result: which job gets which unit.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchAssignment {
    /// `(job, unit, eta)` for every matched job.
    pub pairs: Vec<(EntityKey, UnitId, Duration)>,
    /// Sum of the matched ETAs, milliseconds.
    pub total_eta_ms: i64,
    /// How it was computed.
    pub method: BatchMethod,
    /// Wall time spent, including the cost matrix.
    pub elapsed: Duration,
}

/// Predicted Kuhn–Munkres time for a `rows × cols` problem.
pub fn predicted_km_time(rows: usize, cols: usize) -> Duration {
    let cells = (rows as u64).saturating_mul(cols as u64);
    Duration::from_nanos(cells.saturating_mul(KM_NANOS_PER_CELL))
}

/// Solves a cost matrix with the best method whose predicted time fits in `deadline`: exact, pruned,
/// then greedy. Returns the method and the `(row, column)` pairs, infeasible ones included (callers drop
/// pairs costing [`INFEASIBLE_MS`] or more).
pub fn solve_within(costs: &CostMatrix, deadline: Duration) -> (BatchMethod, Vec<(usize, usize)>) {
    let (rows, cols) = (costs.rows(), costs.cols());
    if predicted_km_time(rows, cols) <= deadline {
        (BatchMethod::Exact, solve_exact(costs))
    } else if predicted_km_time(rows, PRUNE_CANDIDATES.min(cols)) * 4 <= deadline {
        (BatchMethod::Pruned, solve_pruned(costs, PRUNE_CANDIDATES))
    } else {
        (BatchMethod::Greedy, solve_greedy(costs))
    }
}

/// Matches jobs to units minimising the total ETA, choosing the best method whose predicted time fits
/// in `deadline`. Every job is matched when enough units of its kind exist; a unit serves one job.
pub fn assign_batch(jobs: &[BatchJob], units: &[BatchUnit], deadline: Duration) -> BatchAssignment {
    let started = Instant::now();
    let costs = CostMatrix::build(jobs, units);
    let (method, matching) = solve_within(&costs, deadline.saturating_sub(started.elapsed()));
    let pairs: Vec<_> = matching
        .iter()
        .filter_map(|&(j, u)| {
            let cost = costs.at(j, u);
            (cost < INFEASIBLE_MS).then(|| {
                (
                    jobs[j].job,
                    units[u].unit,
                    Duration::from_millis(cost.unsigned_abs()),
                )
            })
        })
        .collect();
    let total_eta_ms = pairs
        .iter()
        .map(|p| i64::try_from(p.2.as_millis()).unwrap_or(i64::MAX))
        .sum();
    BatchAssignment {
        pairs,
        total_eta_ms,
        method,
        elapsed: started.elapsed(),
    }
}
