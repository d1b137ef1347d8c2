//! [`CellShapes`]: H3 cells as great-circle half-spaces, to tell cheaply that a point is inside one.
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

/// Unit inward normals of the great circles through `cell`'s edges.
fn edge_normals(cell: CellIndex) -> Vec<[f64; 3]> {
    let centre = xyz(LatLng::from(cell));
    let vertices: Vec<[f64; 3]> = cell.boundary().iter().map(|&v| xyz(v)).collect();
    vertices
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
        .collect()
}

fn inside(normals: &[[f64; 3]], p: [f64; 3]) -> bool {
    !normals.is_empty() && normals.iter().all(|&n| dot(p, n) > INSIDE_MARGIN)
}

/// Several cells' shapes in one contiguous block (a bucket's cell first, then its neighbours), so
/// placing a ping reads a few adjacent cache lines instead of chasing one pointer per cell.
#[derive(Debug, Clone)]
pub(crate) struct CellShapes {
    cells: Box<[CellIndex]>,
    /// `normals[ends[i - 1]..ends[i]]` belong to `cells[i]`.
    ends: Box<[usize]>,
    normals: Box<[[f64; 3]]>,
}

impl CellShapes {
    pub(crate) fn of(cells: impl IntoIterator<Item = CellIndex>) -> Self {
        let (mut list, mut ends, mut normals) = (Vec::new(), Vec::new(), Vec::new());
        for cell in cells {
            normals.extend(edge_normals(cell));
            list.push(cell);
            ends.push(normals.len());
        }
        Self {
            cells: list.into(),
            ends: ends.into(),
            normals: normals.into(),
        }
    }

    /// The cell that certainly contains `p`, if it is one of these.
    pub(crate) fn locate(&self, p: [f64; 3]) -> Option<CellIndex> {
        let mut start = 0;
        for (i, &end) in self.ends.iter().enumerate() {
            if inside(self.normals.get(start..end).unwrap_or(&[]), p) {
                return self.cells.get(i).copied();
            }
            start = end;
        }
        None
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
        fn a_cell_the_shapes_name_for_a_point_is_the_cell_h3_names(
            lat in -89.9..89.9_f64,
            lng in -180.0..180.0_f64,
            dlat in -0.01..0.01_f64,
            dlng in -0.01..0.01_f64,
            resolution in prop::sample::select(vec![Resolution::Seven, Resolution::Nine, Resolution::Ten]),
        ) {
            let cell = LatLng::new(lat, lng).unwrap().to_cell(resolution);
            let shapes = CellShapes::of(std::iter::once(cell).chain(cell.grid_ring::<Vec<_>>(1)));
            let p = LatLng::new((lat + dlat).clamp(-90.0, 90.0), lng + dlng).unwrap_or(LatLng::new(lat, lng).unwrap());
            if let Some(found) = shapes.locate(xyz(p)) {
                prop_assert_eq!(found, p.to_cell(resolution));
            }
        }
    }

    #[test]
    fn every_cell_contains_its_centre_including_pentagons() {
        for resolution in [Resolution::Eight, Resolution::Nine] {
            let bengaluru = LatLng::new(12.97, 77.59).unwrap().to_cell(resolution);
            for cell in resolution.pentagons().chain(std::iter::once(bengaluru)) {
                assert_eq!(CellShapes::of([cell]).locate(xyz(LatLng::from(cell))), Some(cell));
            }
        }
    }

    #[test]
    fn a_point_just_across_an_edge_is_placed_in_the_neighbour() {
        let cell = LatLng::new(12.97, 77.59).unwrap().to_cell(Resolution::Nine);
        let shapes = CellShapes::of(std::iter::once(cell).chain(cell.grid_ring::<Vec<_>>(1)));
        for neighbour in cell.grid_ring::<Vec<_>>(1) {
            assert_eq!(shapes.locate(xyz(LatLng::from(neighbour))), Some(neighbour));
        }
    }
}
