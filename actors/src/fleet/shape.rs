//! [`CellShape`]: an H3 cell as great-circle half-spaces, to tell cheaply that a point is inside it.
//!
//! H3 cell edges are great-circle arcs between the vertices `CellIndex::boundary` lists (straight lines in
//! each icosahedron face's gnomonic projection). A point on the inner side of every edge's great circle,
//! by a margin, lies in the intersection of those half-spaces, which is inside the cell even where the
//! boundary bends at a face edge. The test never claims a point that H3 puts elsewhere; near an edge it
//! answers "don't know" and the caller asks H3.

use h3o::{CellIndex, LatLng};

/// Required clearance from an edge's great circle, on the unit sphere (≈ 6 mm on Earth): far above
/// floating-point noise, far below anything a position fix resolves.
const INSIDE_MARGIN: f64 = 1e-9;

/// A cell and the inward normals of its edges' great circles.
#[derive(Debug, Clone)]
pub(crate) struct CellShape {
    pub(crate) cell: CellIndex,
    normals: Box<[[f64; 3]]>,
}

fn xyz(p: LatLng) -> [f64; 3] {
    let (lat, lng) = (p.lat_radians(), p.lng_radians());
    [lat.cos() * lng.cos(), lat.cos() * lng.sin(), lat.sin()]
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

impl CellShape {
    /// The shape of `cell`.
    pub(crate) fn of(cell: CellIndex) -> Self {
        let centre = xyz(LatLng::from(cell));
        let vertices: Vec<[f64; 3]> = cell.boundary().iter().map(|&v| xyz(v)).collect();
        let normals = vertices
            .iter()
            .zip(vertices.iter().cycle().skip(1))
            .filter_map(|(&a, &b)| {
                let n = cross(a, b);
                let len = dot(n, n).sqrt();
                (len > 0.0).then(|| {
                    let sign = if dot(centre, n) < 0.0 { -1.0 } else { 1.0 };
                    [sign * n[0] / len, sign * n[1] / len, sign * n[2] / len]
                })
            })
            .collect();
        Self { cell, normals }
    }

    /// Whether the unit vector `p` is certainly inside the cell.
    pub(crate) fn contains(&self, p: [f64; 3]) -> bool {
        !self.normals.is_empty() && self.normals.iter().all(|&n| dot(p, n) > INSIDE_MARGIN)
    }
}

#[cfg(test)]
mod tests {
    use h3o::Resolution;
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn a_point_the_shape_claims_is_in_that_cell_for_h3_too(
            lat in -89.9..89.9_f64,
            lng in -180.0..180.0_f64,
            dlat in -0.01..0.01_f64,
            dlng in -0.01..0.01_f64,
            resolution in prop::sample::select(vec![Resolution::Seven, Resolution::Nine, Resolution::Ten]),
        ) {
            let cell = LatLng::new(lat, lng).unwrap().to_cell(resolution);
            let shapes: Vec<CellShape> =
                std::iter::once(cell).chain(cell.grid_disk::<Vec<_>>(1)).map(CellShape::of).collect();
            let p = LatLng::new((lat + dlat).clamp(-90.0, 90.0), lng + dlng).unwrap_or(LatLng::new(lat, lng).unwrap());
            let truth = p.to_cell(resolution);
            for shape in &shapes {
                if shape.contains(xyz(p)) {
                    prop_assert_eq!(shape.cell, truth);
                }
            }
        }
    }

    #[test]
    fn every_cell_contains_its_centre_including_pentagons() {
        for resolution in [Resolution::Eight, Resolution::Nine] {
            for cell in resolution.pentagons().chain(std::iter::once(
                LatLng::new(12.97, 77.59).unwrap().to_cell(resolution),
            )) {
                assert!(CellShape::of(cell).contains(xyz(LatLng::from(cell))), "{cell}");
            }
        }
    }
}
