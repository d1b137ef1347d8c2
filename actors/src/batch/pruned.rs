//! Pruned exact matching: each job keeps only its nearest candidates; the Hungarian algorithm then runs
//! on each connected component of that sparse graph, which is much smaller than the full matrix.

use std::collections::HashMap;

use super::{CostMatrix, INFEASIBLE_MS, exact::solve_exact, greedy::complete_greedily};

/// Candidates kept per job.
pub const PRUNE_CANDIDATES: usize = 12;

/// Union–find over column indices, to split the candidate graph into components.
struct Components {
    parent: Vec<usize>,
}

impl Components {
    fn new(n: usize) -> Self {
        Self {
            parent: (0..n).collect(),
        }
    }

    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }

    fn union(&mut self, a: usize, b: usize) {
        let (a, b) = (self.find(a), self.find(b));
        if a != b {
            self.parent[a] = b;
        }
    }
}

/// Matching restricted to each job's `candidates` cheapest units, solved exactly per component; jobs
/// left without a unit are completed greedily.
pub fn solve_pruned(costs: &CostMatrix, candidates: usize) -> Vec<(usize, usize)> {
    let (rows, cols) = (costs.rows(), costs.cols());
    if rows == 0 || cols == 0 {
        return Vec::new();
    }
    let keep = candidates.clamp(1, cols);
    let mut order: Vec<usize> = (0..cols).collect();
    let mut lists: Vec<Vec<usize>> = Vec::with_capacity(rows);
    let mut components = Components::new(cols);
    for job in 0..rows {
        let row = costs.row(job);
        if keep < cols {
            order.select_nth_unstable_by_key(keep, |&u| row[u]);
        }
        let list: Vec<usize> = order
            .iter()
            .take(keep)
            .copied()
            .filter(|&u| row[u] < INFEASIBLE_MS)
            .collect();
        for pair in list.windows(2) {
            components.union(pair[0], pair[1]);
        }
        lists.push(list);
    }
    // Group jobs and their candidate units by component.
    let mut groups: HashMap<usize, (Vec<usize>, Vec<usize>)> = HashMap::new();
    for (job, list) in lists.iter().enumerate() {
        if let Some(&first) = list.first() {
            let root = components.find(first);
            groups.entry(root).or_default().0.push(job);
        }
    }
    for unit in 0..cols {
        let root = components.find(unit);
        if let Some(group) = groups.get_mut(&root) {
            group.1.push(unit);
        }
    }
    let mut matching = Vec::with_capacity(rows.min(cols));
    for (group_jobs, group_units) in groups.values() {
        let allowed: Vec<&Vec<usize>> = group_jobs.iter().map(|&j| &lists[j]).collect();
        let mut cells = Vec::with_capacity(group_jobs.len() * group_units.len());
        for (&job, list) in group_jobs.iter().zip(&allowed) {
            for &unit in group_units {
                cells.push(if list.contains(&unit) {
                    costs.at(job, unit)
                } else {
                    INFEASIBLE_MS
                });
            }
        }
        let Some(sub) = CostMatrix::from_cells(group_jobs.len(), group_units.len(), cells) else {
            continue;
        };
        matching.extend(
            solve_exact(&sub)
                .into_iter()
                .map(|(j, u)| (group_jobs[j], group_units[u])),
        );
    }
    let mut job_done = vec![false; rows];
    let mut unit_used = vec![false; cols];
    for &(job, unit) in &matching {
        job_done[job] = true;
        unit_used[unit] = true;
    }
    complete_greedily(costs, &mut matching, &mut job_done, &mut unit_used);
    matching
}
