//! Checked coordinates: a [`Position`] always holds a finite latitude in [-90, 90] and longitude in [-180, 180].

use std::fmt;

use geo::{Distance, Haversine, Point};
use serde::{Deserialize, Serialize};

/// A WGS84 point that has been validated at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawPosition", into = "RawPosition")]
pub struct Position {
    lat: f64,
    lng: f64,
}

/// The unchecked wire form of a [`Position`].
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct RawPosition {
    lat: f64,
    lng: f64,
}

/// Why a latitude/longitude pair was refused.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum PositionError {
    /// Latitude not finite or outside [-90, 90].
    #[error("latitude {0} is outside [-90, 90]")]
    Latitude(f64),
    /// Longitude not finite or outside [-180, 180].
    #[error("longitude {0} is outside [-180, 180]")]
    Longitude(f64),
}

impl Position {
    /// Validates degrees of latitude and longitude.
    pub fn new(lat: f64, lng: f64) -> Result<Self, PositionError> {
        if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
            return Err(PositionError::Latitude(lat));
        }
        if !lng.is_finite() || !(-180.0..=180.0).contains(&lng) {
            return Err(PositionError::Longitude(lng));
        }
        Ok(Self { lat, lng })
    }

    /// Latitude in degrees.
    pub fn lat(self) -> f64 {
        self.lat
    }

    /// Longitude in degrees.
    pub fn lng(self) -> f64 {
        self.lng
    }

    /// Great-circle (haversine) distance in metres, as computed by `geo`.
    pub fn distance_m(self, other: Self) -> f64 {
        Haversine.distance(self.to_point(), other.to_point())
    }

    /// The `geo` point (x = longitude, y = latitude).
    pub fn to_point(self) -> Point<f64> {
        Point::new(self.lng, self.lat)
    }

    /// The same point for h3o. Both types enforce compatible ranges.
    pub(crate) fn to_h3(self) -> Result<h3o::LatLng, h3o::error::InvalidLatLng> {
        h3o::LatLng::new(self.lat, self.lng)
    }

    /// The point on the unit sphere; chord lengths between such vectors rank like great-circle distances.
    pub fn unit_vector(self) -> [f64; 3] {
        let (lat, lng) = (self.lat.to_radians(), self.lng.to_radians());
        let (sin_lat, cos_lat) = lat.sin_cos();
        let (sin_lng, cos_lng) = lng.sin_cos();
        [cos_lat * cos_lng, cos_lat * sin_lng, sin_lat]
    }
}

impl TryFrom<RawPosition> for Position {
    type Error = PositionError;

    fn try_from(raw: RawPosition) -> Result<Self, Self::Error> {
        Self::new(raw.lat, raw.lng)
    }
}

impl From<Position> for RawPosition {
    fn from(p: Position) -> Self {
        Self {
            lat: p.lat,
            lng: p.lng,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({:.6}, {:.6})", self.lat, self.lng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_or_non_finite_coordinates_are_refused() {
        assert!(Position::new(90.1, 0.0).is_err());
        assert!(Position::new(0.0, -180.5).is_err());
        assert!(Position::new(f64::NAN, 0.0).is_err());
        assert!(Position::new(-90.0, 180.0).is_ok());
    }

    #[test]
    fn positions_deserialise_only_when_valid() {
        assert!(serde_json::from_str::<Position>(r#"{"lat":12.97,"lng":77.59}"#).is_ok());
        assert!(serde_json::from_str::<Position>(r#"{"lat":120.0,"lng":77.59}"#).is_err());
    }
}
