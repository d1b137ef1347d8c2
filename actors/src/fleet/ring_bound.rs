//! How far away the unsearched part of the grid is: the stopping rule of the ring search.
//!
//! On a regular hexagon grid with edge length `e`, the disk of grid radius `k` around a cell covers
//! a circle of radius `(1.5k + 0.5)·e` around that cell's centre (the worst direction is towards the
//! notches between two outer cells), and a query point lies within `e` (the circumradius) of its
//! cell's centre. So after rings `0..=k` have been scanned, every unscanned unit is at least
//! `(1.5k − 0.5)·e` away. H3 cells are not all the same size: [`EDGE_SAFETY_FACTOR`] shrinks the
//! average edge to a length no hexagon or pentagon of the resolution falls below in this bound
//! (checked against real cell boundaries worldwide, poles and pentagons included, by the tests).

use h3o::Resolution;

/// Fraction of the resolution's average edge length used as the guaranteed edge length.
pub const EDGE_SAFETY_FACTOR: f64 = 0.5;

/// Minimum great-circle distance, metres, from a query point to any unit outside the grid disk of
/// radius `k` around the query's cell.
pub fn ring_lower_bound_m(resolution: Resolution, k: u32) -> f64 {
    let guaranteed_edge = resolution.edge_length_m() * EDGE_SAFETY_FACTOR;
    (1.5 * f64::from(k) - 0.5).max(0.0) * guaranteed_edge
}
