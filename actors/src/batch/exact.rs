//! Exact minimum-cost matching with `pathfinding`'s Kuhn–Munkres (Hungarian algorithm).

use pathfinding::{kuhn_munkres::Weights, prelude::kuhn_munkres};

use super::{CostMatrix, INFEASIBLE_MS};

/// Negated costs as seen by `kuhn_munkres` (which maximises), transposed when there are more jobs
/// than units because the algorithm needs rows ≤ columns.
struct Negated<'a> {
    costs: &'a CostMatrix,
    transposed: bool,
}

impl Weights<i64> for Negated<'_> {
    fn rows(&self) -> usize {
        if self.transposed {
            self.costs.cols()
        } else {
            self.costs.rows()
        }
    }

    fn columns(&self) -> usize {
        if self.transposed {
            self.costs.rows()
        } else {
            self.costs.cols()
        }
    }

    fn at(&self, row: usize, col: usize) -> i64 {
        if self.transposed {
            -self.costs.at(col, row)
        } else {
            -self.costs.at(row, col)
        }
    }

    fn neg(&self) -> Self {
        // Never called by `kuhn_munkres` (only by `kuhn_munkres_min`); negating a view is not meaningful.
        Self {
            costs: self.costs,
            transposed: self.transposed,
        }
    }
}

/// Minimum total cost matching: `(job, unit)` pairs, infeasible pairs left out. With more jobs than
/// units, every unit is matched and the jobs left over stay unmatched.
pub fn solve_exact(costs: &CostMatrix) -> Vec<(usize, usize)> {
    if costs.rows() == 0 || costs.cols() == 0 {
        return Vec::new();
    }
    let transposed = costs.rows() > costs.cols();
    let (_, assignment) = kuhn_munkres(&Negated { costs, transposed });
    assignment
        .into_iter()
        .enumerate()
        .map(|(row, col)| if transposed { (col, row) } else { (row, col) })
        .filter(|&(job, unit)| costs.at(job, unit) < INFEASIBLE_MS)
        .collect()
}
