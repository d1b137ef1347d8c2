//! Movement for the simulator: distances, random points in the demo city, and street-like routes that
//! a vehicle follows a few metres per tick.

use std::collections::VecDeque;

use rand::Rng;

/// Mean Earth radius in metres.
const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Bengaluru's centre (Vidhana Soudha), the middle of the demo city.
pub const CITY_CENTRE: Point = Point {
    lat: 12.9716,
    lng: 77.5946,
};

/// How far from the centre the simulator places calls and deliveries.
pub const CITY_RADIUS_M: f64 = 8_000.0;

/// A position in degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub lat: f64,
    pub lng: f64,
}

impl Point {
    /// Great-circle distance in metres (haversine).
    pub fn distance_m(self, other: Point) -> f64 {
        let (p1, p2) = (self.lat.to_radians(), other.lat.to_radians());
        let dp = p2 - p1;
        let dl = (other.lng - self.lng).to_radians();
        let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_M * a.sqrt().asin()
    }

    /// Initial bearing towards `other`, degrees in [0, 360).
    pub fn bearing_to(self, other: Point) -> f64 {
        let (p1, p2) = (self.lat.to_radians(), other.lat.to_radians());
        let dl = (other.lng - self.lng).to_radians();
        let y = dl.sin() * p2.cos();
        let x = p1.cos() * p2.sin() - p1.sin() * p2.cos() * dl.cos();
        y.atan2(x).to_degrees().rem_euclid(360.0)
    }

    /// The point `fraction` of the way to `other` (straight line; fine over a few kilometres).
    fn towards(self, other: Point, fraction: f64) -> Point {
        Point {
            lat: self.lat + (other.lat - self.lat) * fraction,
            lng: self.lng + (other.lng - self.lng) * fraction,
        }
    }
}

/// A uniformly random point within `radius_m` of `centre`.
pub fn random_near(rng: &mut impl Rng, centre: Point, radius_m: f64) -> Point {
    let distance = radius_m * rng.random::<f64>().sqrt();
    let angle = rng.random_range(0.0..std::f64::consts::TAU);
    let dlat = (distance * angle.cos()) / EARTH_RADIUS_M;
    let dlng = (distance * angle.sin()) / (EARTH_RADIUS_M * centre.lat.to_radians().cos());
    Point {
        lat: centre.lat + dlat.to_degrees(),
        lng: centre.lng + dlng.to_degrees(),
    }
}

/// A street-like path: legs that run mostly north–south or east–west with a jog in between, the way a
/// vehicle crosses a city grid, instead of a straight line through buildings.
#[derive(Debug, Default)]
pub struct Route {
    waypoints: VecDeque<Point>,
}

impl Route {
    pub fn new(rng: &mut impl Rng, from: Point, to: Point) -> Self {
        let mut waypoints = VecDeque::new();
        // Two or three turns, alternating the axis, each at a random share of the remaining offset.
        let turns = rng.random_range(2..=3);
        let mut at = from;
        let mut lat_first = rng.random_bool(0.5);
        for _ in 0..turns {
            let share = rng.random_range(0.3..0.8);
            let next = if lat_first {
                Point {
                    lat: at.lat + (to.lat - at.lat) * share,
                    lng: at.lng,
                }
            } else {
                Point {
                    lat: at.lat,
                    lng: at.lng + (to.lng - at.lng) * share,
                }
            };
            waypoints.push_back(next);
            at = next;
            lat_first = !lat_first;
        }
        waypoints.push_back(if lat_first {
            Point {
                lat: to.lat,
                lng: at.lng,
            }
        } else {
            Point {
                lat: at.lat,
                lng: to.lng,
            }
        });
        waypoints.push_back(to);
        Self { waypoints }
    }

    /// Moves `position` up to `metres` along the route; the heading travelled, or `None` once arrived.
    pub fn advance(&mut self, position: &mut Point, metres: f64) -> Option<f64> {
        let mut left = metres;
        let mut heading = None;
        while left > 0.0 {
            let Some(&next) = self.waypoints.front() else {
                break;
            };
            let gap = position.distance_m(next);
            if gap > 0.5 {
                heading = Some(position.bearing_to(next));
            }
            if gap <= left {
                *position = next;
                left -= gap;
                self.waypoints.pop_front();
            } else {
                *position = position.towards(next, left / gap);
                left = 0.0;
            }
        }
        heading
    }

    pub fn arrived(&self) -> bool {
        self.waypoints.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use rand::{SeedableRng, rngs::StdRng};

    use super::*;

    #[test]
    fn a_route_ends_exactly_at_its_destination_and_never_overshoots_a_tick() {
        let mut rng = StdRng::seed_from_u64(7);
        let from = CITY_CENTRE;
        let to = Point {
            lat: 12.93,
            lng: 77.62,
        };
        let mut route = Route::new(&mut rng, from, to);
        let mut at = from;
        let mut ticks = 0;
        while !route.arrived() {
            let before = at;
            route.advance(&mut at, 100.0);
            assert!(before.distance_m(at) <= 100.0 + 1e-6);
            ticks += 1;
            assert!(ticks < 10_000, "the route never ends");
        }
        assert!(at.distance_m(to) < 1e-6);
        // The path is longer than the crow flies (it follows the grid) but not absurdly so.
        assert!(f64::from(ticks) * 100.0 >= from.distance_m(to));
        assert!(f64::from(ticks) * 100.0 <= 2.0 * from.distance_m(to) + 200.0);
    }

    #[test]
    fn random_points_stay_within_the_radius() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..1000 {
            let p = random_near(&mut rng, CITY_CENTRE, 5000.0);
            assert!(CITY_CENTRE.distance_m(p) <= 5000.0 + 1.0);
        }
    }
}
