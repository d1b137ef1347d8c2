//! Parsed domain values: once constructed, an email, phone, role or id is valid.

mod contact;
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
}
