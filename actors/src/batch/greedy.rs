//! Greedy matching: repeatedly take the cheapest remaining (job, unit) pair.

use super::{CostMatrix, INFEASIBLE_MS};

/// How many cheapest units per job seed the greedy edge list; jobs that lose all of them fall back to
/// a scan of their whole row.
const GREEDY_SEED: usize = 16;

/// Cheapest-pair-first matching.
pub fn solve_greedy(costs: &CostMatrix) -> Vec<(usize, usize)> {
    let (rows, cols) = (costs.rows(), costs.cols());
    let mut edges: Vec<(i64, usize, usize)> = Vec::with_capacity(rows * GREEDY_SEED.min(cols));
    let mut order: Vec<usize> = (0..cols).collect();
    for job in 0..rows {
        let row = costs.row(job);
        let seed = GREEDY_SEED.min(cols);
        if seed < cols {
            order.select_nth_unstable_by_key(seed, |&u| row[u]);
        }
        edges.extend(order.iter().take(seed).map(|&u| (row[u], job, u)));
    }
    edges.sort_unstable();
    let mut job_done = vec![false; rows];
    let mut unit_used = vec![false; cols];
    let mut matching = Vec::with_capacity(rows.min(cols));
    for (cost, job, unit) in edges {
        if cost < INFEASIBLE_MS && !job_done[job] && !unit_used[unit] {
            job_done[job] = true;
            unit_used[unit] = true;
            matching.push((job, unit));
        }
    }
    complete_greedily(costs, &mut matching, &mut job_done, &mut unit_used);
    matching
}

/// Gives every still unmatched job its cheapest free unit, cheapest jobs first.
pub(crate) fn complete_greedily(
    costs: &CostMatrix,
    matching: &mut Vec<(usize, usize)>,
    job_done: &mut [bool],
    unit_used: &mut [bool],
) {
    loop {
        let best = (0..costs.rows())
            .filter(|&j| !job_done[j])
            .filter_map(|j| {
                (0..costs.cols())
                    .filter(|&u| !unit_used[u])
                    .map(|u| (costs.at(j, u), j, u))
                    .min()
            })
            .filter(|&(cost, _, _)| cost < INFEASIBLE_MS)
            .min();
        let Some((_, job, unit)) = best else { return };
        job_done[job] = true;
        unit_used[unit] = true;
        matching.push((job, unit));
    }
}
