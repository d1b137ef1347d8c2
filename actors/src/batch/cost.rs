//! The ETA cost matrix of a batch, in integer milliseconds (Kuhn–Munkres needs integer weights).

use geo::Haversine;

use super::{BatchJob, BatchUnit};
use crate::fleet::eta_for;

/// Cost of a pair that must not be matched (wrong kind). Large enough that any feasible matching is
/// cheaper, small enough that 10⁶ of them cannot overflow an `i64` sum.
pub const INFEASIBLE_MS: i64 = 1_000_000_000_000;

/// `asin`, with a short series for the small arguments of city distances (x < 0.02 is under 250 km;
/// the first omitted term is below 1e-15 relative there), which is ~5× cheaper than the libm call.
fn arcsin(x: f64) -> f64 {
    if x < 0.02 {
        let x2 = x * x;
        x * (1.0 + x2 * (1.0 / 6.0 + x2 * (3.0 / 40.0 + x2 * (15.0 / 336.0 + x2 * (105.0 / 3456.0)))))
    } else {
        x.asin()
    }
}

/// `rows × cols` ETAs in milliseconds, row-major (rows are jobs, columns units).
#[derive(Debug, Clone)]
pub struct CostMatrix {
    rows: usize,
    cols: usize,
    cells: Vec<i64>,
}

impl CostMatrix {
    /// ETA of every unit to every job; pairs of different kinds cost [`INFEASIBLE_MS`].
    pub fn build(jobs: &[BatchJob], units: &[BatchUnit]) -> Self {
        let unit_xyz: Vec<[f64; 3]> = units.iter().map(|u| u.position.unit_vector()).collect();
        let radius = Haversine.radius();
        let mut cells = Vec::with_capacity(jobs.len() * units.len());
        for job in jobs {
            let q = job.point.unit_vector();
            let metres_per_second_eta = eta_for(job.kind, 1_000_000.0).as_secs_f64() / 1_000_000.0;
            for (unit, p) in units.iter().zip(&unit_xyz) {
                if unit.kind != job.kind {
                    cells.push(INFEASIBLE_MS);
                    continue;
                }
                let (dx, dy, dz) = (p[0] - q[0], p[1] - q[1], p[2] - q[2]);
                let half_chord = ((dx * dx + dy * dy + dz * dz).sqrt() / 2.0).min(1.0);
                let metres = 2.0 * arcsin(half_chord) * radius;
                // Saturating float-to-int cast of a finite, non-negative value.
                cells.push((metres * metres_per_second_eta * 1000.0).round() as i64);
            }
        }
        Self {
            rows: jobs.len(),
            cols: units.len(),
            cells,
        }
    }

    /// From explicit costs (tests, benchmarks); `None` if the sizes disagree.
    pub fn from_cells(rows: usize, cols: usize, cells: Vec<i64>) -> Option<Self> {
        (cells.len() == rows * cols).then_some(Self { rows, cols, cells })
    }

    /// Number of jobs.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of units.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Cost of job `row` served by unit `col`.
    pub fn at(&self, row: usize, col: usize) -> i64 {
        self.cells
            .get(row * self.cols + col)
            .copied()
            .unwrap_or(INFEASIBLE_MS)
    }

    /// One job's costs.
    pub fn row(&self, row: usize) -> &[i64] {
        self.cells
            .get(row * self.cols..(row + 1) * self.cols)
            .unwrap_or(&[])
    }

    /// Total cost of a matching.
    pub fn total(&self, matching: &[(usize, usize)]) -> i64 {
        matching.iter().map(|&(r, c)| self.at(r, c)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_series_arcsin_matches_the_library_one() {
        for i in 0..=1000 {
            let x = f64::from(i) * 0.0001;
            assert!((arcsin(x) - x.asin()).abs() <= 1e-14 * x.max(1e-300), "{x}");
        }
        assert_eq!(arcsin(0.5), 0.5_f64.asin());
    }
}
