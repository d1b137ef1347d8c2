//! Parsed domain values: once constructed, an email, phone, role or id is valid.

pub mod blood;
pub mod care;
mod contact;
pub mod dates;
pub mod delivery;
pub mod order;
mod role;

pub use contact::{Email, Password, PersonName, Phone};
pub use order::{OrderStatus, PaymentMethod};
pub use role::Role;
use serde::{Deserialize, Serialize};

/// A user's primary key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub i64);

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A checked WGS84 coordinate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatLng {
    lat: f64,
    lng: f64,
}

impl LatLng {
    /// Accepts finite latitudes in [-90, 90] and longitudes in [-180, 180].
    pub fn parse(lat: f64, lng: f64) -> Result<Self, &'static str> {
        if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
            return Err("latitude must be between -90 and 90");
        }
        if !lng.is_finite() || !(-180.0..=180.0).contains(&lng) {
            return Err("longitude must be between -180 and 180");
        }
        Ok(Self { lat, lng })
    }

    pub fn lat(self) -> f64 {
        self.lat
    }

    pub fn lng(self) -> f64 {
        self.lng
    }

    /// Great-circle distance in metres.
    pub fn distance_m(self, other: LatLng) -> f64 {
        const EARTH_RADIUS_M: f64 = 6_371_008.8;
        let (p1, p2) = (self.lat.to_radians(), other.lat.to_radians());
        let dp = p2 - p1;
        let dl = (other.lng - self.lng).to_radians();
        let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_M * a.sqrt().asin()
    }

    /// A latitude/longitude box that contains every point within `radius_m` (a cheap SQL pre-filter
    /// before the exact distance). Near the poles or across the antimeridian it widens to every longitude.
    pub fn bounding_box(self, radius_m: f64) -> BoundingBox {
        const METRES_PER_DEGREE: f64 = 111_320.0;
        let dlat = radius_m / METRES_PER_DEGREE;
        let min_lat = (self.lat - dlat).max(-90.0);
        let max_lat = (self.lat + dlat).min(90.0);
        let cos = min_lat.to_radians().cos().min(max_lat.to_radians().cos());
        let (min_lng, max_lng) = if cos < 0.01 {
            (-180.0, 180.0)
        } else {
            let dlng = radius_m / (METRES_PER_DEGREE * cos);
            if self.lng - dlng < -180.0 || self.lng + dlng > 180.0 {
                (-180.0, 180.0)
            } else {
                (self.lng - dlng, self.lng + dlng)
            }
        };
        BoundingBox {
            min_lat,
            max_lat,
            min_lng,
            max_lng,
        }
    }
}

/// Degrees bounding a search area.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoundingBox {
    pub min_lat: f64,
    pub max_lat: f64,
    pub min_lng: f64,
    pub max_lng: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinates_outside_the_globe_or_not_finite_are_refused() {
        assert!(LatLng::parse(12.97, 77.59).is_ok());
        assert!(LatLng::parse(90.0, -180.0).is_ok());
        assert!(LatLng::parse(90.1, 0.0).is_err());
        assert!(LatLng::parse(0.0, 180.5).is_err());
        assert!(LatLng::parse(f64::NAN, 0.0).is_err());
        assert!(LatLng::parse(0.0, f64::INFINITY).is_err());
    }

    #[test]
    fn the_bounding_box_contains_every_point_within_the_radius() {
        let centre = LatLng::parse(12.9716, 77.5946).unwrap();
        let bbox = centre.bounding_box(10_000.0);
        for bearing in 0..36 {
            let angle = f64::from(bearing * 10).to_radians();
            // A point just inside 10 km in each direction.
            let lat = centre.lat() + 9_990.0 / 111_320.0 * angle.cos();
            let lng = centre.lng() + 9_990.0 / (111_320.0 * centre.lat().to_radians().cos()) * angle.sin();
            let p = LatLng::parse(lat, lng).unwrap();
            assert!(centre.distance_m(p) < 10_100.0);
            assert!((bbox.min_lat..=bbox.max_lat).contains(&lat));
            assert!((bbox.min_lng..=bbox.max_lng).contains(&lng));
        }
        let victoria = LatLng::parse(12.9634, 77.5738).unwrap();
        let d = centre.distance_m(victoria);
        assert!((2_300.0..2_500.0).contains(&d), "{d}");
        let pole = LatLng::parse(89.99, 10.0).unwrap().bounding_box(5_000.0);
        assert_eq!((pole.min_lng, pole.max_lng), (-180.0, 180.0));
    }
}
