//! Speed profiles: estimated time of arrival from great-circle distance and unit kind.

use std::time::Duration;

use super::UnitKind;

/// Roads are longer than the great circle; urban networks average about 1.3–1.4× (circuity).
pub const ROAD_DETOUR_FACTOR: f64 = 1.35;

/// Average urban speed of an ambulance running with lights, m/s (≈ 36 km/h).
pub const AMBULANCE_SPEED_MPS: f64 = 10.0;
/// Average urban speed of a delivery rider on a two-wheeler, m/s (≈ 22 km/h).
pub const RIDER_SPEED_MPS: f64 = 6.1;
/// Average urban speed of a phlebotomist on a two-wheeler, m/s (≈ 20 km/h).
pub const PHLEBOTOMIST_SPEED_MPS: f64 = 5.5;

/// Planning speed of a kind, m/s.
pub fn speed_of(kind: UnitKind) -> f64 {
    match kind {
        UnitKind::AmbulanceAls | UnitKind::AmbulanceBls => AMBULANCE_SPEED_MPS,
        UnitKind::Rider => RIDER_SPEED_MPS,
        UnitKind::Phlebotomist => PHLEBOTOMIST_SPEED_MPS,
    }
}

/// Estimated travel time for a unit of `kind` over `distance_m` metres of great circle.
pub fn eta_for(kind: UnitKind, distance_m: f64) -> Duration {
    let millis = (distance_m.max(0.0) * ROAD_DETOUR_FACTOR / speed_of(kind) * 1000.0).min(1e15);
    // Saturating float-to-int cast; sub-millisecond precision is meaningless for an ETA.
    Duration::from_millis(millis as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ambulance_covers_a_kilometre_faster_than_a_rider() {
        assert!(eta_for(UnitKind::AmbulanceAls, 1000.0) < eta_for(UnitKind::Rider, 1000.0));
        assert_eq!(eta_for(UnitKind::AmbulanceBls, 1000.0).as_secs(), 135);
    }
}
